"""Dose received by each critical structure of a scene, and whether it is an injury.

Each ``scene.critical`` structure is sampled where it lies inside a region of interest
(box) around the needle: region structures at the points of a regular grid (spacing
``spacing_m``) whose ``scene.label_at`` is one of its regions; nerve structures on their
own tube (rings at r = 0, R/2, R, 8 angles, every spacing/2 along the centerline; the
whole nerve, since the tube is cheap); vessel structures (kinds with a ``wall`` table:
artery, vein) on their wall, a shell from the lumen surface out to a wall thickness from
data, never the lumen itself (:func:`wall_points`; blood flow is credited by the engines'
lumen sinks). All points go to the field sampler in one call.
Peak temperature, Omega and CEM43 are the maxima over the structure's points; the
criteria of its kind (``data/risk.toml``, most severe first) set ``injured`` and the
reason. ``distance_to_lesion_mm`` is the smallest distance between the structure's
points and the lethal points found (grid + tubes + ``lethal_points_m``), accurate to
about one grid spacing; 0 when the lesion reaches the structure.

A structure with no point in the box is reported as not reached (body temperature, no
dose) with a lower bound on its distance: the distance from the lesion to the box faces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.centreline import nerve_frame
from neurolysis.anatomy.scene import CriticalStructure, Scene
from neurolysis.chemistry import neurolytic_agents
from neurolysis.fields import FieldSampler
from neurolysis.physics.freezing import lethal_hold_s, lethal_isotherms_c
from neurolysis.validation import ValidationError, check_range

_UNITS = {"cem43_min": ("CEM43", "min"), "peak_temp_c": ("peak temperature", "C"), "omega": ("Omega", ""), "agent_fraction": ("injected agent reaching it (fraction of the injected concentration)", ""), "agent_mmol_l": ("agent concentration", "mmol/L")}

COLD_CRITERION = f"the method's lethal region, at or below {lethal_isotherms_c()['default']:g} C for {lethal_hold_s():g} s in all (data/freezing.toml)"
"""How a cold method's injury is judged (a vessel wall as any tissue: data/freezing.toml [lethal_hold])."""


@dataclass(frozen=True)
class StructureRisk:
    """Dose and injury flag of one critical structure (user units: C, min, mm)."""

    name: str
    kind: str
    peak_temp_c: float
    omega: float
    cem43_min: float
    injured: bool
    reason: str
    distance_to_lesion_mm: float | None
    consequence: str
    lethal_fraction: float = 0.0  # share of the structure's sample points that are lethal
    n_points: int = 0
    in_box: bool = True
    distance_is_lower_bound: bool = False
    agent_fraction: float = 0.0  # injected methods: peak concentration there / injected concentration
    min_temp_c: float | None = None  # cold methods: the lowest temperature it reached (C)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("peak_temp_c", "omega", "cem43_min", "lethal_fraction", "agent_fraction"):
            d[key] = round(float(d[key]), 4)
        if d["min_temp_c"] is not None:
            d["min_temp_c"] = round(float(d["min_temp_c"]), 2)
        if d["distance_to_lesion_mm"] is not None:
            d["distance_to_lesion_mm"] = round(float(d["distance_to_lesion_mm"]), 3)
        return d

    @property
    def warning(self) -> str | None:
        """One capitalised line when injured (``risk_warnings`` orders them)."""
        if not self.injured:
            return None
        label = _kind_entry(self.kind)[1]["label"]
        head = (label if label != "structure" else self.kind).upper()
        return f"{head} AT RISK ({self.name}): {self.reason}. Consequence: {self.consequence}"


def _kind_entry(kind: str) -> tuple[str, Mapping]:
    cat = load_catalog("risk")
    if kind in cat["kind"]:
        return kind, cat["kind"][kind]
    return cat["default_kind"], cat["kind"][cat["default_kind"]]


def _box(box_m) -> tuple[np.ndarray, np.ndarray]:
    try:
        lo, hi = (np.asarray(b, dtype=float).reshape(3) for b in box_m)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"box_m = {box_m!r}: must be (lo, hi), two points of 3 numbers (m)") from exc
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValidationError(f"box_m = {box_m!r}: must be finite")
    if np.any(hi <= lo):
        raise ValidationError(f"box_m = ({list(lo)}, {list(hi)}): hi must exceed lo on every axis")
    return lo, hi


def _grid(lo: np.ndarray, hi: np.ndarray, spacing: float) -> np.ndarray:
    counts = np.floor((hi - lo) / spacing + 1e-9).astype(int) + 1
    limit = int(load_catalog("risk")["spacing_max_points"])
    if int(np.prod(counts)) > limit:
        raise ValidationError(f"spacing_m = {spacing:g}: box needs {int(np.prod(counts))} grid points, more than {limit}; use a larger spacing or a smaller box")
    axes = [lo[i] + spacing * np.arange(counts[i]) for i in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _tube_points(centerline_m: np.ndarray, radius_m: float, spacing: float) -> np.ndarray:
    frame = nerve_frame(centerline_m, spacing / 2.0)
    ang = np.linspace(0.0, 2 * np.pi, 8, endpoint=False)
    x = np.concatenate([[0.0], 0.5 * radius_m * np.cos(ang), radius_m * np.cos(ang)])
    y = np.concatenate([[0.0], 0.5 * radius_m * np.sin(ang), radius_m * np.sin(ang)])
    return frame.offset_points(x, y).reshape(-1, 3)


def solute_of(settings) -> str | None:
    """The neurolytic solute a method's settings inject (ethanol | phenol), else None (a block's anaesthetic, heat, cold)."""
    agent = settings.get("agent") if isinstance(settings, Mapping) else None
    agents = neurolytic_agents()
    return agents[agent].solute if agent in agents else None


def injury_verdict(kind: str, lethal_any: bool, values: Mapping[str, float]) -> tuple[bool, str]:
    """(injured, reason) of a structure of ``kind`` by the catalogued criteria, most severe first.

    A criterion with ``max_lumen_diameter_mm`` (vessels) is skipped when ``values`` gives a
    larger ``lumen_diameter_mm``; without it (unknown size) it applies: the safe side."""
    key, entry = _kind_entry(kind)
    label = entry["label"]
    no_data = "" if key == kind else f" [no thresholds for kind {kind!r}: conservative default]"
    checked: dict[str, str] = {}  # per measure, the last (lowest) threshold checked
    lumen_mm = values.get("lumen_diameter_mm")
    for c in entry["criteria"]:
        m, thr = c["measure"], float(c["threshold"])
        if "solute" in c and values.get("agent_solute") != c["solute"]:
            continue  # a threshold measured for one neurolytic solute (data/risk.toml)
        if "max_lumen_diameter_mm" in c and lumen_mm is not None and lumen_mm > float(c["max_lumen_diameter_mm"]):
            v = values.get(m, float(lethal_any))
            what, unit = ("lethal region", "") if m == "lethal" else _UNITS[m]
            shown = ("reached" if lethal_any else "not reached") if m == "lethal" else (f"{100 * v:.0f} %" if m == "agent_fraction" else f"{v:.1f} {unit}".rstrip())
            checked[m] = f"{what} {shown} at the wall: not applied, lumen ~{lumen_mm:.0f} mm > {float(c['max_lumen_diameter_mm']):g} mm ({c['size_reason']})"
            continue
        if m == "lethal":
            if lethal_any:
                return True, f"{label}: inside the method's lethal region (its kill criterion) -> {c['meaning']}{no_data}"
            checked[m] = "lethal region not reached"
            continue
        v = values[m]
        what, unit = _UNITS[m]
        shown, limit = (f"{100 * v:.0f} %", f"{100 * thr:g} %") if m == "agent_fraction" else (f"{v:.1f} {unit}".rstrip(), f"{thr:g} {unit}".rstrip())
        if v >= thr:
            return True, f"{label}: {what} {shown} >= {limit} -> {c['meaning']} ({c['source']}){no_data}"
        checked[m] = f"{what} {shown} < {limit}"
    return False, f"{label}: no threshold reached ({'; '.join(checked.values())}){no_data}"


@dataclass(frozen=True, eq=False)
class StructurePoints:
    """Where the critical structures are sampled: ``points`` (n, 3, anatomy frame, m);
    ``index[k]`` the rows of ``scene.critical[k]``; ``in_box[k]`` whether any lies in the box;
    ``lumen_diameter_mm[k]`` a vessel's equivalent lumen diameter in the box (None otherwise)."""

    points: np.ndarray
    index: tuple[np.ndarray, ...]
    in_box: tuple[bool, ...]
    lumen_diameter_mm: tuple[float | None, ...] = ()  # vessels: equivalent lumen diameter; else None


def structure_points(scene: Scene, lo: np.ndarray, hi: np.ndarray, spacing: float) -> StructurePoints:
    """Grid points (``spacing``) of the box ``lo``-``hi`` labelled with a structure's regions,
    and the whole tube of each nerve structure, for every ``scene.critical`` structure."""
    grid = _grid(lo, hi, spacing)
    labels = np.asarray(scene.label_at(grid))
    if labels.shape != (grid.shape[0],):
        raise ValueError(f"scene {scene.name!r}: label_at returned shape {labels.shape} for {grid.shape[0]} points")
    region_index = {name: i for i, name in enumerate(scene.region_names)}
    blocks: list[np.ndarray] = [grid]
    index, in_box, lumen = [], [], []
    start = grid.shape[0]
    for s in scene.critical:
        if s.nerve is not None:
            try:
                nerve = scene.nerve(s.nerve)
            except KeyError as exc:
                names = ", ".join(n.name for n in scene.nerves)
                raise ValidationError(f"critical structure {s.name!r}: nerve = {s.nerve!r}: allowed values are {names}") from exc
            pts = _tube_points(nerve.centerline_m, nerve.radius_m, spacing)
            blocks.append(pts)
            index.append(np.arange(start, start + pts.shape[0]))
            in_box.append(bool(np.any(np.all((pts >= lo) & (pts <= hi), axis=1))))
            start += pts.shape[0]
        else:
            unknown = [r for r in s.regions if r not in region_index]
            if unknown or not s.regions:
                raise ValidationError(f"critical structure {s.name!r}: regions = {list(s.regions)}: allowed values are {', '.join(scene.region_names)}")
            ids = np.array([region_index[r] for r in s.regions])
            inside = np.isin(labels, ids)
            wall = _wall_entry(s.kind)
            if wall is None:
                idx, diameter = np.flatnonzero(inside), None
            else:  # a vessel: its wall, a shell outside the lumen; the lumen's own points do not count
                pts, radius = wall_points(scene, inside, ids, lo, hi, spacing, wall)
                blocks.append(pts)
                idx = np.arange(start, start + pts.shape[0])
                start += pts.shape[0]
                diameter = None if radius is None else 2e3 * radius
            index.append(idx)
            in_box.append(idx.size > 0)
            lumen.append(diameter)
            continue
        lumen.append(None)
    return StructurePoints(np.concatenate(blocks), tuple(index), tuple(in_box), tuple(lumen))


def _wall_entry(kind: str) -> Mapping | None:
    """The ``[wall]`` table of ``kind`` in ``data/risk.toml`` (vessels), else None."""
    return _kind_entry(kind)[1].get("wall")


def lumen_radius_m(n_lumen: int, n_faces: int, spacing: float) -> float:
    """Equivalent lumen radius (m) from the grid: r = 2 V / A (exact for a cylinder's side),
    V = n_lumen h^3, A = n_faces h^2 / 1.5 (a staircase has 1.5x the area of a smooth
    surface with isotropic normals); a one-point-thick line of lumen gives r = 0.75 h."""
    return 2.0 * n_lumen * spacing**3 / (n_faces * spacing**2 / 1.5)


def wall_thickness_m(radius_m: float, wall: Mapping) -> float:
    """Wall thickness (m): ``wall_to_radius`` x lumen radius, clipped to [min, max] (data/risk.toml)."""
    t = float(wall["wall_to_radius"]) * radius_m
    return float(np.clip(t, float(wall["thickness_min_mm"]) * 1e-3, float(wall["thickness_max_mm"]) * 1e-3))


def wall_points(scene: Scene, inside: np.ndarray, ids: np.ndarray, lo, hi, spacing: float, wall: Mapping) -> tuple[np.ndarray, float | None]:
    """Points of a vessel's wall, and its lumen radius (m; None without a lumen in the box).

    Where a grid line leaves the lumen (grid points ``inside``) the lumen surface is found by
    bisection with ``scene.label_at`` (to spacing/64); from its outer side, points at
    ``wall.depths`` x the wall thickness outward along that grid line. Points in the lumen
    (any region ``ids``) or outside the box are dropped."""
    counts = np.floor((hi - lo) / spacing + 1e-9).astype(int) + 1
    mask = inside.reshape(counts)
    starts, steps = [], []
    n_faces = 0
    for axis in range(3):
        first, second = [slice(None)] * 3, [slice(None)] * 3
        first[axis], second[axis] = slice(0, -1), slice(1, None)
        m0, m1 = mask[tuple(first)], mask[tuple(second)]
        for sign, pair in ((1, m0 & ~m1), (-1, m1 & ~m0)):
            ijk = np.argwhere(pair)
            if sign < 0:
                ijk[:, axis] += 1  # the lumen point is the second of the pair
            n_faces += len(ijk)
            starts.append(lo + spacing * ijk)
            step = np.zeros(3)
            step[axis] = sign * spacing
            steps.append(np.tile(step, (len(ijk), 1)))
    if not n_faces:
        return np.zeros((0, 3)), None
    p_in, d = np.concatenate(starts), np.concatenate(steps)
    a, b = np.zeros(len(p_in)), np.ones(len(p_in))  # fraction of the step: a in the lumen, b out
    for _ in range(6):
        mid = 0.5 * (a + b)
        lumen = np.isin(np.asarray(scene.label_at(p_in + mid[:, None] * d)), ids)
        a, b = np.where(lumen, mid, a), np.where(lumen, b, mid)
    radius = lumen_radius_m(int(inside.sum()), n_faces, spacing)
    thickness = wall_thickness_m(radius, wall)
    unit = d / spacing
    surface = p_in + b[:, None] * d
    depths = np.asarray(wall["depths"], float) * thickness
    pts = (surface[None, :, :] + depths[:, None, None] * unit[None, :, :]).reshape(-1, 3)
    keep = np.all((pts >= lo) & (pts <= hi), axis=1)
    pts = pts[keep]
    return pts[~np.isin(np.asarray(scene.label_at(pts)), ids)], radius


def assess_risk(
    scene: Scene,
    sampler: FieldSampler,
    *,
    box_m,
    spacing_m: float = 0.5e-3,
    lethal_points_m: np.ndarray | None = None,
) -> tuple[StructureRisk, ...]:
    """Dose and injury of every ``scene.critical`` structure (same order).

    ``box_m`` = (lo, hi) corners (m) of the region of interest around the needle;
    ``spacing_m`` the grid spacing (m); ``lethal_points_m`` (n, 3) optional extra points
    known to be lethal (e.g. the engine's own lesion nodes) for the distance.
    """
    lo, hi = _box(box_m)
    spacing = check_range("spacing_m", spacing_m, 1e-5, 5e-3, unit="m")
    cat = load_catalog("risk")
    body_c = float(cat["body_temp_c"])

    where = structure_points(scene, lo, hi, spacing)
    points = where.points
    sample = sampler(points)
    fields = {}
    for name in ("peak_temp_c", "omega", "cem43_min", "lethal"):
        arr = np.asarray(getattr(sample, name))
        if arr.shape != (points.shape[0],):
            raise ValueError(f"field sampler returned {name} of shape {arr.shape} for {points.shape[0]} points")
        if name != "lethal" and not np.all(np.isfinite(arr)):
            raise ValueError(f"field sampler returned non-finite {name}")
        fields[name] = arr.astype(bool) if name == "lethal" else arr.astype(float)
    lethal = fields["lethal"]
    agent = sample.agent_fraction
    fields["agent_fraction"] = np.zeros(points.shape[0]) if agent is None else np.nan_to_num(np.asarray(agent, float).reshape(points.shape[0]))
    molar = sample.agent_mmol_l
    fields["agent_mmol_l"] = np.zeros(points.shape[0]) if molar is None else np.nan_to_num(np.asarray(molar, float).reshape(points.shape[0]))
    solute = sample.agent_solute
    if sample.min_temp_c is not None:
        fields["min_temp_c"] = np.asarray(sample.min_temp_c, float).reshape(points.shape[0])

    lesion = points[lethal]
    if lethal_points_m is not None:
        extra = np.asarray(lethal_points_m, float).reshape(-1, 3)
        lesion = np.concatenate([lesion, extra[np.all(np.isfinite(extra), axis=1)]])
    tree = cKDTree(lesion) if lesion.shape[0] else None
    box_gap_mm = None
    if tree is not None:
        # a structure outside the box lies beyond one of its faces inside the scene (faces on
        # the scene's own bounds have nothing beyond them)
        scene_lo, scene_hi = (np.asarray(b, float) for b in scene.bounds_m)
        open_lo, open_hi = lo > scene_lo + 1e-9, hi < scene_hi - 1e-9
        inside = lesion[np.all((lesion >= lo) & (lesion <= hi), axis=1)]
        if not (open_lo.any() or open_hi.any()):
            box_gap_mm = None  # the box is the whole scene: every structure was sampled
        elif inside.shape[0]:
            box_gap_mm = float(np.concatenate([(inside - lo)[:, open_lo], (hi - inside)[:, open_hi]], axis=1).min() * 1e3)
        else:
            box_gap_mm = 0.0

    out = []
    for k, structure in enumerate(scene.critical):
        out.append(_structure(structure, where.index[k], points, fields, tree, box_gap_mm, where.in_box[k], body_c, lo, hi, where.lumen_diameter_mm[k], solute))
    return tuple(out)


def _structure(s: CriticalStructure, idx, points, fields, tree, box_gap_mm, in_box, body_c, lo, hi, lumen_mm, solute=None) -> StructureRisk:
    consequence = _kind_entry(s.kind)[1]["consequence"]
    if idx.size == 0:
        box = " to ".join("[" + ", ".join(f"{v * 1e3:.0f}" for v in b) + "]" for b in (lo, hi))
        reason = f"not reached: no part of it lies in the region of interest {box} mm (body temperature assumed; distance is a lower bound)"
        return StructureRisk(s.name, s.kind, body_c, 0.0, 0.0, False, reason, box_gap_mm, consequence, 0.0, 0, False, box_gap_mm is not None, 0.0,
                             body_c if "min_temp_c" in fields else None)  # fmt: skip
    peak = float(fields["peak_temp_c"][idx].max())
    omega = float(fields["omega"][idx].max())
    cem = float(fields["cem43_min"][idx].max())
    lethal = fields["lethal"][idx]
    agent = float(fields["agent_fraction"][idx].max())
    molar = float(fields["agent_mmol_l"][idx].max())
    injured, reason = injury_verdict(s.kind, bool(lethal.any()), {"peak_temp_c": peak, "omega": omega, "cem43_min": cem, "agent_fraction": agent,
                                                                  "agent_mmol_l": molar, "agent_solute": solute, "lumen_diameter_mm": lumen_mm})
    cold = float(fields["min_temp_c"][idx].min()) if "min_temp_c" in fields else None
    if cold is not None:
        reason += f"; minimum {cold:.1f} C (cold criterion: {COLD_CRITERION})"
    distance = None
    if tree is not None:
        distance = 0.0 if lethal.any() else float(tree.query(points[idx], k=1)[0].min() * 1e3)
    return StructureRisk(s.name, s.kind, peak, omega, cem, injured, reason, distance, consequence, float(lethal.mean()), int(idx.size), in_box, False, agent, cold)


def risk_warnings(risks: Iterable[StructureRisk]) -> list[str]:
    """One capitalised warning per injured structure, spinal cord first (``warning_rank``)."""
    flagged = [r for r in risks if r.injured]
    flagged.sort(key=lambda r: (int(_kind_entry(r.kind)[1]["warning_rank"]), -r.lethal_fraction, r.name))
    return [r.warning for r in flagged]


__all__ = ["StructureRisk", "assess_risk", "risk_warnings"]
