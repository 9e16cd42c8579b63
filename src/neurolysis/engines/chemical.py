"""Chemical neurolysis (ethanol, phenol) in 3D anatomy: bolus, transport with clearance, axon dose.

Each of ``injections`` injections, ``interval_h`` apart, at the needle's tip or at its own
tip position (``injection_tips_m``: an operator's repeats land where the re-aimed needle is,
not on the same point):

1. the bolus (:mod:`neurolysis.physics.bolus`): the volume V fills the accessible fraction
   phi_e of the elements nearest that injection's tip that it can enter (not the ``[spread]
   barrier_tissues``: bone, dense fascia, vessel lumen, ...) and that connect to the tip through
   filled elements -- a sphere r_b = (3 V / (4 pi phi))^(1/3) in homogeneous tissue, grown
   along the compartment where barriers bound it (a nerve is not filled: the agent enters it
   through its sheath); the amount V c_inj exactly, diluted at once into the tissue water of
   the filled elements, c = c_inj phi / theta (a membrane-permeant agent; ``capacity_fraction``);
   it is *added* to what is left of the previous injections (``ExposureAccumulator.restart``);
2. transport for ``interval_h`` (the last injection too: the observation window),

       theta dc/dt = div(D_eff grad c) - k theta c,

   on the needle-aligned tet mesh of the RF engine (:mod:`neurolysis.physics.mesh3d`), P1,
   lumped capacity m_i = sum_e theta_e V_e / 4, nodal clearance k_i = sum_e theta_e k_e V_e / 4 / m_i,
   zero-flux far boundary; a vessel lumen ("blood") has a washout k ~ 10 /s (a sink). Steps
   grow geometrically, dt_n = dt_0 g^n; each is a Strang split (``PositiveTransportSolver``):
   exact clearance for dt/2, backward Euler diffusion on the stiffness made an M-matrix
   (discrete upwinding of the obtuse-angle entries), exact clearance for dt/2: c >= 0 and
   c <= max c0 for any step (discrete maximum principle), and S = sum m_i c_i loses exactly
   the cleared amount (checked per run, ``mass_balance``). While the dose can still grow
   (max rate(c) / min k > 1e-3) dt <= 0.25 / max k of the tissues the bolus fills, then uncapped;
3. the axon lethal index  Lambda = int rate(c) dt  (``chemistry.dose_response``) accumulates
   at every node over all injections (trapezoid per step); an axon dies where Lambda >= 1, and
   its endoneurial tubes are destroyed (Sunderland >= 3) where also int (c - C_d)+ / K_f dt >= 1.
   Volumes (``lethal_volume_ml``, ``spread_volume_ml``) integrate the P1 field's indicator over
   each element on a barycentric lattice (:func:`volume_above_m3`), not whole node volumes.

Tissue per element: ``scene.region_tissue[scene.label_at(centroid)]`` or ``tissue``.
Coefficients from ``chemistry.transport_coefficients`` (stand-ins :data:`TRANSPORT_STAND_IN`,
named in the warnings). Sheath: nerve elements sharing a node with a non-nerve element take
the "perineurium" coefficients, with D set so that the element (size h) has the permeance of a
perineurium of thickness L_p in series with endoneurium, D = h / (L_p / D_p + (h - L_p) / D_n)
(the barrier no longer grows with the element size). The needle
is not a hole in the mesh (its 0.7 mm is small against the bolus).

Model and measured accuracy: docs/models/chemical.md ("3D engine").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
from threadpoolctl import threadpool_limits

from neurolysis import devices as catalog
from neurolysis._catalog import load_catalog
from neurolysis.about import DISCLAIMER
from neurolysis.anatomy.scene import Scene
from neurolysis.chemistry import WEIGHT_RANGE_KG, check_neurolytic_injection, dose_response, systemic_exposure, transport_coefficients
from neurolysis.engines.poses import NeedleFrame, pose_frame, tissue_at
from neurolysis.fields import FieldSample, NeedlePose, unharmed
from neurolysis.physics.bolus import face_adjacency, fill_bolus, nodal_bolus
from neurolysis.physics.fem3d import StiffnessPattern, TetGeometry
from neurolysis.physics.lesion import volume_above_m3
from neurolysis.physics.linear import JacobiCGSolver
from neurolysis.physics.mesh import NeedleGeometry
from neurolysis.physics.mesh3d import Mesh3DSpec, NeedleMesh3D, build_needle_mesh3d
from neurolysis.physics.transport import ML_TO_M3, ExposureAccumulator, PositiveTransportSolver, TransportOperators, bolus_radius_m
from neurolysis.validation import ValidationError, check_choice, check_number, check_range

HOUR_S = 3600.0

DEFAULT_CHEMICAL_MESH = Mesh3DSpec(h_fine_m=0.75e-3, sectors=24, fine_margin_m=12e-3, domain_m=30e-3, growth=1.3, edge_levels=1)
"""Bolus-scale mesh: 0.75 mm out to 12 mm from the needle (0.5-1 mL boluses have r_b = 8.4-10.6 mm
at phi = 0.2), then growing x1.3 to 42 mm; 24 sectors (docs/models/chemical.md, "3D engine")."""

NEEDLE_GAUGE = 22  # injection needle for the mesh; its tip is the bolus centre

FIRST_STEP_S = 0.25
STEP_GROWTH = 1.4
MAX_STEP_S = 1800.0
CLEARANCE_STEP = 0.25
"""While the dose can still grow, dt <= CLEARANCE_STEP / max k of the filled tissues (c changes by < ~25 % per step: trapezoid dose)."""
IDLE_DOSE = 1e-3
"""The dose is taken as settled when max rate(c) / min k < IDLE_DOSE (what is left can add < ~1e-3)."""

MAX_INJECTIONS, MAX_INTERVAL_H, MAX_RATE_ML_PER_MIN = 20, 14 * 24.0, 60.0
INSTANT_SPREAD_FRACTION = 0.1
"""The spread is taken as instantaneous; warn when the injection lasts longer than this
fraction of the diffusion time r_b^2 / a (a = D_eff / phi)."""

SHEATH_M = float(load_catalog("agents")["dose_response"]["topical"]["perineurium_m"])
"""Perineurium thickness L_p: the one-element sheath of the mesh gets D = h / (L_p / D_p + (h - L_p) / D_nerve), the permeance of the real layer."""

TRANSPORT_STAND_IN = {k: v for k, v in load_catalog("agents")["transport_stand_in"].items() if k != "sources"}
"""Tissues without transport data and the tissue whose coefficients they use (``data/agents.toml [transport_stand_in]``, with sources)."""
BARRIER_TISSUES = frozenset(load_catalog("agents")["spread"]["barrier_tissues"])
"""Tissues the bolus does not fill (bone, dense fascia, vessel lumen, ...; ``data/agents.toml [spread]``)."""


@dataclass(frozen=True, eq=False)
class ChemicalFields:
    """Nodal fields on the mesh and the frame placing it in the anatomy."""

    mesh: NeedleMesh3D
    frame: NeedleFrame
    node_volume_m3: np.ndarray
    concentration_pct: np.ndarray  # at the end of the run
    peak_pct: np.ndarray  # over the whole run
    dose_after: tuple[np.ndarray, ...]  # lethal index Lambda after each injection (+ its interval)
    peak_per_injection_pct: tuple[np.ndarray, ...]
    tubes_after: tuple[np.ndarray, ...] = ()  # tube-destruction index after each injection
    _located: dict = field(default_factory=dict, compare=False, repr=False)

    def interpolate(self, nodal: np.ndarray, points_m: np.ndarray) -> np.ndarray:
        """P1 interpolation of a nodal field at points (n, 3) of the anatomy frame (0 off the
        mesh); the point location is cached for the last point set (samplers of several
        injections at the same nerve points locate once)."""
        points = np.ascontiguousarray(points_m, dtype=float)
        key = (points.shape, points.tobytes())
        if self._located.get("key") != key:
            tet, w = self.mesh.locate(self.frame.to_local(points))
            self._located.clear()
            self._located.update(key=key, tet=tet, w=w)
        tet, w = self._located["tet"], self._located["w"]
        out = np.zeros(len(tet))
        ok = tet >= 0
        out[ok] = (nodal[self.mesh.tets[tet[ok]]] * w[ok]).sum(axis=1)
        return out


@dataclass(frozen=True)
class ChemicalResult:
    """Outcome of a chemical neurolysis simulation (volumes in mL, lengths in mm, times in s/h)."""

    agent: str
    solute: str
    concentration_pct: float
    volume_ml: float
    injections: int
    interval_h: float
    rate_ml_per_min: float
    bolus_radius_mm: float  # the equivalent sphere (3 V / (4 pi phi_tip))^(1/3)
    bolus_reach_mm: float  # farthest filled element centroid from the tip
    spread_level_pct: float
    spread_volume_ml: tuple[float, ...]  # per injection: volume where c exceeded spread_level_pct
    lethal_volume_ml: tuple[float, ...]  # cumulative: volume with Lambda >= 1 after each injection
    tip_dose: tuple[float, ...]  # Lambda at the needle tip after each injection
    mass_balance: tuple[dict, ...]  # per injection, amounts in % x mL
    systemic: dict
    mesh: dict
    wall_time_s: float
    warnings: tuple[str, ...] = ()
    fields: ChemicalFields | None = field(default=None, compare=False, repr=False)
    injection_tips_mm: tuple[tuple[float, float, float], ...] = ()  # where each injection went (anatomy frame)

    def _sample(self, index: int, points_m: np.ndarray) -> FieldSample:
        lethal = self.fields.interpolate(self._dose(index), points_m) >= 1.0
        return replace(unharmed(points_m), lethal=lethal, tubes_destroyed=lethal & (self.fields.interpolate(self.fields.tubes_after[index], points_m) >= 1.0))

    def lethal_index(self, points_m: np.ndarray, injection_index: int = -1) -> np.ndarray:
        """Lambda (P1-interpolated) at points (n, 3) after injection ``injection_index`` (0-based; -1 = all)."""
        return self.fields.interpolate(self._dose(injection_index), points_m)

    def _dose(self, injection_index: int) -> np.ndarray:
        doses = self.fields.dose_after
        i = int(injection_index)
        if not -len(doses) <= i < len(doses):
            raise ValidationError(f"injection_index = {i}: allowed range is [0, {len(doses) - 1}] (or negative from the end)")
        return doses[i]

    def sample(self, points_m: np.ndarray) -> FieldSample:
        """Fields at points (n, 3) in the anatomy frame after all injections: ``lethal`` = Lambda >= 1,
        ``tubes_destroyed`` = lethal and the tube index >= 1 (Sunderland >= 3; else grade 2).

        peak_temp_c = 37, omega = cem43 = 0 (no heat); points off the mesh are unharmed.
        """
        return self._sample(-1, points_m)

    def sample_after(self, injection_index: int, points_m: np.ndarray) -> FieldSample:
        """Like :meth:`sample` after injection ``injection_index`` (0-based) and its interval."""
        self._dose(injection_index)
        return self._sample(int(injection_index), points_m)

    def sampler_after(self, injection_index: int) -> Callable[[np.ndarray], FieldSample]:
        """A FieldSampler of the state after injection ``injection_index`` (0-based)."""
        self._dose(injection_index)
        index = int(injection_index)
        return lambda points_m: self._sample(index, points_m)

    def to_dict(self) -> dict:
        """JSON-ready: every field but the nodal ones (``tip_dose`` as ``tip_lethal_index``), then the disclaimer."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "fields":
                out["tip_lethal_index" if f.name == "tip_dose" else f.name] = _plain(value)
        return out | {"disclaimer": DISCLAIMER}


def _plain(value):
    """Tuples as lists and mappings as dicts (copies), for JSON."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return dict(value) if isinstance(value, Mapping) else value


def _check_int(name: str, value, low: int, high: int) -> int:
    number = check_number(name, value)
    if isinstance(value, bool) or number != int(number):
        raise ValidationError(f"{name} = {value!r}: must be a whole number in [{low}, {high}]")
    return int(check_range(name, number, low, high))


def _needle() -> NeedleGeometry:
    a = catalog.outer_radius_m(NEEDLE_GAUGE)
    cone = catalog.cone_length_over_radius() * a
    return NeedleGeometry(radius_m=a, tip_length_m=2.0 * cone, cone_length_m=cone, insulation_thickness_m=min(catalog.insulation_thickness_m(), 0.5 * a))


def _sheath(m: NeedleMesh3D, tissue_of: np.ndarray) -> np.ndarray:
    """Nerve elements sharing a node with a non-nerve element."""
    nerve = tissue_of == "nerve"
    touched = np.zeros(m.n_nodes, bool)
    touched[m.tets[~nerve].ravel()] = True
    return nerve & touched[m.tets].any(axis=1)


def check_injections(agent: str, concentration_pct: float, volume_ml: float, injections: int, interval_h: float, rate_ml_per_min: float):
    """Validate a series of injections before any solve: (agent, injections, interval_h, rate)."""
    agent_def = check_neurolytic_injection(agent, concentration_pct, volume_ml)
    n_inj = _check_int("injections", injections, 1, MAX_INJECTIONS)
    interval = check_range("interval_h", interval_h, 0.0, MAX_INTERVAL_H, low_inclusive=False, unit="h")
    rate = check_range("rate_ml_per_min", rate_ml_per_min, 0.0, MAX_RATE_ML_PER_MIN, low_inclusive=False, unit="mL/min")
    return agent_def, n_inj, interval, rate


@threadpool_limits.wrap(limits=1, user_api="blas")  # small vector products: threads only add contention
def _injection_sites(tips_m, n_inj: int, frame: NeedleFrame, mesh: Mesh3DSpec) -> list[np.ndarray]:
    """Each injection's tip in the needle frame (m): the apex, or ``tips_m`` (anatomy frame), one per injection, in the fine mesh."""
    tips = np.zeros((n_inj, 3)) if tips_m is None else np.asarray(tips_m, float)
    if tips.shape != (n_inj, 3) or not np.all(np.isfinite(tips)):
        raise ValidationError(f"injection_tips_m: shape {tips.shape}: must be one finite (x, y, z) per injection ({n_inj}, 3)")
    local = np.zeros((n_inj, 3)) if tips_m is None else frame.to_local(tips)
    if (far := float(np.linalg.norm(local, axis=1).max())) > mesh.fine_margin_m:
        raise ValidationError(f"injection_tips_m: an injection {far * 1e3:.1f} mm from the needle tip: must be within the fine mesh ({mesh.fine_margin_m * 1e3:.1f} mm)")
    return list(local)


def simulate_chemical(
    agent: str, concentration_pct: float, volume_ml: float, injections: int, interval_h: float, rate_ml_per_min: float,
    pose: NeedlePose, scene: Scene | None = None, *, tissue: str = "muscle", mesh: Mesh3DSpec = DEFAULT_CHEMICAL_MESH,
    weight_kg: float = 70.0, sex: str = "male", first_step_s: float = FIRST_STEP_S, step_growth: float = STEP_GROWTH,
    max_step_s: float = MAX_STEP_S, solver_rtol: float = 1e-8, progress: Callable[[float], None] | None = None,
    injection_tips_m: Sequence[np.ndarray] | None = None,
) -> ChemicalResult:
    """Simulate ``injections`` boluses of ``volume_ml`` of ``agent`` at ``concentration_pct``, ``interval_h`` apart.

    ``pose`` is in the anatomy frame of ``scene`` (m); without a scene the tissue is
    homogeneous ``tissue``. The spread is instantaneous (V / rate << r_b^2 / a, warned when
    not); ``rate_ml_per_min`` is validated and reported. ``progress(fraction)`` after every step.
    ``injection_tips_m``: one tip position per injection (anatomy frame, m; None: every one at
    ``pose.tip_m``), each within the mesh's fine region around the needle.
    Every input is validated (ValidationError) before any mesh is built.
    """
    started = time.perf_counter()
    agent_def, n_inj, interval_h, rate = check_injections(agent, concentration_pct, volume_ml, injections, interval_h, rate_ml_per_min)
    c_inj = float(concentration_pct)
    v_ml = float(volume_ml)
    interval_s = interval_h * HOUR_S
    check_range("weight_kg", weight_kg, *WEIGHT_RANGE_KG, unit="kg")
    check_choice("sex", sex, ["male", "female"])
    check_range("first_step_s", first_step_s, 1e-3, 60.0, unit="s")
    check_range("step_growth", step_growth, 1.0, 2.0, unit="")
    check_range("max_step_s", max_step_s, first_step_s, 6 * HOUR_S, unit="s")
    if not isinstance(pose, NeedlePose):
        raise ValidationError(f"pose = {pose!r}: must be a NeedlePose")
    if scene is None:
        transport_coefficients(agent, TRANSPORT_STAND_IN.get(tissue, tissue))  # validates the tissue
    else:
        lo, hi = (np.asarray(b, float) for b in scene.bounds_m)
        if np.any(pose.tip_m < lo) or np.any(pose.tip_m > hi):
            raise ValidationError(f"pose.tip_mm = {np.round(pose.tip_m * 1e3, 3).tolist()}: outside the scene {scene.name!r}")
    law = dose_response(agent_def.solute)
    systemic = systemic_exposure(agent, c_inj, v_ml, n_inj, weight_kg, sex)
    frame = pose_frame([pose])
    sites = _injection_sites(injection_tips_m, n_inj, frame, mesh)

    # ---- mesh and coefficients
    m = build_needle_mesh3d(_needle(), mesh)
    geo = TetGeometry(m.nodes, m.tets)
    tissue_of = tissue_at(scene, frame.to_world(m.centroids), tissue)
    sheath = _sheath(m, tissue_of) if scene is not None else np.zeros(len(tissue_of), bool)
    transport_tissue = np.array([TRANSPORT_STAND_IN.get(t, t) for t in tissue_of], dtype=object)
    transport_tissue[sheath] = "perineurium"
    d_e, phi_e, k_e, theta_e = (np.empty(len(tissue_of)) for _ in range(4))
    for tid in set(transport_tissue):
        sel = transport_tissue == tid
        co = transport_coefficients(agent, tid)
        d_e[sel], phi_e[sel], k_e[sel], theta_e[sel] = co.diffusivity_m2_s, co.volume_fraction, co.clearance_per_s, co.capacity_fraction
    if sheath.any():  # one element thick: give it the permeance of a perineurium of thickness L_p in series with endoneurium
        nerve_d = transport_coefficients(agent, "nerve").diffusivity_m2_s
        h = np.maximum(geo.volume[sheath] ** (1.0 / 3.0), SHEATH_M)
        d_e[sheath] = h / (SHEATH_M / d_e[sheath] + (h - SHEATH_M) / nerve_d)
    stand_ins = sorted({t for t in tissue_of if t in TRANSPORT_STAND_IN})
    pattern = StiffnessPattern(geo, m.n_nodes)
    stiffness = pattern.matrix(pattern.data(d_e))
    capacity = geo.node_weights(theta_e)
    clearance = geo.node_weights(theta_e * k_e) / capacity
    ops = TransportOperators(stiffness, capacity, clearance)
    node_volume = geo.node_weights(np.ones(len(tissue_of)))
    volume_above = lambda nodal, level: volume_above_m3(m.tets, geo.volume, nodal, level) / ML_TO_M3

    # ---- bolus: fills the reachable non-barrier elements nearest each injection's tip (local frame)
    fillable = ~np.isin(tissue_of, list(BARRIER_TISSUES))
    adjacency = face_adjacency(m.tets)
    fills = [fill_bolus(np.linalg.norm(m.centroids - site, axis=1), phi_e * geo.volume, fillable, adjacency, v_ml * ML_TO_M3) for site in sites]
    boluses = [nodal_bolus(m.tets, f, phi_e * geo.volume, capacity, c_inj) for f in fills]
    fill = fills[0]
    tip_tissue = transport_coefficients(agent, transport_tissue[fill.start_element])
    phi_tip = tip_tissue.volume_fraction
    r_b = bolus_radius_m(v_ml, phi_tip)
    tip_node = int(np.argmin(np.linalg.norm(m.nodes, axis=1)))

    # ---- time stepping: one shared Jacobi-CG (mass-dominated systems: the longest step diffuses
    # ~1 mm, one element; AMG V-cycles cost more), one operator set per distinct step
    cg = JacobiCGSolver(rtol=solver_rtol, max_iterations=4000)
    last = {}

    def factory(matrix):
        def solve(rhs):
            x = cg.solve(matrix, rhs, last.get("x"))
            last["x"] = x
            return x

        return solve

    solvers: dict[float, PositiveTransportSolver] = {}
    rate_fn = law.rate_per_s
    k_min, k_max = float(clearance.min()), float(k_e[fillable].max())
    active_cap = min(max_step_s, CLEARANCE_STEP / k_max) if k_max > 0 else max_step_s
    c = np.zeros(m.n_nodes)
    acc = ExposureAccumulator(c, {"lethal": rate_fn, "tubes": law.tubes_rate_per_s})
    dose_after, tubes_after, peaks, spread, lethal_vol, tip_dose, balance = [], [], [], [], [], [], []
    spread_level = law.fast_threshold_pct
    n_steps = []
    setup_s = time.perf_counter() - started
    for i_inj in range(n_inj):
        c = c + boluses[i_inj]
        acc.restart(c)
        peak = c.copy()
        s_start = ops.amount(c)
        cleared = 0.0
        t, dt_next, steps = 0.0, first_step_s, []
        while interval_s - t > 1e-9:
            # cap the step only while some node is above the no-effect level (the dose can grow)
            active = k_min <= 0 or float(rate_fn(c.max())) / k_min > IDLE_DOSE
            cap = active_cap if active else np.inf
            dt = min(dt_next, cap, interval_s - t)
            if interval_s - t - dt < 0.25 * dt:
                dt = interval_s - t
            dt_next *= step_growth
            key = round(float(dt), 6)
            solver = solvers.get(key)
            if solver is None:
                solver = solvers[key] = PositiveTransportSolver(ops, key, factory)
            c, removed = solver.step(c)
            np.maximum(c, 0.0, out=c)  # c >= 0 exactly (the M-matrix step is >= 0 up to the CG tolerance, ~1e-25 %)
            cleared += removed
            acc.advance(c, key)
            np.maximum(peak, c, out=peak)
            t += key
            steps.append(key)
            if progress is not None:
                progress(min(1.0, (i_inj + t / interval_s) / n_inj))
        n_steps.append(len(steps))
        s_end = ops.amount(c)
        injected = v_ml * ML_TO_M3 * c_inj
        balance.append({
            "injected_pct_ml": injected / ML_TO_M3,
            "start_pct_ml": s_start / ML_TO_M3,
            "end_pct_ml": s_end / ML_TO_M3,
            "cleared_pct_ml": cleared / ML_TO_M3,
            "relative_error": abs(s_start - s_end - cleared) / s_start,
            "min_concentration_pct": float(c.min()),
        })
        dose = acc.doses["lethal"].copy()
        dose_after.append(dose)
        tubes_after.append(acc.doses["tubes"].copy())
        peaks.append(peak)
        spread.append(volume_above(peak, spread_level))
        lethal_vol.append(volume_above(dose, 1.0))
        tip_dose.append(float(dose[tip_node]))
    solve_s = time.perf_counter() - started - setup_s

    warnings = []
    boundary = np.zeros(m.n_nodes, bool)
    boundary[m.outer_nodes] = True
    if (dose_after[-1][boundary] >= 1.0).any() or (np.maximum.reduce(peaks)[boundary] >= spread_level).any():
        warnings.append("the lethal or spread region reaches the edge of the simulated domain: increase mesh.domain_m")
    diffusion_s = r_b**2 * tip_tissue.capacity_fraction / tip_tissue.diffusivity_m2_s
    injection_s = v_ml / rate * 60.0
    if injection_s > INSTANT_SPREAD_FRACTION * diffusion_s:
        warnings.append(f"injection lasts {injection_s:.0f} s, not short against the diffusion time {diffusion_s:.0f} s: the instantaneous-spread assumption is weak")
    if stand_ins:
        warnings.append("no transport data for " + ", ".join(f"{t} (uses {TRANSPORT_STAND_IN[t]})" for t in stand_ins) + " [UNVERIFIED]")
    if systemic.over_threshold:
        warnings.append(f"total phenol {systemic.phenol_mg:.0f} mg reaches the ~{systemic.phenol_toxic_mg:.0f} mg toxic level")
    if max(f.reach_m for f in fills) > mesh.fine_margin_m:
        warnings.append(f"bolus reach {max(f.reach_m for f in fills) * 1e3:.1f} mm exceeds the fine mesh region ({mesh.fine_margin_m * 1e3:.1f} mm)")
    if any(f.overflow for f in fills):
        warnings.append(f"the injected volume does not fit the space it can reach in the mesh (x{fill.overflow:.2f}): concentration raised to conserve the amount; increase mesh.domain_m")

    mesh_info = {
        **mesh.as_dict(),
        "nodes": int(m.n_nodes),
        "elements": len(m.tets),
        "sheath_elements": int(sheath.sum()),
        "m_matrix_upwinding": max(s.upwinding for s in solvers.values()),
        "time_steps_per_injection": n_steps,
        "first_step_s": float(first_step_s),
        "step_growth": float(step_growth),
        "max_step_s_while_active": float(max_step_s),
        "linear_solver": "jacobi-cg",
        "amg_builds": cg.builds,
        "cg_iterations_per_solve": cg.iterations / max(1, cg.solves),
        "setup_s": setup_s,
        "solve_s": solve_s,
        "tissues": sorted(set(tissue_of)),
    }
    sys_dict = {k: v for k, v in systemic.__dict__.items()}
    sys_dict["weight_kg"] = float(weight_kg)
    return ChemicalResult(
        agent=agent,
        solute=agent_def.solute,
        concentration_pct=c_inj,
        volume_ml=v_ml,
        injections=n_inj,
        interval_h=interval_s / HOUR_S,
        rate_ml_per_min=rate,
        bolus_radius_mm=r_b * 1e3,
        bolus_reach_mm=fill.reach_m * 1e3,
        injection_tips_mm=tuple(tuple(float(v) for v in frame.to_world(site[None, :])[0] * 1e3) for site in sites),
        spread_level_pct=spread_level,
        spread_volume_ml=tuple(spread),
        lethal_volume_ml=tuple(lethal_vol),
        tip_dose=tuple(tip_dose),
        mass_balance=tuple(balance),
        systemic=sys_dict,
        mesh=mesh_info,
        wall_time_s=time.perf_counter() - started,
        warnings=tuple(warnings),
        fields=ChemicalFields(m, frame, node_volume, c, acc.peak.copy(), tuple(dose_after), tuple(peaks), tuple(tubes_after)),
    )


BOLUS_FINE_MARGIN = 1.2  # mesh_for_bolus: the fine region reaches 1.2 bolus radii from the tip


def mesh_for_bolus(agent: str, volume_ml: float, pose: NeedlePose, scene: Scene | None = None, *, tissue: str = "muscle",
                   mesh: Mesh3DSpec = DEFAULT_CHEMICAL_MESH) -> Mesh3DSpec:
    """``mesh`` with its fine region widened to cover the bolus of ``volume_ml`` (radius from
    the accessible fraction of the tissue at the tip): large injections (celiac 10-20 mL,
    r_b ~ 20-30 mm) otherwise spread into coarse cells. Celiac 50 % ethanol 10 mL: fine
    margin 12 -> 27.5 mm, 3.0 -> 8.7 s, lethal volume 53.6 -> 56.0 mL (4 %)."""
    tip = tissue_at(scene, pose.tip_m, tissue)[0]
    tip = tissue if tip in BARRIER_TISSUES else tip  # a tip on bone: the bolus fills the soft tissue beside it
    phi = transport_coefficients(agent, TRANSPORT_STAND_IN.get(tip, tip)).volume_fraction
    needed = BOLUS_FINE_MARGIN * bolus_radius_m(volume_ml, phi)
    return mesh if needed <= mesh.fine_margin_m else replace(mesh, fine_margin_m=needed)
