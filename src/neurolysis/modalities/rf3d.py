"""Radiofrequency lesions in 3D: needles at any angle in heterogeneous anatomy, mono- or bipolar.

The same physics and generator as the axisymmetric engine (:mod:`neurolysis.modalities.rf`),
on a needle-aligned tetrahedral mesh (:mod:`neurolysis.physics.mesh3d`) moved rigidly into
the anatomy. Each time step:

1. the quasi-static potential div(sigma(T) grad phi) = 0 for 1 V between electrode and
   pad (monopolar: phi = 1 on the active tip, 0 on the far boundary) or between the two
   needles (bipolar: phi = +1/2 and -1/2, no pad; the far boundary is insulating);
2. one backward-Euler Pennes step split into the response without RF and the response to
   the unit Joule heat Q1 = sigma |grad phi|^2; the step is linear in V^2, so
3. the generator picks V^2 with :func:`~neurolysis.modalities.rf.controller_voltage`: the
   value that lands the thermocouple on the set-point ramp (bipolar: the hotter of the
   two thermocouples, i.e. the smallest of the two V^2), within the power and voltage
   limits; pulsed RF as in 2D;
4. Omega, CEM43 and the peak temperature accumulate at every node.

Tissue properties are per element: the anatomy label at the element centroid
(``scene.region_tissue[scene.label_at(x)]``) or the settings' tissue. Assumptions and
measured accuracy: docs/models/rf3d.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from neurolysis import devices as catalog
from neurolysis.anatomy.scene import Scene
from neurolysis.fields import FieldSample, NeedlePose
from neurolysis.lesion import LesionShape
from neurolysis.modalities.rf import (
    BODY_TEMP_C,
    DISCLAIMER,
    WATER_NUSSELT_LAMINAR,
    EnergyBudget,
    RFSettings,
    Traces,
    controller_voltage,
    setpoint_c,
    time_steps,
)
from neurolysis.physics.bioheat import perfusion_exchange
from neurolysis.physics.damage import DamageAccumulator, arrhenius, catalog_thresholds
from neurolysis.physics.fem3d import Heat3D, Potential3D, StiffnessPattern, TetGeometry
from neurolysis.physics.lesion3d import measure_lesion3d, tissue_edges
from neurolysis.physics.mesh import NeedleGeometry, Region
from neurolysis.physics.mesh3d import Mesh3DSpec, NeedleMesh3D, build_needle_mesh3d
from neurolysis.tissue import Tissue, load_tissue
from neurolysis.validation import ValidationError

DEFAULT_MESH = Mesh3DSpec()
"""Default resolution: 0.4 mm where lesions form, 16 sectors (docs/models/rf3d.md)."""

PARALLEL_TOLERANCE_DEG = 1.0
MIN_GAP_MM = 1.0
"""Bipolar: smallest allowed gap between the two needle surfaces."""
MAX_SPACING_MM = 30.0
MAX_AXIAL_OFFSET_MM = 20.0
DEFAULT_DT_S = 2.0
"""Time step of the 3D engine unless given: the default lesion changes < 0.01 mm from 1 s
(docs/models/rf3d.md); pulsed RF keeps its pulse-resolving steps."""


@dataclass(frozen=True)
class NeedleFrame:
    """Rigid map between the first needle's frame (apex at 0, shaft along +z) and the anatomy."""

    origin_m: np.ndarray
    rotation: np.ndarray  # columns: frame axes x, y, z in anatomy coordinates

    def to_local(self, points_m: np.ndarray) -> np.ndarray:
        return (np.asarray(points_m, float).reshape(-1, 3) - self.origin_m) @ self.rotation

    def to_world(self, local_m: np.ndarray) -> np.ndarray:
        return np.asarray(local_m, float).reshape(-1, 3) @ self.rotation.T + self.origin_m


def pose_frame(poses: Sequence[NeedlePose]) -> NeedleFrame:
    """The needle-aligned frame of the 3D meshes: origin at the first tip, z toward its hub,
    x toward the second needle (bipolar) or an arbitrary normal."""
    ez = -poses[0].direction  # toward the hub
    if len(poses) > 1:
        offset = poses[1].tip_m - poses[0].tip_m
        ex = offset - (offset @ ez) * ez
    else:
        helper = np.eye(3)[int(np.argmin(abs(ez)))]
        ex = helper - (helper @ ez) * ez
    ex = ex / np.linalg.norm(ex)
    ey = np.cross(ez, ex)
    return NeedleFrame(poses[0].tip_m.copy(), np.column_stack([ex, ey, ez]))


def validate_poses(poses: Sequence[NeedlePose], scene: Scene | None, bipolar: bool, radius_m: float) -> tuple[float | None, float]:
    """(spacing_m or None, axial offset of the second apex) after checking poses against the scene."""
    expected = 2 if bipolar else 1
    if len(poses) != expected:
        raise ValidationError(f"poses = {len(poses)} needle(s): {'bipolar' if bipolar else 'monopolar'} RF needs exactly {expected}")
    for i, pose in enumerate(poses):
        if not isinstance(pose, NeedlePose):
            raise ValidationError(f"poses[{i}] = {pose!r}: must be a NeedlePose")
        tip, d = np.asarray(pose.tip_m, float), np.asarray(pose.direction, float)
        if not (np.all(np.isfinite(tip)) and np.all(np.isfinite(d))) or np.linalg.norm(d) < 1e-12:
            raise ValidationError(f"poses[{i}] = tip {list(tip * 1e3)} mm, direction {list(d)}: must be finite with a non-zero direction")
        if scene is not None:
            lo, hi = (np.asarray(b, float) for b in scene.bounds_m)
            if np.any(tip < lo) or np.any(tip > hi):
                raise ValidationError(
                    f"poses[{i}].tip_mm = {np.round(tip * 1e3, 3).tolist()}: outside the scene {scene.name!r}, "
                    f"allowed range is {np.round(lo * 1e3, 3).tolist()} to {np.round(hi * 1e3, 3).tolist()} mm"
                )
    if not bipolar:
        return None, 0.0
    cos = float(poses[0].direction @ poses[1].direction)
    angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    if angle > PARALLEL_TOLERANCE_DEG:
        raise ValidationError(f"bipolar needle angle = {angle:.2f} deg: the needles must be parallel (allowed range is [0, {PARALLEL_TOLERANCE_DEG:g}] deg)")
    offset = poses[1].tip_m - poses[0].tip_m
    axial = float(offset @ -poses[0].direction)
    spacing = float(np.linalg.norm(offset - axial * -poses[0].direction))
    low = 2 * radius_m * 1e3 + MIN_GAP_MM
    if not low <= spacing * 1e3 <= MAX_SPACING_MM:
        raise ValidationError(f"bipolar spacing_mm = {spacing * 1e3:g}: allowed range is [{low:g}, {MAX_SPACING_MM:g}] mm (needles must not overlap)")
    if abs(axial) * 1e3 > MAX_AXIAL_OFFSET_MM:
        raise ValidationError(f"bipolar tip offset along the needles = {axial * 1e3:g} mm: allowed range is [-{MAX_AXIAL_OFFSET_MM:g}, {MAX_AXIAL_OFFSET_MM:g}] mm")
    return spacing, axial


def needle_geometry(settings: RFSettings) -> NeedleGeometry:
    """Needle shape of resolved ``settings`` (as the axisymmetric engine)."""
    radius = catalog.outer_radius_m(settings.gauge)
    lumen = settings.device.lumen_diameter_mm * 0.5e-3 if settings.mode == "cooled" else 0.0
    return NeedleGeometry(
        radius_m=radius,
        tip_length_m=settings.tip_mm * 1e-3,
        cone_length_m=catalog.cone_length_over_radius() * radius,
        insulation_thickness_m=catalog.insulation_thickness_m(),
        lumen_radius_m=lumen,
    )


class _Materials:
    """Element coefficients for needles and (possibly several) tissues."""

    def __init__(self, mesh: NeedleMesh3D, tissue_of: np.ndarray, tissues: dict[str, Tissue], settings: RFSettings):
        self.mesh = mesh
        self.is_tissue = mesh.region == Region.TISSUE
        self.is_lumen = mesh.region == Region.LUMEN
        self.groups = [(tissues[tid], np.flatnonzero(self.is_tissue & (tissue_of == tid))) for tid in sorted(set(tissue_of[self.is_tissue]))]
        steel, coating = catalog.material("steel"), catalog.material("insulation")
        is_coating = mesh.region == Region.INSULATION
        self.metal_k = np.where(is_coating, coating.thermal_conductivity_w_m_k, steel.thermal_conductivity_w_m_k)
        self.heat_capacity = np.where(is_coating, coating.volumetric_heat_capacity_j_m3_k, steel.volumetric_heat_capacity_j_m3_k)
        self.perfusion = np.zeros(len(mesh.region))
        for tissue, idx in self.groups:
            self.heat_capacity[idx] = tissue.volumetric_heat_capacity_j_m3_k
            self.perfusion[idx] = tissue.perfusion_w_m3_k
        self.coolant_exchange = 0.0
        self.coolant_inlet_c = None
        if settings.mode == "cooled":
            water = catalog.material("water")
            lumen_r = mesh.geometry.lumen_radius_m
            h = WATER_NUSSELT_LAMINAR * water.thermal_conductivity_w_m_k / (2 * lumen_r)
            self.coolant_exchange = 2 * h * lumen_r / lumen_r**2  # wall area per length over channel section
            self.coolant_inlet_c = settings.coolant_temp_c
            self.coolant_capacity_w_k = water.volumetric_heat_capacity_j_m3_k * settings.coolant_flow_ml_min * 1e-6 / 60.0

    def element_mean(self, nodal: np.ndarray) -> np.ndarray:
        return nodal[self.mesh.tets].mean(axis=1)

    def sigma(self, temp_e: np.ndarray) -> np.ndarray:
        out = np.zeros_like(temp_e)
        for tissue, idx in self.groups:
            out[idx] = tissue.electrical_conductivity(temp_e[idx])
        return out

    def conductivity(self, temp_e: np.ndarray) -> np.ndarray:
        out = self.metal_k.copy()
        for tissue, idx in self.groups:
            out[idx] = tissue.thermal_conductivity(temp_e[idx])
        return out

    def exchange(self, omega_e: np.ndarray, blood_c: float, coolant_c: float | None):
        perf = perfusion_exchange(self.perfusion, omega_e)
        cool = np.where(self.is_lumen, self.coolant_exchange, 0.0)
        ref = np.where(self.is_lumen, coolant_c if coolant_c is not None else blood_c, blood_c)
        return perf, cool, ref


@dataclass(frozen=True, eq=False)
class FieldState3D:
    """Nodal end-of-run fields on the mesh, and the frame that places it in the anatomy."""

    mesh: NeedleMesh3D
    frame: NeedleFrame
    temp_c: np.ndarray
    omega: np.ndarray
    cem43_min: np.ndarray
    max_temp_c: np.ndarray
    unit_potential: np.ndarray
    start_temp_c: float


@dataclass(frozen=True)
class RF3DResult:
    """Outcome of one 3D RF simulation; lesion dimensions in the first needle's frame."""

    settings: RFSettings
    poses: tuple[NeedlePose, ...]
    bipolar: bool
    lesion: LesionShape
    isotherm50: LesionShape
    cem43: LesionShape
    max_tissue_temp_c: float
    tip_temp_c_final: float
    mean_power_w: float
    impedance_ohm_start: float
    impedance_ohm_end: float
    traces: Traces
    energy: EnergyBudget
    mesh: dict
    wall_time_s: float
    joined: bool | None = None
    warnings: tuple[str, ...] = ()
    fields: FieldState3D | None = field(default=None, compare=False, repr=False)

    def sample(self, points_m: np.ndarray) -> FieldSample:
        """Peak temperature (C), Omega, CEM43 (min) and lethality at points (n, 3) of the anatomy frame.

        P1 interpolation on the mesh; points outside it carry the start temperature and no damage.
        ``lethal`` is Omega >= 1 (never in pulsed mode, which is not meant to coagulate).
        """
        f = self.fields
        local = f.frame.to_local(points_m)
        tet, w = f.mesh.locate(local)
        ok = tet >= 0
        nodes = f.mesh.tets[tet[ok]]

        def interp(nodal, outside):
            out = np.full(len(local), outside, float)
            out[ok] = (nodal[nodes] * w[ok]).sum(axis=1)
            return out

        omega = interp(f.omega, 0.0)
        lethal = omega >= 1.0 if self.settings.mode != "pulsed" else np.zeros(len(local), bool)
        return FieldSample(interp(f.max_temp_c, f.start_temp_c), omega, interp(f.cem43_min, 0.0), lethal)

    def to_dict(self) -> dict:
        """JSON-ready summary (keys as :meth:`RFResult.to_dict` where they mean the same)."""
        return {
            "lesion": self.lesion.as_dict(),
            "isotherm50": self.isotherm50.as_dict(),
            "cem43": self.cem43.as_dict(),
            "max_tissue_temp_c": self.max_tissue_temp_c,
            "tip_temp_c_final": self.tip_temp_c_final,
            "mean_power_w": self.mean_power_w,
            "impedance_ohm_start": self.impedance_ohm_start,
            "impedance_ohm_end": self.impedance_ohm_end,
            "traces": self.traces.as_dict(),
            "settings": self.settings.as_dict(),
            "poses": [{"tip_mm": (p.tip_m * 1e3).tolist(), "direction": p.direction.tolist()} for p in self.poses],
            "bipolar": self.bipolar,
            "joined": self.joined,
            "mesh": self.mesh,
            "energy": self.energy.as_dict(),
            "wall_time_s": self.wall_time_s,
            "warnings": list(self.warnings),
            "disclaimer": DISCLAIMER,
        }


def _tissues(settings: RFSettings, mesh: NeedleMesh3D, frame: NeedleFrame, scene: Scene | None) -> tuple[np.ndarray, dict[str, Tissue]]:
    tissue_of = np.full(len(mesh.region), settings.tissue, dtype=object)
    if scene is not None:
        is_tissue = mesh.region == Region.TISSUE
        labels = np.asarray(scene.label_at(frame.to_world(mesh.centroids[is_tissue])), dtype=int)
        tissue_of[is_tissue] = np.asarray(scene.region_tissue, dtype=object)[labels]
    ids = set(tissue_of[mesh.region == Region.TISSUE])
    tissues = {tid: load_tissue(tid) for tid in ids}
    if settings.ex_vivo:
        tissues = {tid: t.ex_vivo() for tid, t in tissues.items()}
    return tissue_of, tissues


@threadpool_limits.wrap(limits=1, user_api="blas")  # small vector products: threads only add contention
def simulate_rf3d(
    settings: RFSettings,
    poses: Sequence[NeedlePose],
    scene: Scene | None = None,
    *,
    bipolar: bool = False,
    progress: Callable[[float], None] | None = None,
    mesh: Mesh3DSpec = DEFAULT_MESH,
    dt_s: float | None = None,
) -> RF3DResult:
    """Simulate an RF lesion from one needle (monopolar) or two parallel needles (bipolar).

    ``poses`` are in the anatomy frame of ``scene`` (metres); without a scene the tissue
    is homogeneous ``settings.tissue``. ``mesh`` sets the resolution (:class:`Mesh3DSpec`);
    ``dt_s`` the time step (default :data:`DEFAULT_DT_S`, replacing ``settings.dt_s``).
    ``progress(fraction)`` is called after every step.
    """
    started = time.perf_counter()
    s = settings.resolved().with_(dt_s=DEFAULT_DT_S if dt_s is None else dt_s)
    poses = tuple(poses)
    spacing, axial = validate_poses(poses, scene, bipolar, catalog.outer_radius_m(s.gauge))
    gen = catalog.generator()
    geometry = needle_geometry(s)
    spec = Mesh3DSpec(mesh.h_fine_m, mesh.sectors, mesh.fine_margin_m, s.domain_mm * 1e-3, mesh.growth, mesh.edge_levels) if mesh.domain_m != s.domain_mm * 1e-3 else mesh
    m = build_needle_mesh3d(geometry, spec, spacing, axial)
    frame = pose_frame(poses)
    tissue_of, tissues = _tissues(s, m, frame, scene)
    geo = TetGeometry(m.nodes, m.tets)
    pattern = StiffnessPattern(geo, m.n_nodes)
    model = _Materials(m, tissue_of, tissues, s)
    if bipolar:
        electrodes = [(m.active_nodes[0], 0.5), (m.active_nodes[1], -0.5)]
    else:
        electrodes = [(m.outer_nodes, 0.0), (m.active_nodes[0], 1.0)]
    electric = Potential3D(geo, pattern, model.is_tissue, electrodes)
    heat = Heat3D(geo, pattern, m.outer_nodes)
    edges = tissue_edges(m)
    damage_params = arrhenius(s.damage_model)
    start_c = s.start_temp_c
    tcs = m.thermocouple_nodes
    tissue_nodes = m.tissue_nodes

    temp = np.full(m.n_nodes, start_c)
    damage = DamageAccumulator(temp, damage_params)
    mass_nodes = geo.node_weights(model.heat_capacity)
    steps = time_steps(s)
    n_steps = len(steps)
    record = {k: np.empty(n_steps) for k in ("time_s", "tip_temp_c", "voltage_v", "power_w", "impedance_ohm")}
    delivered = perfusion_loss = coolant_loss = boundary_in = 0.0
    coolant_c = model.coolant_inlet_c
    peak_tissue_c = float(start_c)
    blood_c = start_c if s.ex_vivo else BODY_TEMP_C
    t_now = 0.0
    pulse_v2 = (s.pulse_voltage_v or 0.0) ** 2
    refresh_every = 1
    if s.mode == "pulsed":
        from neurolysis.modalities.rf import PULSED_REFRESH_S, pulsed_steps

        refresh_every = len(pulsed_steps(s)) * max(1, round(PULSED_REFRESH_S * s.pulse_frequency_hz))
    phi = electric.phi
    setup_s = time.perf_counter() - started
    for i, (dt, rf_on) in enumerate(steps):
        temp_e = model.element_mean(temp)
        if i % refresh_every == 0:
            sigma = model.sigma(temp_e)
            phi = electric.solve(sigma)
            unit_joule = electric.unit_joule(sigma, phi)
            unit_power = electric.unit_power_w(unit_joule)
            unit_current = electric.terminal_power_w()
            perf, cool, ref = model.exchange(model.element_mean(damage.omega), blood_c, coolant_c)
            ops = heat.operators(model.conductivity(temp_e), model.heat_capacity, perf + cool, ref)
            perf_nodes, cool_nodes = geo.node_weights(perf), geo.node_weights(cool)
            joule_nodes = geo.node_weights(unit_joule)
        free, responses = heat.step(temp, dt, ops, [unit_joule] if rf_on else [])
        v2_limit = min(gen.max_voltage_v**2, s.max_power_w / unit_power)
        if not rf_on:
            v2, response = 0.0, 0.0
        else:
            response = responses[0]
            target = s.pulse_temp_limit_c if s.mode == "pulsed" else setpoint_c(t_now + dt, start_c, s.set_temp_c, s.ramp_s)
            v2 = min(controller_voltage(target, free[tc], response[tc], v2_limit) for tc in tcs)
            if s.mode == "pulsed":
                v2 = min(pulse_v2, v2)
        new_temp = free + v2 * response
        t_now += dt

        delivered += unit_current * v2 * dt
        boundary_in += heat.boundary_inflow_w(new_temp, ops, v2 * joule_nodes) * dt
        perfusion_loss += float(perf_nodes @ (new_temp - blood_c)) * dt
        if s.mode == "cooled":
            coolant_power = float(cool_nodes @ (new_temp - coolant_c))
            coolant_loss += coolant_power * dt
            coolant_c = model.coolant_inlet_c + 0.5 * max(coolant_power, 0.0) / (model.coolant_capacity_w_k * len(tcs))
        temp = new_temp
        damage.advance(temp, dt)
        peak_tissue_c = max(peak_tissue_c, float(temp[tissue_nodes].max()))
        record["time_s"][i] = t_now
        record["tip_temp_c"][i] = temp[tcs].max()
        record["voltage_v"][i] = np.sqrt(v2)
        record["power_w"][i] = v2 * unit_power
        record["impedance_ohm"][i] = 1.0 / unit_power
        if progress is not None:
            progress((i + 1) / n_steps)
    solve_s = time.perf_counter() - started - setup_s

    stored = float(mass_nodes @ (temp - start_c))
    energy = EnergyBudget(delivered, stored, perfusion_loss, coolant_loss, -boundary_in)
    thresholds = catalog_thresholds()
    lesion = measure_lesion3d(m, damage.omega, thresholds.omega, "arrhenius", edges, geo.volume)
    iso = measure_lesion3d(m, damage.max_temp_c, thresholds.isotherm_c, "isotherm50", edges, geo.volume)
    cem = measure_lesion3d(m, damage.cem43_min, thresholds.cem43_min, "cem43", edges, geo.volume)
    joined = _joined(m, damage.omega, geometry) if bipolar else None
    warnings = []
    if any(shape.reaches_domain_edge for shape in (lesion, iso, cem)):
        warnings.append("a lesion reaches the edge of the simulated domain: increase domain_mm")
    if s.mode != "pulsed" and record["tip_temp_c"][-1] < s.set_temp_c - 2.0:
        warnings.append(
            f"the tip reached only {record['tip_temp_c'][-1]:.1f} C of the {s.set_temp_c:g} C set: "
            f"the generator hit its power limit ({s.max_power_w:g} W) or voltage limit ({gen.max_voltage_v:g} V)"
        )
    if peak_tissue_c >= 100.0:
        warnings.append(f"tissue reached {peak_tissue_c:.0f} C: boiling and charring are modelled only as a loss of conductivity")
    if s.mode == "pulsed" and lesion.volume_mm3 > 0:
        warnings.append("pulsed RF produced a thermal lesion (Omega >= 1): settings are not those of non-lesional PRF")
    solvers = [electric.solver, *heat.solvers.values()]
    mesh_info = {
        **spec.as_dict(),
        "nodes": int(m.n_nodes),
        "elements": int(len(m.tets)),
        "time_steps": n_steps,
        "dt_s": s.dt_s if s.mode != "pulsed" else None,
        "amg_builds": sum(x.builds for x in solvers),
        "cg_iterations_per_solve": sum(x.iterations for x in solvers) / max(1, sum(x.solves for x in solvers)),
        "setup_s": setup_s,
        "solve_s": solve_s,
        "tissues": sorted(tissues),
    }
    return RF3DResult(
        settings=s,
        poses=poses,
        bipolar=bipolar,
        lesion=lesion,
        isotherm50=iso,
        cem43=cem,
        max_tissue_temp_c=peak_tissue_c,
        tip_temp_c_final=float(record["tip_temp_c"][-1]),
        mean_power_w=float(np.sum(record["power_w"] * np.diff(record["time_s"], prepend=0.0)) / t_now),
        impedance_ohm_start=float(record["impedance_ohm"][0]),
        impedance_ohm_end=float(record["impedance_ohm"][-1]),
        traces=Traces(**record),
        energy=energy,
        mesh=mesh_info,
        wall_time_s=time.perf_counter() - started,
        joined=joined,
        warnings=tuple(warnings),
        fields=FieldState3D(m, frame, temp, damage.omega, damage.cem43_min, damage.max_temp_c, phi.copy(), start_c),
    )


def _joined(m: NeedleMesh3D, omega: np.ndarray, geometry: NeedleGeometry, n: int = 401) -> bool:
    """Whether Omega >= 1 all along the segment between the two active-tip midpoints (outside the metal)."""
    mid = m.needle_xyz + np.array([0.0, 0.0, 0.5 * geometry.tip_length_m])
    s = np.linspace(0.0, 1.0, n)[:, None]
    pts = mid[0] + s * (mid[1] - mid[0])
    outside_metal = np.ones(n, bool)
    for centre in m.needle_xyz:
        outside_metal &= np.hypot(pts[:, 0] - centre[0], pts[:, 1] - centre[1]) > geometry.radius_m * 1.05
    values = m.interpolate(omega, pts[outside_metal], 0.0)
    return bool(np.all(values >= 1.0))
