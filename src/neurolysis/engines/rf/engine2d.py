"""Radiofrequency lesions around one needle in homogeneous tissue, solved axisymmetrically.

Conventional, internally cooled and pulsed RF from a single straight needle: the
generator loop of :mod:`neurolysis.engines.rf.generator` on the axisymmetric needle mesh
(:mod:`neurolysis.physics.mesh`), with the potential of :mod:`neurolysis.physics.electric`
and the bioheat of :mod:`neurolysis.physics.bioheat`. On top of what both engines report
it records the lesion's growth every GROWTH_INTERVAL_S and, for pulsed RF, the probe
temperatures and the field near the tip. Assumptions and valid range: docs/models/rf.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from neurolysis import devices as catalog
from neurolysis.engines.rf.fluid import conductivity_factor, filled_sphere
from neurolysis.engines.rf.fluid import summary as fluid_summary
from neurolysis.engines.rf.generator import NeedleMaterials, RFLesionResult, run_generator, time_steps
from neurolysis.engines.rf.lesion_table import instant_lesion
from neurolysis.engines.rf.settings import RFSettings, needle_geometry
from neurolysis.physics.bioheat import HeatProblem
from neurolysis.physics.damage import CoagulationTracker, DamageAccumulator, catalog_thresholds
from neurolysis.physics.electric import UnitPotential
from neurolysis.physics.fem import TWO_PI, element_geometry, unit_stiffness_entries
from neurolysis.physics.lesion import measure_lesion
from neurolysis.physics.mesh import MeshSpec, NeedleMesh, Region, build_needle_mesh
from neurolysis.tissue import Tissue, load_tissue
from neurolysis.validation import ValidationError

MESH_TOLERANCE_MM = 0.1
"""Verified bound (mm) on the error of lesion width and length at the default mesh and time
step: against one halving of both and against a converged solution (h = 0.05 mm)
(tests/verification/test_rf_engine.py)."""

FINE_MARGIN_DEFAULT_MM = 8.0
"""Reach of the fine mesh beyond the needle where no expected lesion sets it (MeshSpec's default)."""
FINE_MARGIN_MIN_MM = 3.0
FINE_MARGIN_ALLOWANCE_MM = 1.0
"""Added to the expected lesion's extent: the instant table's held-out error (width within
0.25 mm, data/lesion_table_check.toml) and room for the boundary's gradient."""

FIELD_DISTANCES_MM = (0.5, 1.0, 2.0)
GROWTH_INTERVAL_S = 10.0
"""Lesion (Arrhenius) size is also recorded every GROWTH_INTERVAL_S, as bench studies
photograph it (Provenzano 2015 measured every 10 s)."""


@dataclass(frozen=True)
class LesionGrowth:
    """Arrhenius lesion size over time (one entry every GROWTH_INTERVAL_S and at the end)."""

    time_s: tuple[float, ...]
    width_mm: tuple[float, ...]
    length_mm: tuple[float, ...]
    volume_mm3: tuple[float, ...]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FieldSnapshot:
    """Nodal fields at the end of the run, for plots and further analysis."""

    needle_mesh: NeedleMesh
    temp_c: np.ndarray
    omega: np.ndarray
    cem43_min: np.ndarray
    max_temp_c: np.ndarray
    unit_potential: np.ndarray


@dataclass(frozen=True, kw_only=True)
class RFResult(RFLesionResult):
    """Outcome of one axisymmetric RF simulation (all numbers carry their unit in the name)."""

    tissue: Tissue
    growth: LesionGrowth
    pulsed: dict | None = None
    fields: FieldSnapshot | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        """The JSON object printed by ``neurolysis rf --json``."""
        middle = {"lesion_growth": self.growth.as_dict(), "settings": self.settings.as_dict(), "tissue_properties": self.tissue.properties()}
        out = self._dict_head() | middle | self._dict_tail()
        if self.pulsed is not None:
            out["pulsed"] = self.pulsed
        return out


def fine_margin_mm(settings: RFSettings) -> tuple[float, float, float, str]:
    """Reach (mm) of the uniform fine mesh beyond the needle for resolved ``settings``: (radially
    beyond its surface, distally beyond the apex, proximally beyond the active tip, where it came from).

    Given (``settings.fine_margin_mm``), it is used as is in all three directions. Otherwise each
    follows the lesion the instant table expects: its extent in that direction plus
    FINE_MARGIN_ALLOWANCE_MM, at least FINE_MARGIN_MIN_MM and at most the fixed
    FINE_MARGIN_DEFAULT_MM used outside the table. The lesion boundary then lies in the fine
    region, where its accuracy was verified (tests/verification/test_rf_engine.py)."""
    if settings.fine_margin_mm is not None:
        given = float(settings.fine_margin_mm)
        return given, given, given, "given"
    expected = instant_lesion(settings)
    if not expected.in_range:
        fixed = FINE_MARGIN_DEFAULT_MM
        return fixed, fixed, fixed, "default (the lesion is outside the instant table)"
    radial = expected.width_mm / 2 - catalog.outer_radius_m(settings.gauge) * 1e3
    radial, distal, proximal = (min(max(extent + FINE_MARGIN_ALLOWANCE_MM, FINE_MARGIN_MIN_MM), FINE_MARGIN_DEFAULT_MM) for extent in (radial, expected.distal_mm, expected.proximal_mm))
    return radial, distal, proximal, "fitted to the lesion the instant table expects"


def build_rf_mesh(settings: RFSettings, margins_mm: tuple[float, float, float]) -> NeedleMesh:
    """The axisymmetric mesh for resolved ``settings`` with its fine region's (radial, distal, proximal) reach (:func:`fine_margin_mm`)."""
    radial, distal, proximal = margins_mm
    spec = MeshSpec(h_fine_m=settings.h_fine_mm * 1e-3, fine_margin_m=radial * 1e-3, domain_m=settings.domain_mm * 1e-3, distal_margin_m=distal * 1e-3, proximal_margin_m=proximal * 1e-3)
    return build_needle_mesh(needle_geometry(settings), spec)


def _probe_points(needle_mesh: NeedleMesh) -> dict[str, tuple[float, float]]:
    """Points (r, z) at FIELD_DISTANCES_MM lateral to the middle of the active tip and distal to the apex."""
    a, L = needle_mesh.geometry.radius_m, needle_mesh.geometry.tip_length_m
    points = {}
    for d in FIELD_DISTANCES_MM:
        points[f"lateral_{d:g}mm"] = (a + d * 1e-3, 0.5 * L)
        points[f"distal_{d:g}mm"] = (1e-6, -d * 1e-3)
    return points


def _interpolation_matrix(needle_mesh: NeedleMesh, points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(elements, node indices (k, 3), barycentric weights (k, 3)) of the P1 field at ``points``."""
    p, t = needle_mesh.mesh.p, needle_mesh.mesh.t
    elements = needle_mesh.locate(*np.array(points, dtype=float).T)
    nodes = t[:, elements].T
    weights = []
    for (r, z), tri in zip(points, nodes, strict=True):
        x, y = p[0, tri], p[1, tri]
        matrix = np.array([[x[0] - x[2], x[1] - x[2]], [y[0] - y[2], y[1] - y[2]]])
        l0, l1 = np.linalg.solve(matrix, [r - x[2], z - y[2]])
        weights.append([l0, l1, 1 - l0 - l1])
    return elements, nodes, np.array(weights)


def simulate_rf(
    settings: RFSettings,
    progress: Callable[[float], None] | None = None,
    tissue_override: Tissue | None = None,
) -> RFResult:
    """Simulate one RF lesion; ``progress(fraction)`` is called after every step.

    ``tissue_override`` replaces the catalog tissue named in the settings (for
    sensitivity studies and user-measured properties); the properties used are always
    reported in ``RFResult.tissue``.
    """
    started = time.perf_counter()
    s = settings.resolved()
    if s.electrodes != "monopolar":
        raise ValidationError(f"electrodes = {s.electrodes!r}: the axisymmetric engine holds one needle; bipolar pairs are solved in 3D (engine3d.simulate_rf3d)")
    tissue = tissue_override if tissue_override is not None else load_tissue(s.tissue)
    if s.ex_vivo:
        tissue = tissue.ex_vivo()
    *margins_mm, margin_from = fine_margin_mm(s)
    needle_mesh = build_rf_mesh(s, tuple(margins_mm))
    mesh = needle_mesh.mesh
    geometry = element_geometry(mesh)
    entries = unit_stiffness_entries(mesh)
    electric = UnitPotential.around_needle(needle_mesh, geometry, entries)
    heat = HeatProblem(mesh.p.shape[1], geometry, entries, needle_mesh.outer_nodes)
    tissue_of = np.full(mesh.t.shape[1], tissue.id, dtype=object)
    factor, pre, injection = None, None, s.injection
    if injection is not None:  # the fluid's sphere around the apex (r = 0, z = 0) changes the conductivity there
        centre = mesh.p[:, mesh.t].mean(axis=1)
        filled, radius = filled_sphere(injection, np.hypot(centre[0], centre[1]), tissue.id)
        filled[needle_mesh.region != Region.TISSUE] = 0.0
        factor, pre = conductivity_factor(injection, tissue_of, filled), fluid_summary(injection, radius)
    materials = NeedleMaterials(needle_mesh.region, tissue_of, {tissue.id: tissue}, s, mesh.t.T, needle_mesh.lumen_radius_mesh_m, factor)
    start_c = s.start_temp_c
    tissue_nodes = needle_mesh.tissue_nodes
    thresholds = catalog_thresholds()
    coagulation = CoagulationTracker({tissue.id: np.ones(mesh.p.shape[1], bool)}, np.full(mesh.p.shape[1], start_c))

    mean_temp_accumulator = np.zeros(mesh.p.shape[1])
    probes = _probe_points(needle_mesh)
    probe_elements, probe_nodes, probe_weights = _interpolation_matrix(needle_mesh, list(probes.values()))
    probe_peak = np.full(len(probes), start_c)
    probe_sum = np.zeros(len(probes))
    growth: list[tuple[float, float, float, float]] = []
    n_steps = len(time_steps(s))

    def observe(i: int, t_now: float, dt: float, temp: np.ndarray, damage: DamageAccumulator) -> None:
        """Time-mean and probe temperatures, and the lesion size every GROWTH_INTERVAL_S."""
        np.add(mean_temp_accumulator, temp * dt, out=mean_temp_accumulator)
        coagulation.advance(temp, dt)
        probe_temp = (temp[probe_nodes] * probe_weights).sum(axis=1)
        np.maximum(probe_peak, probe_temp, out=probe_peak)
        np.add(probe_sum, probe_temp * dt, out=probe_sum)
        if t_now >= GROWTH_INTERVAL_S * (len(growth) + 1) - 1e-9 or i == n_steps - 1:
            shape = measure_lesion(needle_mesh, damage.omega, thresholds.omega, "arrhenius")
            growth.append((t_now, shape.width_mm, shape.length_mm, shape.volume_mm3))
    run = run_generator(
        s, materials, electric, heat,
        current_a=electric.electrode_current_a, node_weights=heat.node_weights, thermocouples=[needle_mesh.thermocouple_node],
        tissue_nodes=tissue_nodes, volume_factor=TWO_PI, observe=observe, progress=progress,
    )  # fmt: skip
    damage = run.damage
    lesion = measure_lesion(needle_mesh, damage.omega, thresholds.omega, "arrhenius")
    iso = measure_lesion(needle_mesh, damage.max_temp_c, thresholds.isotherm_c, "isotherm50")
    cem = measure_lesion(needle_mesh, damage.cem43_min, thresholds.cem43_min, "cem43")
    coag = measure_lesion(needle_mesh, *coagulation.field(damage.max_temp_c))
    warnings = run.warnings((lesion, iso, cem))
    pulsed = None
    if s.mode == "pulsed":
        t_end = run.time_s
        probe_report = {name: {"peak_c": float(pk), "mean_c": float(sm / t_end)} for name, pk, sm in zip(probes, probe_peak, probe_sum, strict=True)}
        field_v_m = dict(zip(probes, (np.hypot(*electric.field(run.phi)) * s.pulse_voltage_v)[probe_elements].tolist(), strict=True))
        pulsed = _pulsed_summary(mean_temp_accumulator / t_end, tissue_nodes, run.peak_tissue_c, lesion, run.traces, probe_report, field_v_m)
    mesh_info = {
        "h_fine_mm": s.h_fine_mm,
        "fine_margin_mm": dict(zip(("radial", "distal", "proximal"), (round(m, 3) for m in margins_mm), strict=True)),
        "fine_margin_from": margin_from,
        "domain_mm": s.domain_mm,
        "growth": needle_mesh.spec.growth,
        "nodes": int(mesh.p.shape[1]),
        "elements": int(mesh.t.shape[1]),
        "time_steps": n_steps,
        "dt_s": s.dt_s if s.mode != "pulsed" else None,
        "verified_tolerance_mm": MESH_TOLERANCE_MM,
        "verified_by": "default conventional case: width and length within verified_tolerance_mm of the solution with h_fine_mm and dt_s halved and of a converged one (h_fine_mm 0.05)",
        "factorizations": sum(solver.factorizations for solver in heat.solvers.values()) + electric.factorizations,
    }
    return RFResult(
        **run.summary(),
        pre_injection=pre,
        tissue=tissue,
        lesion=lesion,
        isotherm50=iso,
        cem43=cem,
        coagulation=coag,
        growth=LesionGrowth(*(tuple(float(x) for x in column) for column in zip(*growth, strict=True))),
        mesh=mesh_info,
        wall_time_s=time.perf_counter() - started,
        pulsed=pulsed,
        warnings=tuple(warnings),
        fields=FieldSnapshot(needle_mesh, run.temp_c, damage.omega, damage.cem43_min, damage.max_temp_c, run.phi.copy()),
    )


def _pulsed_summary(mean_temp, tissue_nodes, peak_c, lesion, traces, probe_report, field_v_m) -> dict:
    """Peak/mean temperatures and the field at the pulse voltage near the tip."""
    applied = traces.voltage_v[traces.voltage_v > 0]
    return {
        "peak_tissue_temp_c": peak_c,
        "peak_tissue_temp_note": "hottest mesh node, at the electrode's sharp edge where the field is singular: "
        "it rises as the mesh and pulse resolution are refined; probe_temp_c values are converged",
        "mean_tissue_temp_c": float(mean_temp[tissue_nodes].max()),
        "probe_temp_c": probe_report,
        "electric_field_v_per_m": field_v_m,
        "pulse_voltage_v_mean": float(applied.mean()) if applied.size else 0.0,
        "thermal_lesion": bool(lesion.volume_mm3 > 0),
        "verdict": (
            "no thermal lesion: Omega stayed below 1 everywhere (non-lesional pulsed RF)"
            if lesion.volume_mm3 == 0
            else "THERMAL LESION: Omega reached 1; these settings are lesional"
        ),
    }
