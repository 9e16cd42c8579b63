"""Where an injected bolus goes: it fills the reachable accessible space around the needle tip.

The injected volume V displaces the resident fluid in the accessible (interstitial) fraction
phi_e of the elements it can enter. It cannot enter *barrier* elements (bone, dense fascia /
cartilage, a vessel lumen, ...: chosen by the caller) and reaches an element only through
faces of elements it has filled. The filled region is

    F(r) = the elements with centroid within distance r of the tip that are connected to the
           tip through fillable elements also within r,

with r the smallest radius at which the accessible volume sum_{e in F(r)} phi_e V_e reaches
V; the last shell of elements added is filled in part so that the accessible volume filled
is exactly V. In a homogeneous tissue F(r) is the sphere r_b = (3 V / (4 pi phi))^(1/3)
(:func:`neurolysis.physics.transport.bolus_radius_m`); bounded by barriers it is the part of
the sphere on the tip's side, grown along the compartment until V fits.

Nodal concentration (lumped, as the transport capacity): c_i = c_inj (sum_e f_e phi_e V_e / 4) / m_i
with f_e the filled fraction of element e and m_i = sum_e phi_e V_e / 4, so the amount
sum m_i c_i = c_inj V exactly and 0 <= c <= c_inj.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from neurolysis.validation import ValidationError

_FACES = ((0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3))


def face_adjacency(tets: np.ndarray) -> sp.csr_matrix:
    """Symmetric (n_el, n_el) 0/1 matrix of elements sharing a face."""
    tets = np.asarray(tets)
    n = len(tets)
    faces = np.sort(np.concatenate([tets[:, list(f)] for f in _FACES]), axis=1)
    owner = np.tile(np.arange(n), len(_FACES))
    order = np.lexsort(faces.T[::-1])
    faces, owner = faces[order], owner[order]
    same = np.all(faces[1:] == faces[:-1], axis=1)
    a, b = owner[:-1][same], owner[1:][same]
    adj = sp.csr_matrix((np.ones(2 * len(a)), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n))
    return adj


@dataclass(frozen=True)
class BolusFill:
    """Filled fraction per element and what it means."""

    fraction: np.ndarray  # f_e in [0, 1]
    reach_m: float  # largest centroid distance from the tip of a filled element
    start_element: int
    overflow: float  # V / reachable accessible volume when V does not fit (else 0)


def fill_bolus(distance_m: np.ndarray, accessible_m3: np.ndarray, fillable: np.ndarray, adjacency: sp.csr_matrix,
               volume_m3: float) -> BolusFill:
    """Fill ``volume_m3`` into the fillable elements nearest the tip (see the module text).

    ``distance_m``: element-centroid distance from the tip; ``accessible_m3`` = phi_e V_e;
    ``fillable``: elements the injectate may enter. The fill starts from the nearest fillable
    element (the tip's own element unless the tip lies in a barrier).
    """
    d = np.asarray(distance_m, float)
    acc = np.asarray(accessible_m3, float)
    ok = np.asarray(fillable, bool)
    if not ok.any():
        raise ValidationError("the simulated region around the needle tip holds only tissues the injectate cannot enter (bone, vessel, ...)")
    candidates = np.flatnonzero(ok)
    candidates = candidates[np.argsort(d[candidates], kind="stable")]
    start = int(candidates[0])
    sub = adjacency[candidates][:, candidates].tocsr()

    def region(j: int) -> np.ndarray:
        """Fillable elements within distance d[candidates[j]], connected to the start."""
        _, labels = connected_components(sub[: j + 1, : j + 1], directed=False)
        out = np.zeros(len(d), bool)
        out[candidates[: j + 1][labels == labels[0]]] = True
        return out

    lo, hi = 0, len(candidates) - 1
    if float(acc[region(hi)].sum()) < volume_m3:
        full = region(hi)
        return BolusFill(full.astype(float), float(d[full].max()), start, volume_m3 / float(acc[full].sum()))
    while lo < hi:  # smallest j whose region holds V (the held volume grows with j)
        mid = (lo + hi) // 2
        if float(acc[region(mid)].sum()) >= volume_m3:
            hi = mid
        else:
            lo = mid + 1
    now = region(lo)
    before = region(lo - 1) if lo > 0 else np.zeros(len(d), bool)
    held_before = float(acc[before].sum())
    shell = now & ~before
    fraction = before.astype(float)
    fraction[shell] = (volume_m3 - held_before) / float(acc[shell].sum())
    return BolusFill(fraction, float(d[now].max()), start, 0.0)


def nodal_bolus(tets: np.ndarray, fill: BolusFill, accessible_m3: np.ndarray, capacity_m3: np.ndarray, concentration: float) -> np.ndarray:
    """Lumped nodal concentration of the filled elements: amount = concentration x filled volume
    (x ``fill.overflow`` when V did not fit, so the injected amount is still conserved)."""
    share = np.bincount(np.asarray(tets).ravel(), np.repeat(fill.fraction * accessible_m3 / 4.0, 4), len(capacity_m3))
    scale = fill.overflow if fill.overflow > 0 else 1.0
    return float(concentration) * scale * share / capacity_m3
