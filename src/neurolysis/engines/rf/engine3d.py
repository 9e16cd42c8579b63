"""Radiofrequency lesions in 3D: needles at any angle in heterogeneous anatomy, mono- or bipolar.

The same physics and generator as the axisymmetric engine (:mod:`neurolysis.engines.rf.engine2d`),
on a needle-aligned tetrahedral mesh (:mod:`neurolysis.physics.mesh3d`) moved rigidly into
the anatomy. Each time step:

1. the quasi-static potential div(sigma(T) grad phi) = 0 for 1 V between electrode and
   pad (monopolar: phi = 1 on the active tip, 0 on the far boundary) or between the two
   needles (bipolar: phi = +1/2 and -1/2, no pad; the far boundary is insulating);
2. one backward-Euler Pennes step split into the response without RF and the response to
   the unit Joule heat Q1 = sigma |grad phi|^2; the step is linear in V^2, so
3. the generator picks V^2 with :func:`~neurolysis.engines.rf.engine2d.controller_voltage`: the
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from threadpoolctl import threadpool_limits

from neurolysis import devices as catalog
from neurolysis.anatomy.scene import Scene
from neurolysis.engines.poses import NeedleFrame, pose_frame, tissue_at, validate_poses
from neurolysis.engines.rf.fluid import conductivity_factor, filled_3d
from neurolysis.engines.rf.fluid import summary as fluid_summary
from neurolysis.engines.rf.generator import NeedleMaterials, RFLesionResult, run_generator
from neurolysis.engines.rf.settings import RFSettings, needle_geometry
from neurolysis.fields import FieldSample, NeedlePose
from neurolysis.physics.damage import CoagulationTracker, catalog_thresholds, coagulation_criterion
from neurolysis.physics.fem3d import Heat3D, Potential3D, StiffnessPattern, TetGeometry
from neurolysis.physics.lesion import measure_lesion3d, tissue_edges
from neurolysis.physics.mesh import NeedleGeometry, Region
from neurolysis.physics.mesh3d import Mesh3DSpec, NeedleMesh3D, build_needle_mesh3d
from neurolysis.tissue import Tissue, load_tissue
from neurolysis.validation import check_number

DEFAULT_MESH = Mesh3DSpec()
"""Default resolution: 0.4 mm where lesions form, 16 sectors (docs/models/rf3d.md)."""

BIPOLAR_MESH = Mesh3DSpec(h_fine_m=0.5e-3, sectors=12, fine_margin_m=5e-3)
"""Resolution of a bipolar pair: two needles and the tissue between them make the default mesh
2-3 times larger; at 0.5 mm and 12 sectors the strip of an 8 mm pair is 0.2 mm wider and 0.1 mm
longer than at the default 0.4 mm / 16 sectors (docs/models/rf3d.md, refinement study), in half
the time (``bench/bipolar.py``)."""

BIPOLAR_DT_S = 3.0
"""Time step of a bipolar pair: the 8 and 12 mm strips change < 0.05 mm from 2 s (docs/models/rf3d.md)."""

DEFAULT_DT_S = 2.0
"""Time step of the 3D engine unless given: the default lesion changes < 0.01 mm from 1 s
(docs/models/rf3d.md); pulsed RF keeps its pulse-resolving steps."""


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


@dataclass(frozen=True, eq=False)
class StimulationField:
    """The stimulation test's field of one needle: 1 V on the active tip in tissue at body
    temperature, before any pre-injected fluid (the test precedes the injection)."""

    mesh: NeedleMesh3D
    frame: NeedleFrame
    unit_potential: np.ndarray  # nodal, V per V
    conductance_s: float  # current per volt at the generator (A/V)
    solve_s: float = 0.0  # wall time of its solve

    def potential(self, points_m: np.ndarray, frame: NeedleFrame | None = None) -> np.ndarray:
        """Potential (V per V) at points (n, 3) of the anatomy frame; ``frame`` moves the needle (a
        placement-cohort pose; rigid move). 0 off the mesh (its far boundary is the return)."""
        return self.mesh.interpolate(self.unit_potential, (frame or self.frame).to_local(points_m), 0.0)


@dataclass(frozen=True, kw_only=True)
class RF3DResult(RFLesionResult):
    """Outcome of one 3D RF simulation; lesion dimensions in the first needle's frame."""

    poses: tuple[NeedlePose, ...]
    strip: BipolarStrip | None = None  # a bipolar pair's strip (None: one needle)
    fields: FieldState3D | None = field(default=None, compare=False, repr=False)
    stimulation: StimulationField | None = field(default=None, compare=False, repr=False)  # None for a bipolar pair

    @property
    def joined(self) -> bool | None:
        """Whether a bipolar pair's lesions join (None for one needle)."""
        return None if self.strip is None else self.strip.joined

    def sample(self, points_m: np.ndarray) -> FieldSample:
        """Peak temperature (C), Omega, CEM43 (min) and lethality at points (n, 3) of the anatomy frame.

        P1 interpolation on the mesh; points outside it carry the start temperature and no damage.
        ``lethal`` is Omega >= 1 (never in pulsed mode, which is not meant to coagulate);
        ``tubes_destroyed`` where it is lethal and the nerve coagulates (:func:`nerve_tube_threshold_c`).
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
        peak = interp(f.max_temp_c, f.start_temp_c)
        return FieldSample(peak, omega, interp(f.cem43_min, 0.0), lethal, tubes_destroyed=lethal & (peak >= nerve_tube_threshold_c()))

    def to_dict(self) -> dict:
        """JSON-ready summary (keys as :meth:`RFResult.to_dict` where they mean the same)."""
        middle = {
            "settings": self.settings.as_dict(),
            "poses": [{"tip_mm": (p.tip_m * 1e3).tolist(), "direction": p.direction.tolist()} for p in self.poses],
            "electrodes": "monopolar" if self.strip is None else "bipolar",
            "bipolar": None if self.strip is None else self.strip.as_dict(),
            "joined": self.joined,
        }
        return self._dict_head() | middle | self._dict_tail()


def _tissues(settings: RFSettings, mesh: NeedleMesh3D, frame: NeedleFrame, scene: Scene | None, factors: Mapping[str, float] | None) -> tuple[np.ndarray, dict[str, Tissue]]:
    is_tissue = mesh.region == Region.TISSUE
    tissue_of = np.full(len(mesh.region), settings.tissue, dtype=object)
    tissue_of[is_tissue] = tissue_at(scene, frame.to_world(mesh.centroids[is_tissue]), settings.tissue)
    ids = set(tissue_of[is_tissue])
    tissues = {tid: load_tissue(tid) for tid in ids}
    if factors:
        tissues = {tid: t.scaled(**factors) for tid, t in tissues.items()}
    if settings.ex_vivo:
        tissues = {tid: t.ex_vivo() for tid, t in tissues.items()}
    return tissue_of, tissues


def _needle_setup(s: RFSettings, poses: tuple[NeedlePose, ...], scene: Scene | None, mesh: Mesh3DSpec, tissue_factors):
    """The checked poses' mesh in the anatomy: geometry, mesh spec, mesh, frame, tissue per element, tissues, tet geometry, stiffness pattern."""
    spacing, axial = validate_poses(poses, scene, s.electrodes == "bipolar", catalog.outer_radius_m(s.gauge))
    geometry = needle_geometry(s)
    spec = Mesh3DSpec(mesh.h_fine_m, mesh.sectors, mesh.fine_margin_m, s.domain_mm * 1e-3, mesh.growth, mesh.edge_levels) if mesh.domain_m != s.domain_mm * 1e-3 else mesh
    m = build_needle_mesh3d(geometry, spec, spacing, axial)
    frame = pose_frame(poses)
    tissue_of, tissues = _tissues(s, m, frame, scene, tissue_factors)
    geo = TetGeometry(m.nodes, m.tets)
    return geometry, spec, m, frame, tissue_of, tissues, geo, StiffnessPattern(geo, m.n_nodes)


@threadpool_limits.wrap(limits=1, user_api="blas")
def stimulation_field(settings: RFSettings, pose: NeedlePose, scene: Scene | None = None, mesh: Mesh3DSpec = DEFAULT_MESH) -> StimulationField:
    """Only the stimulation test's field of one needle at ``pose`` (no heating)."""
    s = settings.resolved().with_(electrodes="monopolar")
    _, _, m, frame, tissue_of, tissues, geo, pattern = _needle_setup(s, (pose,), scene, mesh, None)
    model = NeedleMaterials(m.region, tissue_of, tissues, s, m.tets, m.geometry.lumen_radius_m)
    electric = Potential3D(geo, pattern, model.is_tissue, [(m.outer_nodes, 0.0), (m.active_nodes[0], 1.0)])
    return StimulationField(m, frame, *_stimulation_solve(model, electric, s.start_temp_c))


@threadpool_limits.wrap(limits=1, user_api="blas")  # small vector products: threads only add contention
def simulate_rf3d(
    settings: RFSettings,
    poses: Sequence[NeedlePose],
    scene: Scene | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    mesh: Mesh3DSpec = DEFAULT_MESH,
    dt_s: float | None = None,
    tissue_factors: Mapping[str, float] | None = None,
) -> RF3DResult:
    """Simulate an RF lesion from one needle (monopolar) or two parallel needles (bipolar).

    ``poses`` are in the anatomy frame of ``scene`` (metres); without a scene the tissue
    is homogeneous ``settings.tissue``. ``mesh`` sets the resolution (:class:`Mesh3DSpec`);
    ``dt_s`` the time step (default :data:`DEFAULT_DT_S`, replacing ``settings.dt_s``).
    ``tissue_factors`` multiply named properties of every tissue (``Tissue.scaled``, e.g.
    ``{"electrical_conductivity_s_m": 1.2}``: the property spread of the placement cohort).
    ``progress(fraction)`` is called after every step. Two needles are a bipolar pair when
    ``settings.electrodes == "bipolar"``.
    """
    started = time.perf_counter()
    s = settings.resolved().with_(dt_s=DEFAULT_DT_S if dt_s is None else dt_s)
    bipolar = s.electrodes == "bipolar"
    poses = tuple(poses)
    geometry, spec, m, frame, tissue_of, tissues, geo, pattern = _needle_setup(s, poses, scene, mesh, tissue_factors)
    factor, pre, injection = None, None, s.injection
    if injection is not None:  # the fluid fills the tissue nearest each needle's apex
        is_tissue = m.region == Region.TISSUE
        filled, reach = filled_3d(injection, m.centroids, geo.volume, m.tets, tissue_of, is_tissue, frame.to_local(np.array([p.tip_m for p in poses])))
        factor, pre = conductivity_factor(injection, tissue_of, filled), fluid_summary(injection, reach)
    model = NeedleMaterials(m.region, tissue_of, tissues, s, m.tets, m.geometry.lumen_radius_m, factor)
    if bipolar:
        electrodes = [(m.active_nodes[0], 0.5), (m.active_nodes[1], -0.5)]
    else:
        electrodes = [(m.outer_nodes, 0.0), (m.active_nodes[0], 1.0)]
    electric = Potential3D(geo, pattern, model.is_tissue, electrodes)
    heat = Heat3D(geo, pattern, m.outer_nodes)
    edges = tissue_edges(m)
    coagulation = _coagulation_tracker(m, tissue_of, s.start_temp_c)
    setup_s = time.perf_counter() - started
    run = run_generator(
        s, model, electric, heat,
        current_a=lambda sigma, phi: electric.terminal_power_w(), node_weights=geo.node_weights,
        thermocouples=m.thermocouple_nodes, tissue_nodes=m.tissue_nodes, progress=progress,
        observe=lambda i, t, dt, temp, damage: coagulation.advance(temp, dt),
    )  # fmt: skip
    solve_s = time.perf_counter() - started - setup_s

    damage = run.damage
    thresholds = catalog_thresholds()
    lesion = measure_lesion3d(m, damage.omega, thresholds.omega, "arrhenius", edges, geo.volume)
    iso = measure_lesion3d(m, damage.max_temp_c, thresholds.isotherm_c, "isotherm50", edges, geo.volume)
    cem = measure_lesion3d(m, damage.cem43_min, thresholds.cem43_min, "cem43", edges, geo.volume)
    coag_field, coag_threshold, coag_label = coagulation.field(damage.max_temp_c)
    coag = measure_lesion3d(m, coag_field, coag_threshold, coag_label, edges, geo.volume)
    strip = bipolar_strip(m, damage.omega, geometry) if bipolar else None
    warnings = run.warnings((lesion, iso, cem))
    solvers = [electric.solver, *heat.solvers.values()]
    mesh_info = {
        **spec.as_dict(),
        "nodes": int(m.n_nodes),
        "elements": len(m.tets),
        "time_steps": len(run.traces.time_s),
        "dt_s": s.dt_s if s.mode != "pulsed" else None,
        "amg_builds": sum(x.builds for x in solvers),
        "cg_iterations_per_solve": sum(x.iterations for x in solvers) / max(1, sum(x.solves for x in solvers)),
        "setup_s": setup_s,
        "solve_s": solve_s,
        "tissues": sorted(tissues),
    }
    stimulation = None if bipolar else StimulationField(m, frame, *_stimulation_solve(model, electric, s.start_temp_c))
    return RF3DResult(
        **run.summary(),
        pre_injection=pre,
        poses=poses,
        lesion=lesion,
        isotherm50=iso,
        cem43=cem,
        coagulation=coag,
        mesh=mesh_info,
        wall_time_s=time.perf_counter() - started,
        strip=strip,
        warnings=tuple(warnings),
        fields=FieldState3D(m, frame, run.temp_c, damage.omega, damage.cem43_min, damage.max_temp_c, run.phi.copy(), s.start_temp_c),
        stimulation=stimulation,
    )


def _stimulation_solve(model: NeedleMaterials, electric: Potential3D, start_c: float) -> tuple[np.ndarray, float, float]:
    """The stimulation test's field: 1 V on the tip in tissue at ``start_c``, before any pre-injected fluid
    (the test precedes the injection); solved after the lesion so the lesion's solves are untouched.
    Returns (phi per V, conductance S, wall time s)."""
    started = time.perf_counter()
    phi, conductance = electric.detached_solve(model.tissue_sigma(np.full(len(model.is_tissue), start_c)))
    return phi, conductance, time.perf_counter() - started


DEFAULT_SPACING_MM = 10.0
"""Needle spacing of ``neurolysis rf --electrodes bipolar`` unless given (Wondra 2024 tested 6-18 mm)."""


def bipolar_pair(settings: RFSettings, spacing_mm: float, *, progress: Callable[[float], None] | None = None, mesh: Mesh3DSpec | None = None) -> RF3DResult:
    """Two parallel needles ``spacing_mm`` apart (axis to axis, tips level) in the homogeneous
    tissue of ``settings``: the one-tissue bipolar lesion of ``neurolysis rf --electrodes bipolar``."""
    down = np.array([0.0, 0.0, -1.0])
    poses = [NeedlePose(np.zeros(3), down), NeedlePose(np.array([check_number("spacing_mm", spacing_mm) * 1e-3, 0.0, 0.0]), down)]
    return simulate_rf3d(settings.with_(electrodes="bipolar"), poses, progress=progress, mesh=BIPOLAR_MESH if mesh is None else mesh, dt_s=BIPOLAR_DT_S)


@cache
def nerve_tube_threshold_c() -> float:
    """Peak temperature (C) above which a nerve's endoneurial tubes are destroyed (Sunderland 3):
    the nerve's visible-coagulation threshold (``data/coagulation.toml``, the protein-rich
    tissue proxy); between the Omega = 1 edge and it, killed axons keep their tubes (grade 2)."""
    c = coagulation_criterion("nerve")
    if c.kind != "peak_temperature":
        raise ValueError(f"coagulation criterion of nerve is {c.kind!r}: the grade rule needs a peak-temperature threshold")
    return c.threshold


def _coagulation_tracker(m: NeedleMesh3D, tissue_of: np.ndarray, start_c: float) -> CoagulationTracker:
    """Visible coagulation by the criterion of each tissue, on the nodes of its elements."""
    is_tissue = m.region == Region.TISSUE
    masks = {}
    for tid in sorted(set(tissue_of[is_tissue])):
        mask = np.zeros(m.n_nodes, bool)
        mask[m.tets[is_tissue & (tissue_of == tid)].ravel()] = True
        masks[tid] = mask
    return CoagulationTracker(masks, np.full(m.n_nodes, start_c))


@dataclass(frozen=True)
class BipolarStrip:
    """The lesion of a bipolar pair, read in the plane across both active tips at their middle
    (the plane of the needle axes' midpoints, perpendicular to the needles).

    ``joined``: Omega >= 1 all along the segment between the two needle surfaces; ``gap_mm``: the
    length of that segment left below Omega = 1 (0 when joined); ``strip_length_mm``: the extent
    of the lethal region along the line through both needles (outer edge to outer edge);
    ``strip_width_mm``: its extent across that line half-way between the needles (the waist of a
    joined strip; 0 when the middle is not lethal); ``spacing_mm``: between the needle axes.
    """

    joined: bool
    strip_width_mm: float
    strip_length_mm: float
    gap_mm: float
    spacing_mm: float

    def as_dict(self) -> dict:
        return {"joined": self.joined, "strip_width_mm": self.strip_width_mm, "strip_length_mm": self.strip_length_mm, "gap_mm": self.gap_mm, "spacing_mm": self.spacing_mm}


STRIP_STEP_M = 0.05e-3
"""Sampling step of the strip's lines (well under the 0.4 mm mesh)."""


def _run_through(lethal: np.ndarray, centre: int) -> tuple[int, int]:
    """First and last index of the run of True in ``lethal`` that contains ``centre`` (empty: (centre, centre - 1))."""
    if not lethal[centre]:
        return centre, centre - 1
    off = np.flatnonzero(~lethal)
    below, above = off[off < centre], off[off > centre]
    return (below[-1] + 1 if len(below) else 0), (above[0] - 1 if len(above) else len(lethal) - 1)


def bipolar_strip(m: NeedleMesh3D, omega: np.ndarray, geometry: NeedleGeometry, reach_m: float = 25e-3) -> BipolarStrip:
    """:class:`BipolarStrip` of a two-needle mesh from the nodal Omega (metal counts as lesion,
    so runs continue through the needles)."""
    a, b = m.needle_xyz[:2] + np.array([0.0, 0.0, 0.5 * geometry.tip_length_m])
    spacing = float(b[0] - a[0])

    def lethal_along(start: np.ndarray, step: np.ndarray, n: int) -> np.ndarray:
        pts = start + np.arange(n)[:, None] * step
        metal = np.zeros(n, bool)
        for centre in m.needle_xyz[:2]:
            metal |= np.hypot(pts[:, 0] - centre[0], pts[:, 1] - centre[1]) <= geometry.radius_m
        return metal | (m.interpolate(omega, pts, 0.0) >= 1.0)

    n_x = round((spacing + 2 * reach_m) / STRIP_STEP_M) + 1
    along = lethal_along(a - np.array([reach_m, 0.0, 0.0]), np.array([STRIP_STEP_M, 0.0, 0.0]), n_x)
    x = -reach_m + STRIP_STEP_M * np.arange(n_x)
    between = (x > geometry.radius_m) & (x < spacing - geometry.radius_m)
    gap = float((~along[between]).sum() * STRIP_STEP_M)
    on = np.flatnonzero(along)
    length = float(x[on[-1]] - x[on[0]] + STRIP_STEP_M) if len(on) else 0.0
    n_y = 2 * round(reach_m / STRIP_STEP_M) + 1
    across = lethal_along(0.5 * (a + b) - np.array([0.0, reach_m, 0.0]), np.array([0.0, STRIP_STEP_M, 0.0]), n_y)
    lo, hi = _run_through(across, n_y // 2)
    width = float(max(0, hi - lo + 1) * STRIP_STEP_M)
    return BipolarStrip(gap == 0.0, width * 1e3, length * 1e3, gap * 1e3, spacing * 1e3)
