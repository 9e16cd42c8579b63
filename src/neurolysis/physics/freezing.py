"""Freezing tissue: properties, the enthalpy curve H(T) and the types of the enthalpy-method
freezing solver (:mod:`neurolysis.physics.phase_change`): mesh, properties, boundary,
state and step report.

H is the volumetric enthalpy (J/m^3), zero for fully frozen tissue at the solidus T_s;
latent heat L (J/m^3) is released linearly in H across the mushy range [T_s, T_l]:

    H(T) = C_f (T - T_s)                                    T <= T_s   (frozen)
    H(T) = (C_m + L / (T_l - T_s)) (T - T_s)                T_s < T < T_l,  C_m = (C_f + C_u) / 2
    H(T) = H_l + C_u (T - T_l),  H_l = C_m (T_l - T_s) + L   T >= T_l   (unfrozen)

T_s = T_l is allowed (isothermal phase change: H jumps by L at T_s). The inverse T(H) is
a function (piecewise linear, monotone, Lipschitz), so H is the primary unknown and the
frozen fraction is f = 1 - H / H_l clipped to [0, 1]. Conductivity follows the phase,
k(H) = k_u + (k_f - k_u) f(H), through the Kirchhoff transform Phi(H) = int k dT, so that
div(k grad T) = lap Phi; elements sharing (k_f, k_u) form one group (one per tissue).
Perfusion w_b (W/m^3/K, Pennes) stops as tissue freezes.

Discretisation is the caller's (any mesh, :class:`ConductionMesh`): lumped nodal volumes
V (m^3) and a function returning the stiffness matrix K(k_e) (W/K, all nodes, no boundary
conditions applied: its columns sum to zero); the boundary (:class:`HeatBoundary`) holds
prescribed-temperature nodes, a Robin exchange and prescribed nodal heat inflows (W).

SI units; temperatures in degrees Celsius.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import scipy.sparse as sp

from neurolysis._catalog import load_catalog
from neurolysis.tissue import load_tissue
from neurolysis.validation import ValidationError, check_choice, check_range


def frozen_array(values, name: str, size: int | None = None, dtype=float) -> np.ndarray:
    """A read-only copy of ``values`` (a scalar broadcast to ``size``), checked for shape and finiteness."""
    array = np.array(values, dtype=dtype)
    if array.ndim == 0 and size is not None:
        array = np.full(size, array.item(), dtype=dtype)
    if size is not None and array.shape != (size,):
        raise ValidationError(f"{name} has shape {array.shape}: must have shape ({size},)")
    if dtype is float and not np.all(np.isfinite(array)):
        raise ValidationError(f"{name} = {array[~np.isfinite(array)][0]}: must be finite")
    array.flags.writeable = False
    return array


# ---------------------------------------------------------------------------- material


@dataclass(frozen=True)
class FreezingMaterial:
    """One tissue's properties for freezing (SI; temperatures in C).

    Volumetric heat capacities C = rho c (J/m^3/K) frozen and unfrozen, latent heat per
    unit volume L = rho x_water L_water (J/m^3), conductivities (W/m/K), the mushy range
    [solidus_c, liquidus_c] and the Pennes perfusion coefficient w_b rho_b c_b (W/m^3/K).
    """

    solidus_c: float
    liquidus_c: float
    latent_heat_j_m3: float
    heat_capacity_frozen_j_m3_k: float
    heat_capacity_unfrozen_j_m3_k: float
    conductivity_frozen_w_m_k: float
    conductivity_unfrozen_w_m_k: float
    perfusion_w_m3_k: float = 0.0
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), compare=False)

    def __post_init__(self) -> None:
        check_range("solidus_c", self.solidus_c, -100.0, 0.0, unit="C")
        check_range("liquidus_c", self.liquidus_c, self.solidus_c, 0.0, unit="C")
        check_range("latent_heat_j_m3", self.latent_heat_j_m3, 0.0, 1e9, unit="J/m^3")
        for name in ("heat_capacity_frozen_j_m3_k", "heat_capacity_unfrozen_j_m3_k"):
            check_range(name, getattr(self, name), 1e4, 1e8, unit="J/m^3/K")
        for name in ("conductivity_frozen_w_m_k", "conductivity_unfrozen_w_m_k"):
            check_range(name, getattr(self, name), 1e-3, 1e3, unit="W/m/K")
        check_range("perfusion_w_m3_k", self.perfusion_w_m3_k, 0.0, 1e6, unit="W/m^3/K")

    @property
    def diffusivity_frozen_m2_s(self) -> float:
        return self.conductivity_frozen_w_m_k / self.heat_capacity_frozen_j_m3_k

    @property
    def diffusivity_unfrozen_m2_s(self) -> float:
        return self.conductivity_unfrozen_w_m_k / self.heat_capacity_unfrozen_j_m3_k


def freezing_tissue_ids() -> list[str]:
    """Tissues with freezing properties in ``data/freezing.toml``."""
    return list(load_catalog("freezing")["tissue"])


def freezing_material(tissue_id: str, *, perfused: bool = True) -> FreezingMaterial:
    """Freezing properties of a catalogued tissue.

    Unfrozen rho, c, k and perfusion come from ``data/tissues.toml`` (at 37 C); the water
    fraction, frozen c and k and the mushy range from ``data/freezing.toml``:
    L = rho x_water L_water, C_f = rho c_f.
    """
    check_choice("freezing tissue", tissue_id, freezing_tissue_ids())
    catalog = load_catalog("freezing")
    entry, mushy = catalog["tissue"][tissue_id], catalog["phase_change"]
    tissue = load_tissue(tissue_id)
    rho = tissue.density_kg_m3
    return FreezingMaterial(
        solidus_c=float(mushy["solidus_c"]),
        liquidus_c=float(mushy["liquidus_c"]),
        latent_heat_j_m3=rho * float(entry["water_mass_fraction"]) * float(catalog["water"]["latent_heat_fusion_j_kg"]),
        heat_capacity_frozen_j_m3_k=rho * float(entry["heat_capacity_frozen_j_kg_k"]),
        heat_capacity_unfrozen_j_m3_k=tissue.volumetric_heat_capacity_j_m3_k,
        conductivity_frozen_w_m_k=float(entry["thermal_conductivity_frozen_w_m_k"]),
        conductivity_unfrozen_w_m_k=tissue.thermal_conductivity_w_m_k,
        perfusion_w_m3_k=tissue.perfusion_w_m3_k if perfused else 0.0,
        sources=MappingProxyType(dict(entry.get("sources", {}))),
    )


def lethal_isotherms_c() -> dict[str, float]:
    """Catalogued cold-injury thresholds (C) by name, from ``data/freezing.toml``."""
    table = load_catalog("freezing")["lethal_isotherm"]
    return {name: float(value) for name, value in table.items() if name != "sources"}


def lethal_hold_s() -> float:
    """Time (s) tissue must spend at or below the lethal isotherm, summed over the freezes of
    a protocol, to die (``data/freezing.toml [lethal_hold]``; a judgement, see its source)."""
    return float(load_catalog("freezing")["lethal_hold"]["seconds"])


# ---------------------------------------------------------------------- enthalpy curve


@dataclass(frozen=True)
class EnthalpyCurve:
    """Nodal H(T) and its inverse (see the module docstring), arrays of shape (n,)."""

    solidus_c: float
    liquidus_c: float
    capacity_frozen: np.ndarray  # C_f, J/m^3/K
    capacity_unfrozen: np.ndarray  # C_u, J/m^3/K
    latent: np.ndarray  # L, J/m^3

    @property
    def mushy_capacity(self) -> np.ndarray:
        """C_m = (C_f + C_u) / 2, the sensible part inside the mushy range."""
        return 0.5 * (self.capacity_frozen + self.capacity_unfrozen)

    @property
    def liquidus_enthalpy(self) -> np.ndarray:
        """H_l = C_m (T_l - T_s) + L: enthalpy of just-unfrozen tissue (J/m^3)."""
        return self.mushy_capacity * (self.liquidus_c - self.solidus_c) + self.latent

    def enthalpy(self, temp_c: np.ndarray) -> np.ndarray:
        """H(T) in J/m^3 (at T = T_s exactly: frozen, H = 0)."""
        t = np.asarray(temp_c, float) - self.solidus_c
        width = self.liquidus_c - self.solidus_c
        h_l = self.liquidus_enthalpy
        mushy = h_l * t / width if width > 0 else np.zeros_like(t)
        return np.where(t <= 0, self.capacity_frozen * t, np.where(t < width, mushy, h_l + self.capacity_unfrozen * (t - width)))

    def temperature(self, enthalpy_j_m3: np.ndarray) -> np.ndarray:
        """T(H) in C: the inverse of ``enthalpy``, constant T_s across H in [0, L] if isothermal."""
        h = np.asarray(enthalpy_j_m3, float)
        h_l = self.liquidus_enthalpy
        width = self.liquidus_c - self.solidus_c
        mushy = self.solidus_c + width * np.clip(h, 0.0, h_l) / h_l
        frozen = self.solidus_c + np.minimum(h, 0.0) / self.capacity_frozen
        unfrozen = self.liquidus_c + np.maximum(h - h_l, 0.0) / self.capacity_unfrozen
        return np.where(h < 0, frozen, np.where(h > h_l, unfrozen, mushy))

    def frozen_fraction(self, enthalpy_j_m3: np.ndarray) -> np.ndarray:
        """f = 1 - H / H_l clipped to [0, 1]: the fraction of latent heat removed."""
        return np.clip(1.0 - np.asarray(enthalpy_j_m3, float) / self.liquidus_enthalpy, 0.0, 1.0)

    def conductivity(self, enthalpy_j_m3: np.ndarray, frozen_w_m_k: float, unfrozen_w_m_k: float) -> np.ndarray:
        """k(H) = k_u + (k_f - k_u) f(H) (W/m/K): linear in H across the mushy range."""
        return unfrozen_w_m_k + (frozen_w_m_k - unfrozen_w_m_k) * self.frozen_fraction(enthalpy_j_m3)

    def kirchhoff(self, enthalpy_j_m3: np.ndarray, frozen_w_m_k: float, unfrozen_w_m_k: float) -> np.ndarray:
        """Phi(H) = integral_{T_s}^{T(H)} k dT (W/m) along the enthalpy path:

            k_f (T - T_s)                                       frozen
            (T_l - T_s) / H_l (k_f H + (k_u - k_f) H^2 / (2 H_l))   mushy (k, T linear in H)
            (T_l - T_s) (k_f + k_u) / 2 + k_u (T - T_l)          unfrozen
        so that div(k grad T) = lap Phi, and dPhi/dH = k(H) dT/dH.
        """
        h = np.asarray(enthalpy_j_m3, float)
        h_l, width = self.liquidus_enthalpy, self.liquidus_c - self.solidus_c
        temp = self.temperature(h)
        hm = np.clip(h, 0.0, h_l)
        mushy = width / h_l * (frozen_w_m_k * hm + (unfrozen_w_m_k - frozen_w_m_k) * hm**2 / (2 * h_l))
        return np.where(
            h < 0,
            frozen_w_m_k * (temp - self.solidus_c),
            np.where(h > h_l, 0.5 * width * (frozen_w_m_k + unfrozen_w_m_k) + unfrozen_w_m_k * (temp - self.liquidus_c), mushy),
        )

    def slope(self, enthalpy_j_m3: np.ndarray) -> np.ndarray:
        """dT/dH (m^3 K/J) on the piece that contains H (frozen side at H = 0)."""
        h = np.asarray(enthalpy_j_m3, float)
        h_l = self.liquidus_enthalpy
        mushy = (self.liquidus_c - self.solidus_c) / h_l
        return np.where(h < 0, 1.0 / self.capacity_frozen, np.where(h > h_l, 1.0 / self.capacity_unfrozen, mushy))


# ---------------------------------------------------------------- mesh and properties


@dataclass(frozen=True)
class ConductionMesh:
    """What the kernel needs of a mesh.

    ``node_volume_m3``: lumped nodal volumes (for an axisymmetric mesh include 2 pi r).
    ``element_nodes``: (n_elements, nodes per element) connectivity.
    ``stiffness``: element conductivities (W/m/K, shape (n_elements,)) -> sparse K (W/K)
    over all nodes with no boundary condition applied (columns sum to zero), consistent
    with the volumes (same 2 pi convention).
    """

    node_volume_m3: np.ndarray
    element_nodes: np.ndarray
    stiffness: Callable[[np.ndarray], sp.spmatrix]

    def __post_init__(self) -> None:
        volume = frozen_array(self.node_volume_m3, "node_volume_m3")
        if volume.ndim != 1 or np.any(volume <= 0):
            raise ValidationError("node_volume_m3: must be a 1D array of volumes > 0 m^3")
        elements = frozen_array(self.element_nodes, "element_nodes", dtype=np.int64)
        if elements.ndim != 2 or elements.min() < 0 or elements.max() >= len(volume):
            raise ValidationError(f"element_nodes: must be (n_elements, k) indices in [0, {len(volume) - 1}]")
        object.__setattr__(self, "node_volume_m3", volume)
        object.__setattr__(self, "element_nodes", elements)

    @property
    def n_nodes(self) -> int:
        return len(self.node_volume_m3)

    @property
    def n_elements(self) -> int:
        return len(self.element_nodes)


@dataclass(frozen=True)
class FreezingProperties:
    """Properties laid on a mesh: nodal enthalpy curve and perfusion, element conductivity."""

    curve: EnthalpyCurve
    conductivity_frozen_w_m_k: np.ndarray  # (n_elements,)
    conductivity_unfrozen_w_m_k: np.ndarray  # (n_elements,)
    perfusion_w_m3_k: np.ndarray  # (n_nodes,)
    blood_temp_c: float = 37.0

    def conductivity_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (k_f, k_u) pairs (shape (m, 2)) and each element's group index."""
        pairs = np.column_stack([self.conductivity_frozen_w_m_k, self.conductivity_unfrozen_w_m_k])
        groups, index = np.unique(pairs, axis=0, return_inverse=True)
        return groups, index.reshape(-1)


def uniform_properties(material: FreezingMaterial, mesh: ConductionMesh, blood_temp_c: float = 37.0) -> FreezingProperties:
    """One material everywhere on ``mesh``."""
    check_range("blood_temp_c", blood_temp_c, 0.0, 45.0, unit="C")
    n, n_el = mesh.n_nodes, mesh.n_elements
    curve = EnthalpyCurve(
        material.solidus_c,
        material.liquidus_c,
        frozen_array(material.heat_capacity_frozen_j_m3_k, "capacity_frozen", n),
        frozen_array(material.heat_capacity_unfrozen_j_m3_k, "capacity_unfrozen", n),
        frozen_array(material.latent_heat_j_m3, "latent", n),
    )
    return FreezingProperties(
        curve,
        frozen_array(material.conductivity_frozen_w_m_k, "conductivity_frozen", n_el),
        frozen_array(material.conductivity_unfrozen_w_m_k, "conductivity_unfrozen", n_el),
        frozen_array(material.perfusion_w_m3_k, "perfusion", n),
        float(blood_temp_c),
    )


def line_mesh(nodes_m: np.ndarray, geometry: str = "planar") -> ConductionMesh:
    """P1 elements on a 1D grid: a slab of unit area (``planar``) or a cylinder of unit
    length about r = 0 (``cylindrical``, x = r, weight 2 pi r).

    Element stiffness k_e W_e / h_e [[1, -1], [-1, 1]] with W_e = 1 (planar) or
    2 pi r_mid (exact for P1); lumped volumes are the row sums of the consistent mass:
    h / 2 (planar) or 2 pi h (2 r_i + r_j) / 6 (cylindrical).
    """
    check_choice("geometry", geometry, ("planar", "cylindrical"))
    x = frozen_array(nodes_m, "nodes_m")
    h = np.diff(x)
    if x.ndim != 1 or len(x) < 2 or np.any(h <= 0) or (geometry == "cylindrical" and x[0] < 0):
        raise ValidationError("nodes_m: must be increasing (and >= 0 for cylindrical)")
    left, right = np.arange(len(h)), np.arange(1, len(x))
    if geometry == "planar":
        weight, vol_left, vol_right = np.ones_like(h), 0.5 * h, 0.5 * h
    else:
        weight = np.pi * (x[:-1] + x[1:])
        vol_left, vol_right = 2 * np.pi * h * (2 * x[:-1] + x[1:]) / 6, 2 * np.pi * h * (x[:-1] + 2 * x[1:]) / 6
    volume = np.bincount(left, vol_left, len(x)) + np.bincount(right, vol_right, len(x))
    rows = np.concatenate([left, right, left, right])
    cols = np.concatenate([left, right, right, left])
    unit = weight / h

    def stiffness(conductivity: np.ndarray) -> sp.csr_matrix:
        g = conductivity * unit
        return sp.csr_matrix((np.concatenate([g, g, -g, -g]), (rows, cols)), shape=(len(x), len(x)))

    return ConductionMesh(volume, np.column_stack([left, right]), stiffness)


# ------------------------------------------------------------------------- boundary


@dataclass(frozen=True)
class HeatBoundary:
    """Boundary conditions held during one phase.

    ``fixed_nodes`` at ``fixed_temp_c`` (a probe surface at its tip temperature);
    ``exchange_conductance_w_k`` (nodal G, W/K) toward ``exchange_temp_c``: inflow
    G (T_g - T) (a heat-transfer coefficient times the nodal surface area);
    ``inflow_w``: prescribed nodal heat inflow (W, positive into the tissue).
    Unlisted boundaries are insulated.
    """

    fixed_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    fixed_temp_c: np.ndarray | float = 0.0
    exchange_conductance_w_k: np.ndarray | None = None
    exchange_temp_c: np.ndarray | float = 0.0
    inflow_w: np.ndarray | None = None

    def __post_init__(self) -> None:
        nodes = frozen_array(self.fixed_nodes, "fixed_nodes", dtype=np.int64).reshape(-1)
        object.__setattr__(self, "fixed_nodes", nodes)
        temps = np.broadcast_to(np.asarray(self.fixed_temp_c, float), nodes.shape)
        object.__setattr__(self, "fixed_temp_c", frozen_array(temps, "fixed_temp_c"))
        if np.any(self.fixed_temp_c < -273.15):
            raise ValidationError(f"fixed_temp_c = {self.fixed_temp_c.min():g} C: must be >= -273.15 C")
        check_range("exchange_temp_c", float(np.min(self.exchange_temp_c)), -273.15, unit="C")
        if self.exchange_conductance_w_k is not None and np.any(np.asarray(self.exchange_conductance_w_k) < 0):
            raise ValidationError("exchange_conductance_w_k: must be >= 0 W/K")


# ------------------------------------------------------------------- state and report


@dataclass(frozen=True)
class FreezingState:
    """Nodal fields at ``time_s``, with running minimum temperature and time below thresholds."""

    time_s: float
    enthalpy_j_m3: np.ndarray
    temp_c: np.ndarray
    frozen_fraction: np.ndarray
    min_temp_c: np.ndarray
    thresholds_c: tuple[float, ...]
    time_below_s: np.ndarray  # (len(thresholds_c), n_nodes)

    def energy_j(self, mesh: ConductionMesh) -> float:
        """Total enthalpy sum_i V_i H_i (J, relative to frozen tissue at the solidus)."""
        return float(mesh.node_volume_m3 @ self.enthalpy_j_m3)

    def frozen_volume_m3(self, mesh: ConductionMesh) -> float:
        """Ice volume sum_i V_i f_i (m^3)."""
        return float(mesh.node_volume_m3 @ self.frozen_fraction)


@dataclass(frozen=True)
class StepReport:
    """Energy (J) that entered the tissue during one step, by route, and solver effort.

    ``energy_error_j`` = dt x sum of free-node residuals: stored-energy change minus all
    inflows (zero for an exactly solved step).
    """

    time_s: float
    dt_s: float
    newton_iterations: int
    substeps: int
    fixed_nodes_j: float
    exchange_j: float
    inflow_j: float
    perfusion_j: float
    energy_error_j: float


def time_below(temp_start_c: np.ndarray, temp_end_c: np.ndarray, threshold_c: float, dt_s: float) -> np.ndarray:
    """Time (s) within a step that T, linear in time from start to end, spends below the threshold."""
    low, high = np.minimum(temp_start_c, temp_end_c), np.maximum(temp_start_c, temp_end_c)
    span = high - low
    fraction = np.where(span > 0, (threshold_c - low) / np.where(span > 0, span, 1.0), (low < threshold_c).astype(float))
    return dt_s * np.clip(fraction, 0.0, 1.0)
