"""Cryoneurolysis in 3D anatomy: an ice ball from a cryoprobe at any pose, freeze-thaw cycles.

Physics: the enthalpy-method freezing kernel (:mod:`neurolysis.physics.phase_change`,
verified against Stefan problems; docs/models/cryo.md sections 1-4),

    dH/dt = div( k(H) grad T(H) ) + (1 - f) w_b (T_b - T)                  [W/m^3]

on the needle-aligned tetrahedral mesh of the RF engine (:mod:`neurolysis.physics.mesh3d`)
moved rigidly into the anatomy. Only tissue elements are solved; the probe is a hole:

* freeze phases: the probe surface of the active (freezing) length, closed tip included,
  approaches the catalogued tip temperature as 1 - exp(-t / tau) from body temperature
  (tau the probe's ``cooldown_s``), then stays there (a boiling Joule-Thomson gas sits at
  its saturation temperature while the flow supplies the heat: docs/models/cryo.md section
  3; an upper bound on cooling);
* a vessel lumen (flowing blood) is held at body temperature in every phase: the flow
  carries heat in faster than the freeze takes it (the constant-wall-temperature model of
  a large vessel, as the RF engine's lumen);
* thaw phases and the shaft above the active length: insulated (passive thaw; the shaft of
  a cryoprobe is insulated so that only the active length freezes). Active (heated) thaw
  is not modelled;
* far boundary: insulated (the domain is sized so that it stays at body temperature;
  a warning says otherwise).

Properties per element from the anatomy label at the element centroid
(``scene.region_tissue[scene.label_at(x)]``) or ``tissue``: unfrozen values from
``tissues.toml``, frozen ones and the latent heat from ``freezing.toml``; a tissue with no
freezing data freezes without latent heat and with its unfrozen k and c (with a warning).
Nodal heat capacity, latent heat and perfusion are lumped volume averages
(V_i X_i = sum_e X_e V_e / 4). Newton systems: the exact conduction Jacobian at tissue
interfaces by GMRES with a Ruge-Stueben AMG V-cycle of its symmetric approximation
(:meth:`neurolysis.physics.linear.AMGSolver.solve_nonsymmetric`; CG for one tissue), each
solved to 1e-2 of the Newton residual (inexact Newton; the Newton tolerance is unchanged).

Injury: a point is lethal when it spent at least ``lethal_hold_s()`` (5 s, a judgement:
``data/freezing.toml [lethal_hold]``) at or below the lethal isotherm (default -20 C,
``lethal_isotherms_c()["default"]``), the time summed over every freeze of the protocol
(thaw-refreeze cycles add); the ice ball is the
region at or below the ice edge (-0.6 C, ``lethal_isotherms_c()["ice_edge"]``). Note that
the model's tissue only starts to freeze at the liquidus (-1 C, ``freezing.toml``): the
-0.6 C and 0 C edges are isotherms just outside the frozen tissue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from threadpoolctl import threadpool_limits

from neurolysis.about import DISCLAIMER
from neurolysis.anatomy.scene import Scene
from neurolysis.cryoprobes import Cryoprobe, check_cycles, cryoprobe
from neurolysis.engines.poses import NeedleFrame, pose_frame, tissue_at, validate_poses
from neurolysis.engines.rf.generator import FLOWING_TISSUES
from neurolysis.fields import BODY_TEMP_C, FieldSample, NeedlePose
from neurolysis.physics.fem3d import StiffnessPattern, TetGeometry
from neurolysis.physics.freezing import ConductionMesh, EnthalpyCurve, FreezingMaterial, FreezingProperties, freezing_material, freezing_tissue_ids, lethal_hold_s, lethal_isotherms_c
from neurolysis.physics.lesion import LesionShape, level_extent, measure_cold_region, tissue_edges
from neurolysis.physics.linear import AMGSolver
from neurolysis.physics.mesh import NeedleGeometry
from neurolysis.physics.mesh3d import Mesh3DSpec, NeedleMesh3D, build_needle_mesh3d
from neurolysis.physics.phase_change import FreezingSolver, freeze_thaw_phases
from neurolysis.tissue import load_tissue
from neurolysis.validation import ValidationError, check_range

DEFAULT_MESH = Mesh3DSpec(h_fine_m=0.6e-3, sectors=12, fine_margin_m=7e-3, domain_m=20e-3, growth=1.3, edge_levels=2)
"""Default resolution: 0.6 mm and 12 sectors out to 7 mm from the probe surface (the 3D ice
edge of the default protocol is ~5.2 mm from it), insulated far boundary 20 mm beyond.
Against 0.5 mm / 16 sectors / dt 2 s: ice width +0.27 mm, lethal width +0.09 mm
(docs/models/cryo.md, 3D engine)."""

DEFAULT_DT_S = 3.0
"""Time step: the radial ice and lethal fronts of the default protocol move < 0.02 mm
from dt = 0.5 s (1D line-mesh check, docs/models/cryo.md, 3D engine)."""

CONE_OVER_RADIUS = 1.0
"""Closed probe end modelled as a 90-degree cone (length = radius)."""

SOLVER_RTOL = 1e-7
"""CG relative residual of a Newton system solved exactly (LINEAR_FORCING = None)."""

NEWTON_RTOL = 1e-8
"""Kernel Newton tolerance: ||R||_1 <= 1e-8 x the 1-norm of the terms (the kernel default
1e-10 costs ~2 more CG solves per step; the energy balance stays < 1e-7 relative)."""

LINEAR_FORCING = 1e-2
"""Inexact Newton: each Newton system is solved to 1e-2 x the Newton residual (or to 0.1 x
the Newton target, whichever is looser); the Newton test itself is unchanged. Against
SOLVER_RTOL on every solve the dimensions agree to 0.001 mm and the energy balance stays
< 1e-8 relative (docs/models/cryo.md, 3D engine)."""

EXACT_JACOBIAN = True
"""Newton systems with the exact conduction Jacobian at tissue interfaces (GMRES, the same
AMG V-cycle as preconditioner): 5.4 instead of 11.7 Newton iterations per step on the
lumbar template (the nodal-mean Jacobian makes Newton contract only ~0.3 per iteration
where tissues meet)."""

REBUILD_AFTER = 30
"""Rebuild the AMG hierarchy when a solve needs more Krylov iterations than this."""

GROWTH_EVERY_S = 10.0


def _probe(probe: str | Cryoprobe | None) -> Cryoprobe:
    if isinstance(probe, Cryoprobe):
        return probe
    if probe is not None and not isinstance(probe, str):
        raise ValidationError(f"probe = {probe!r}: must be a catalogued probe id (see neurolysis cryoprobes)")
    return cryoprobe(probe)


def probe_geometry(probe: Cryoprobe) -> NeedleGeometry:
    """Cylinder of the probe's outer radius; the first ``active_length`` from the (conical)
    closed end freezes, the rest is insulated shaft."""
    a = probe.outer_radius_m
    return NeedleGeometry(radius_m=a, tip_length_m=probe.active_length_m, cone_length_m=CONE_OVER_RADIUS * a, insulation_thickness_m=0.25 * a)


# ------------------------------------------------------------------------ materials


def _material(tissue_id: str) -> tuple[FreezingMaterial, bool]:
    """(freezing material, has freezing data)."""
    if tissue_id in freezing_tissue_ids():
        return freezing_material(tissue_id), True
    t = load_tissue(tissue_id)
    ref = freezing_material(freezing_tissue_ids()[0])
    c, k = t.volumetric_heat_capacity_j_m3_k, t.thermal_conductivity_w_m_k
    return FreezingMaterial(ref.solidus_c, ref.liquidus_c, 0.0, c, c, k, k, t.perfusion_w_m3_k), False


def _properties(geo: TetGeometry, volume: np.ndarray, tissue_of: np.ndarray) -> tuple[FreezingProperties, list[str]]:
    """Element conductivities and lumped nodal C_f, C_u, L, w_b (volume averages)."""
    n_el = len(tissue_of)
    ids = sorted(set(tissue_of))
    cols = {name: np.zeros(n_el) for name in ("cf", "cu", "lat", "kf", "ku", "w")}
    missing = []
    solidus = liquidus = None
    for tid in ids:
        mat, known = _material(tid)
        if not known:
            missing.append(tid)
        solidus, liquidus = mat.solidus_c, mat.liquidus_c
        sel = tissue_of == tid
        cols["cf"][sel] = mat.heat_capacity_frozen_j_m3_k
        cols["cu"][sel] = mat.heat_capacity_unfrozen_j_m3_k
        cols["lat"][sel] = mat.latent_heat_j_m3
        cols["kf"][sel] = mat.conductivity_frozen_w_m_k
        cols["ku"][sel] = mat.conductivity_unfrozen_w_m_k
        cols["w"][sel] = mat.perfusion_w_m3_k

    def nodal(x):
        return geo.node_weights(x) / volume

    curve = EnthalpyCurve(solidus, liquidus, nodal(cols["cf"]), nodal(cols["cu"]), nodal(cols["lat"]))
    return FreezingProperties(curve, cols["kf"], cols["ku"], nodal(cols["w"]), BODY_TEMP_C), missing


class _LinearSolve:
    """CG + AMG for the kernel's Newton systems, one hierarchy per free-node set (freeze/thaw);
    ``rtol`` per call (inexact Newton) or ``self.rtol``. With ``operator`` (the exact,
    nonsymmetric Jacobian) GMRES solves it, preconditioned by the hierarchy of ``matrix``."""

    def __init__(self, rtol: float):
        self.rtol = rtol
        self.solvers: dict[int, AMGSolver] = {}

    def __call__(self, matrix, rhs, rtol=None, operator=None):
        solver = self.solvers.setdefault(matrix.shape[0], AMGSolver(self.rtol, rebuild_after=REBUILD_AFTER, max_iterations=300))
        solver.rtol = self.rtol if rtol is None else rtol
        if operator is not None:
            return solver.solve_nonsymmetric(operator, matrix, rhs)
        return solver.solve(matrix, rhs)


# ---------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class CryoFields:
    """End-of-run nodal fields on all mesh nodes (probe interior filled from its surface)."""

    mesh: NeedleMesh3D
    frame: NeedleFrame
    temp_c: np.ndarray
    min_temp_c: np.ndarray
    start_temp_c: float
    cold_time_s: np.ndarray | None = None  # time spent at or below the lethal isotherm (s)
    hold_s: float = 0.0  # time there that kills (s)


@dataclass(frozen=True)
class CryoResult:
    """Outcome of one 3D cryo simulation; dimensions in the probe frame (apex at 0, shaft +z).

    ``ice_ball``: region whose minimum temperature reached <= the ice edge (-0.6 C), i.e.
    the envelope of the ice ball over the protocol; ``isotherm_0c`` likewise at 0 C;
    ``lethal_zone``: at or below ``lethal_isotherm_c`` for ``lethal_hold_s`` in all. ``growth``: per ~10 s,
    instantaneous ice ball (T <= -0.6 C and <= 0 C, shrinks in thaw) and the cumulative
    lethal zone. ``energy`` in J (see :meth:`to_dict`).
    """

    probe: Cryoprobe
    cycles: tuple[tuple[str, float], ...]
    pose: NeedlePose
    lethal_isotherm_c: float
    ice_edge_c: float
    lethal_hold_s: float
    ice_ball: LesionShape
    isotherm_0c: LesionShape
    lethal_zone: LesionShape
    growth: tuple[dict, ...]
    energy: dict
    mesh: dict
    wall_time_s: float
    warnings: tuple[str, ...] = ()
    fields: CryoFields | None = field(default=None, compare=False, repr=False)

    def _interp(self, points_m: np.ndarray, nodal: np.ndarray) -> np.ndarray:
        f = self.fields
        return f.mesh.interpolate(nodal, f.frame.to_local(points_m), f.start_temp_c)

    def min_temp_c_at(self, points_m: np.ndarray) -> np.ndarray:
        """Minimum temperature (C) reached over the protocol at points (n, 3) of the anatomy
        frame (P1 interpolation; body temperature off the mesh)."""
        return self._interp(points_m, self.fields.min_temp_c)

    def cold_time_s_at(self, points_m: np.ndarray) -> np.ndarray:
        """Time (s) spent at or below the lethal isotherm at points (n, 3) (0 off the mesh)."""
        f = self.fields
        return f.mesh.interpolate(f.cold_time_s, f.frame.to_local(points_m), 0.0)

    def temp_c_at(self, points_m: np.ndarray) -> np.ndarray:
        """Temperature (C) at the end of the protocol at points (n, 3)."""
        return self._interp(points_m, self.fields.temp_c)

    def sample(self, points_m: np.ndarray) -> FieldSample:
        """Fields for the nerve and risk models at points (n, 3) of the anatomy frame.

        ``lethal``: at or below ``lethal_isotherm_c`` for ``lethal_hold_s`` in all. Freezing
        never heats tissue, so ``peak_temp_c`` is the start (body) temperature, ``omega`` =
        ``cem43_min`` = 0; ``min_temp_c`` is the minimum temperature reached.
        """
        tmin = self.min_temp_c_at(points_m)
        zeros = np.zeros(len(tmin))
        lethal = (self.cold_time_s_at(points_m) >= self.lethal_hold_s - 1e-9) & (tmin <= self.lethal_isotherm_c)
        return FieldSample(np.full(len(tmin), self.fields.start_temp_c), zeros, zeros.copy(), lethal, min_temp_c=tmin)

    def to_dict(self) -> dict:
        """JSON-ready summary (lengths in mm, temperatures in C, energy in J, times in s)."""

        def dims(shape: LesionShape, **extra) -> dict:
            return {"width_mm": shape.width_mm, "length_mm": shape.length_mm, "distal_mm": shape.distal_mm, "proximal_mm": shape.proximal_mm, "volume_mm3": shape.volume_mm3, **extra}

        p = self.probe
        return {
            "probe": {"id": p.id, "gas": p.gas, "outer_diameter_mm": p.outer_diameter_mm, "active_length_mm": p.active_length_mm, "tip_temp_c": p.tip_temp_c, "cooldown_s": p.cooldown_s},
            "cycles": [{"kind": kind, "duration_s": s} for kind, s in self.cycles],
            "pose": {"tip_mm": (self.pose.tip_m * 1e3).tolist(), "direction": self.pose.direction.tolist()},
            "ice_ball": dims(self.ice_ball, edge_c=self.ice_edge_c),
            "isotherm_0c": dims(self.isotherm_0c, edge_c=0.0),
            "lethal_zone": dims(self.lethal_zone, isotherm_c=self.lethal_isotherm_c, hold_s=self.lethal_hold_s),
            "growth": list(self.growth),
            "energy": dict(self.energy),
            "mesh": dict(self.mesh),
            "wall_time_s": self.wall_time_s,
            "warnings": list(self.warnings),
            "disclaimer": DISCLAIMER,
        }


def _held_cold(min_temp_c: np.ndarray, cold_time_s: np.ndarray, lethal_c: float, hold_s: float) -> np.ndarray:
    """A nodal field <= 0 exactly where the tissue reached the lethal isotherm and spent the hold
    at or below it: max((T_min - T_lethal) / 1 C, (hold - t_cold) / 1 s). Its zero level is the
    lethal zone's edge, interpolated along mesh edges like an isotherm (the two criteria each
    linear between nodes; a point is lethal only if both say so, as :meth:`CryoResult.sample`)."""
    return np.maximum(min_temp_c - lethal_c, hold_s - cold_time_s)


# ------------------------------------------------------------------------ simulation


@threadpool_limits.wrap(limits=1, user_api="blas")  # small vector products: threads only add contention
def simulate_cryo(
    probe_id: str | Cryoprobe | None,
    cycles: Sequence[tuple[str, float]] | None,
    pose: NeedlePose,
    scene: Scene | None = None,
    *,
    tissue: str = "muscle",
    mesh: Mesh3DSpec = DEFAULT_MESH,
    dt_s: float = DEFAULT_DT_S,
    lethal_isotherm_c: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> CryoResult:
    """Freeze-thaw protocol ``cycles`` (default: the catalogued 90 s / 30 s / 90 s) from the
    catalogued probe ``probe_id`` (None: the default probe; a :class:`Cryoprobe` is also
    accepted) at ``pose`` (anatomy frame, metres). Without a scene the tissue is
    homogeneous ``tissue``. ``progress(fraction)`` is called after every step.

    All inputs are checked (:class:`ValidationError`) before any mesh is built.
    """
    started = time.perf_counter()
    probe = _probe(probe_id)
    cycles = check_cycles(cycles)
    if not isinstance(pose, NeedlePose):
        raise ValidationError(f"pose = {pose!r}: must be a NeedlePose")
    validate_poses([pose], scene, False, probe.outer_radius_m)
    load_tissue(tissue)
    dt_s = check_range("dt_s", dt_s, 0.05, 30.0, unit="s")
    isotherms = lethal_isotherms_c()
    lethal_c = isotherms["default"] if lethal_isotherm_c is None else check_range("lethal_isotherm_c", lethal_isotherm_c, -80.0, -0.6, unit="C")
    ice_c = isotherms["ice_edge"]
    if lethal_c < probe.tip_temp_c:
        raise ValidationError(f"lethal_isotherm_c = {lethal_c:g} C: must be >= the probe tip temperature {probe.tip_temp_c:g} C")

    geometry = probe_geometry(probe)
    m = build_needle_mesh3d(geometry, mesh)
    frame = pose_frame([pose])
    is_tissue = m.tissue
    tissue_of = tissue_at(scene, frame.to_world(m.centroids[is_tissue]), tissue)

    # tissue-only conduction mesh (the probe is a hole), nodes renumbered
    solved = np.flatnonzero(m.tissue_nodes)
    local_of = np.full(m.n_nodes, -1, dtype=np.int64)
    local_of[solved] = np.arange(len(solved))
    tets = local_of[m.tets[is_tissue]]
    geo = TetGeometry(m.nodes[solved], tets)
    pattern = StiffnessPattern(geo, len(solved))
    volume = geo.node_weights(np.ones(len(tets)))
    cmesh = ConductionMesh(volume, tets, lambda k: pattern.matrix(pattern.data(k)))
    props, missing = _properties(geo, volume, tissue_of)
    linear = _LinearSolve(SOLVER_RTOL)
    solver = FreezingSolver(cmesh, props, (lethal_c,), linear_solve=linear, rtol=NEWTON_RTOL, linear_forcing=LINEAR_FORCING, exact_jacobian=EXACT_JACOBIAN)
    probe_nodes = local_of[m.active_nodes[0]]
    lumen = np.setdiff1d(np.unique(tets[np.isin(tissue_of, FLOWING_TISSUES)]), probe_nodes)
    phases = freeze_thaw_phases(probe_nodes, probe.tip_temp_c, cycles, cooldown_s=probe.cooldown_s, start_temp_c=BODY_TEMP_C, held_nodes=lumen, held_temp_c=BODY_TEMP_C)
    hold = lethal_hold_s()

    # probe interior (not solved): the mean of the probe-surface ring of its z-layer
    n_xy = len(m.section.points)
    surface = np.flatnonzero((m.section.ring_needle == 0) & np.isclose(m.section.ring_radius, geometry.radius_m, rtol=1e-9, atol=0.0))
    hidden = np.flatnonzero(~m.tissue_nodes)

    def full(values: np.ndarray) -> np.ndarray:
        out = np.zeros(m.n_nodes)
        out[solved] = values
        if hidden.size:
            ring = out.reshape(-1, n_xy)[:, surface].mean(axis=1)
            out[hidden] = ring[hidden // n_xy]
        return out

    edges = tissue_edges(m)
    vol_all = np.zeros(len(m.tets))
    vol_all[is_tissue] = geo.volume
    n_steps = sum(max(1, int(np.ceil(p.duration_s / dt_s - 1e-9))) for p in phases)
    phase_end = np.cumsum([p.duration_s for p in phases])
    growth: list[dict] = []
    counter = {"step": 0, "next": GROWTH_EVERY_S}

    def observe(state) -> None:
        counter["step"] += 1
        t = state.time_s
        k = int(np.searchsorted(phase_end, t - 1e-6))
        at_phase_end = abs(phase_end[min(k, len(phases) - 1)] - t) < 1e-6
        if t >= counter["next"] - 1e-6 or at_phase_end:
            while counter["next"] <= t + 1e-6:
                counter["next"] += GROWTH_EVERY_S
            temp, cold = full(state.temp_c), full(state.time_below_s[0])
            iw, il = level_extent(m, temp, ice_c, edges)
            zw, zl = level_extent(m, temp, 0.0, edges)
            lw, ll = level_extent(m, _held_cold(full(state.min_temp_c), cold, lethal_c, hold), 0.0, edges)
            growth.append(
                {
                    "time_s": float(t),
                    "phase": phases[min(k, len(phases) - 1)].label,
                    "ice_width_mm": iw,
                    "ice_length_mm": il,
                    "zero_c_width_mm": zw,
                    "zero_c_length_mm": zl,
                    "lethal_width_mm": lw,
                    "lethal_length_mm": ll,
                    "frozen_volume_mm3": 1e9 * state.frozen_volume_m3(cmesh),
                }
            )
        if progress is not None:
            progress(counter["step"] / n_steps)

    state0 = solver.initial_state(BODY_TEMP_C)
    setup_s = time.perf_counter() - started
    state, reports, _ = solver.run(state0, phases, dt_s, observe)
    solve_s = time.perf_counter() - started - setup_s

    temp_full, min_full, cold_full = full(state.temp_c), full(state.min_temp_c), full(state.time_below_s[0])
    ice = measure_cold_region(m, min_full, ice_c, "ice_edge", edges, vol_all)
    zero = measure_cold_region(m, min_full, 0.0, "isotherm_0c", edges, vol_all)
    lethal = replace(measure_cold_region(m, _held_cold(min_full, cold_full, lethal_c, hold), 0.0, "lethal_isotherm_held", edges, vol_all), threshold=lethal_c)

    probe_in = sum(r.fixed_nodes_j for r in reports)
    perfusion_in = sum(r.perfusion_j for r in reports)
    stored = state.energy_j(cmesh) - state0.energy_j(cmesh)
    freeze_s = sum(s for kind, s in cycles if kind == "freeze")
    energy = {
        "heat_extracted_j": -probe_in,
        "mean_probe_power_w": -probe_in / freeze_s,
        "perfusion_in_j": perfusion_in,
        "stored_change_j": stored,
        "balance_error_j": stored - probe_in - perfusion_in,
        "balance_error_rel": abs(stored - probe_in - perfusion_in) / max(abs(probe_in), 1e-300),
        "frozen_volume_mm3": 1e9 * state.frozen_volume_m3(cmesh),
    }
    warnings = []
    if missing:
        warnings.append(f"no freezing data for {', '.join(missing)}: modelled without latent heat and with unfrozen k and c")
    outer = local_of[m.outer_nodes]
    outer = outer[outer >= 0]
    if np.min(state.min_temp_c[outer]) < BODY_TEMP_C - 1.0:
        warnings.append("cooling reached the edge of the simulated domain (> 1 C drop): increase mesh.domain_m")
    if max(ice.width_mm, ice.length_mm) > 2e3 * (geometry.radius_m + mesh.fine_margin_m):
        warnings.append("the ice ball extends beyond the fine mesh region: increase mesh.fine_margin_m")
    solves = sum(s.solves for s in linear.solvers.values())
    mesh_info = {
        **mesh.as_dict(),
        "nodes": int(len(solved)),
        "elements": int(len(tets)),
        "time_steps": len(reports),
        "dt_s": dt_s,
        "newton_iterations_per_step": sum(r.newton_iterations for r in reports) / max(1, len(reports)),
        "step_splits": sum(r.substeps - 1 for r in reports),
        "linear_solves": solves,
        "cg_iterations_per_solve": sum(s.iterations for s in linear.solvers.values()) / max(1, solves),
        "amg_builds": sum(s.builds for s in linear.solvers.values()),
        "setup_s": setup_s,
        "solve_s": solve_s,
        "tissues": sorted(set(tissue_of)),
    }
    return CryoResult(
        probe=probe,
        cycles=cycles,
        pose=pose,
        lethal_isotherm_c=lethal_c,
        ice_edge_c=ice_c,
        lethal_hold_s=hold,
        ice_ball=ice,
        isotherm_0c=zero,
        lethal_zone=lethal,
        growth=tuple(growth),
        energy=energy,
        mesh=mesh_info,
        wall_time_s=time.perf_counter() - started,
        warnings=tuple(warnings),
        fields=CryoFields(m, frame, temp_full, min_full, BODY_TEMP_C, cold_full, hold),
    )


__all__ = ["CryoFields", "CryoResult", "DEFAULT_MESH", "DEFAULT_DT_S", "probe_geometry", "simulate_cryo"]
