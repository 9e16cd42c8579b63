"""Placement uncertainty: the outcome over a Monte Carlo cohort of needle poses around the planned one.

Each sample moves the needle by a tip offset (Gaussian, SD per axis), a tilt about the tip
(2D Gaussian, SD in degrees) and, for a share of needles, a gross misplacement (a distance
drawn uniformly in a range, in a random direction); ``data/uncertainty.toml`` holds the
published accuracies per target and the operator presets. Every sample is one patient: the
target nerve's killed fractions, pain block, motor deficit, one draw of relief (a failed
block relieves nothing), and the injury flag of every critical structure.

**Shortcut.** The method's fields are solved once, at the planned pose, and tabulated in the
planned needle's frame: the lethal region on a 0.1 mm grid, peak temperature / Omega /
CEM43 / agent on the risk model's grid. A sample reads them through its own needle frame
(rigid motion). This is exact where the tissue around the needle is the same at the moved
pose (homogeneous tissue, and rigid motion of the whole anatomy); it is not near tissue
boundaries (bone, a vessel, fat against muscle) whose position relative to the needle
changes. There the engine flags the sample (``inexact``: the tissue under the moved
lethal region differs from the planned one at more than 5 % of its points) and reports the
share; the tabulated fields are used all the same. ``bench/monte_carlo.py`` checks the
shortcut against full re-simulation of sampled poses.

Surgery (the surgeon sees the nerve) and the nerve block (a lumped model that does not
depend on the needle-to-nerve distance) have no placement spread here: their cohort is the
planned outcome for every sample, said so in the section.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.ndimage import binary_dilation, distance_transform_edt

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.centreline import nerve_frame
from neurolysis.engines.poses import NeedleFrame, against_bone, tissue_at
from neurolysis.fields import BODY_TEMP_C, NeedlePose
from neurolysis.methods.base import Context, PhysicsResult
from neurolysis.outcome.assess import territory_of
from neurolysis.outcome.axons import axon_paths, axon_population, killed_paths
from neurolysis.outcome.field_tables import FieldGrid, SolvedFields
from neurolysis.outcome.relief import RELIEVED_AT_MONTHS, Territory, axon_growth_factors, days_per_month, end_shares, method_grade, model_parameters, recovery_draws, relief_days, relief_ends
from neurolysis.outcome.risk import injury_verdict, solute_of, structure_points
from neurolysis.outcome.spread import PlacementSpread, PropertySpread, draw_poses, rotation_between

Z975 = 1.959963984540054  # standard normal 97.5th percentile (95 % interval)


@dataclass(frozen=True, eq=False)
class Cohort:
    """Per-sample results (arrays of length ``samples``) and the spread they were drawn with."""

    poses: tuple[NeedlePose, ...]
    pain_killed: np.ndarray
    motor_killed: np.ndarray | None
    pain_block: np.ndarray
    motor_deficit: np.ndarray
    relief_months: np.ndarray | None
    injured: np.ndarray  # (samples, structures)
    inexact: np.ndarray
    spread: PlacementSpread | None
    seed: int
    structures: tuple[str, ...]
    note: str
    wall_time_s: float
    bone_contact: np.ndarray | None = None  # samples drawn back to the bone's surface
    checks: tuple = ()  # (|killed error|, block agrees, injuries agree) of the samples solved in full
    properties: PropertySpread | None = None
    anchors: int = 0  # poses solved in full besides the plan, each sample moved from the nearest
    targets: tuple = ()  # several needles: (nerve, pain killed per sample, block per sample) of each target
    territory: Territory | None = None  # the first target's (its disease course ends relief too)
    stimulation: dict | None = None  # the stimulation test's spread (planning.stimulate.cohort_stimulation)
    could_change: np.ndarray | None = None  # inexact samples whose block verdict flips within the verdict band
    lesion_poses: tuple = ()  # several needles: every needle's pose per sample (``poses`` holds the first needle's)

    def to_dict(self) -> dict:
        n = len(self.pain_block)
        p = float(self.pain_block.mean())
        out = {
            "samples": n,
            "seed": self.seed,
            "placement": None if self.spread is None else self.spread.as_dict(),
            "p_block": round(p, 4),
            "p_block_95ci": [round(v, 4) for v in wilson_interval(int(self.pain_block.sum()), n)],
            "relief_months": None,
            "p_motor_deficit": round(float(self.motor_deficit.mean()), 4),
            "critical": [{"name": name, "p_injury": round(float(self.injured[:, k].mean()), 4)} for k, name in enumerate(self.structures)],
            "pain_fibres_killed_fraction": _spread_dict(self.pain_killed),
            "inexact_fraction": round(float(self.inexact.mean()), 4),
            "could_change_fraction": None if self.could_change is None else round(float(self.could_change.mean()), 4),
            "property_spread": None if self.properties is None else self.properties.as_dict(),
            "anchors": self.anchors,
            "verification": {
                "full_solves": len(self.checks),
                "pain_killed_abs_error_max": round(max((c[0] for c in self.checks), default=0.0), 4),
                "block_agreement": round(float(np.mean([c[1] for c in self.checks])), 4) if self.checks else None,
                "injury_agreement": round(float(np.mean([c[2] for c in self.checks])), 4) if self.checks else None,
                "note": "the first full_solves samples were solved in full (their results are used) and compared with the shortcut's reading of them",
            },
            "bone_contact_fraction": round(float(self.bone_contact.mean()), 4) if self.bone_contact is not None else 0.0,
            "targets": [{"nerve": name, "p_block": round(float(b.mean()), 4), "pain_fibres_killed_fraction": _spread_dict(killed)} for name, killed, b in self.targets] or None,
            "method": self.note,
            "wall_time_s": self.wall_time_s,
        }
        if self.relief_months is not None:
            out["relief_months"] = _spread_dict(self.relief_months) | {"mean": round(float(self.relief_months.mean()), 3)}
            out["relieved_share_at_months"] = {f"{m:g}": round(float(np.mean(self.relief_months >= m)), 4) for m in RELIEVED_AT_MONTHS}
            out |= self._course()
        if self.stimulation is not None:
            out["stimulation"] = self.stimulation
        return out

    def _course(self) -> dict:
        """Cancer: what ends each blocked sample's relief (one disease-course draw per sample)."""
        blocked = self.relief_months[self.pain_block]
        ends = None if self.territory is None or not blocked.size else relief_ends(blocked * days_per_month(), self.territory, self.seed)
        if ends is None:
            return {}
        lived = ends.min(axis=0) / days_per_month()
        return {"relief_end_shares": end_shares(np.argmin(ends, axis=0)), "relief_lived_months": _spread_dict(lived) | {"note": "blocked samples only"}}


def _spread_dict(values: np.ndarray) -> dict:
    p10, med, p90 = np.percentile(values, [10, 50, 90])
    return {"median": round(float(med), 3), "p10": round(float(p10), 3), "p90": round(float(p90), 3)}


def wilson_interval(successes: int, n: int, z: float = Z975) -> tuple[float, float]:
    """Wilson score interval of a proportion (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def moved_frame(planned: NeedleFrame, pose0: NeedlePose, pose: NeedlePose) -> NeedleFrame:
    """The planned frame carried by the rigid motion that takes ``pose0`` to ``pose``."""
    q = rotation_between(pose0.direction, pose.direction)
    return NeedleFrame(pose.tip_m.copy(), q @ planned.rotation)


RISK_POINT_LIMIT = int(load_catalog("risk")["spacing_max_points"])
"""The risk grid's point limit (data/risk.toml); a wider cohort box is sampled with half as many points."""


def placement_cohort(ctx: Context, physics: PhysicsResult, target, critical, samples: int, seed: int, spread: PlacementSpread,
                     needle_length_m: float | None = None, full_solve: Callable | None = None, full_solves: int = 0,
                     property_solve: Callable | None = None, properties: PropertySpread | None = None,
                     anchor_solve: Callable | None = None, anchors: int = 0, solved: SolvedFields | None = None) -> Cohort:  # fmt: skip
    """The outcome of ``samples`` needle poses drawn with ``spread`` around ``ctx.pose``.

    ``solved``: ``physics`` already tabulated, solved at ``solved.pose`` (which may differ from
    ``ctx.pose``: a search moving the needle reads a nearby solve, and every sample is moved from there).

    ``target``/``critical`` are the planned outcome (used as they are for methods without a
    needle frame: surgery, the block). With ``needle_length_m`` (the active length checked
    against bone), a pose whose tip lands in bone is drawn back along its shaft to the bone's
    surface, as the operator would stop on bone (``bone_contact`` samples). The first
    ``full_solves`` samples are solved in full with ``full_solve(pose) -> (target, critical)``
    instead of the shortcut, and their agreement with the shortcut is reported
    (``verification``). With ``properties`` (a tissue-property spread) and
    ``property_solve(factors) -> PhysicsResult``, the fields are solved at each stratum of the
    spread and every sample reads the fields of its own stratum. Else, with ``anchors`` and
    ``anchor_solve(pose) -> PhysicsResult``, the samples whose block verdict could change
    (``could_change``: inexact, and flipped by the verdict band) are refined: the fields are
    solved at up to that many anchor poses among them (those nearest the centres of a k-means of
    their needles' active segments) and each of them is moved from the nearest solved pose (both
    ends of the active segment): a shorter rigid move where the tissue is not uniform. No sample
    that could change, no anchor solved."""
    started = time.perf_counter()
    method = ctx.plan.procedure.method
    names = tuple(s.name for s in ctx.scene.critical)
    if not physics.moves_with_needle:
        note = f"{method}: placement spread does not apply (its result does not move with the needle: surgery sees the nerve; the block model does not depend on the needle-to-nerve distance); every sample is the planned outcome"
        ones = np.ones(samples, bool)
        relief = None if target.relief.median is None else np.full(samples, target.relief.median if target.pain_block else 0.0)
        motor = None if target.motor_fibres_killed_fraction is None else np.full(samples, target.motor_fibres_killed_fraction)
        injured = np.tile(np.array([r.injured for r in critical], bool), (samples, 1))
        return Cohort((ctx.pose,) * samples, np.full(samples, target.pain_fibres_killed_fraction), motor, ones * target.pain_block,
                      ones * target.motor_deficit, relief, injured, ~ones, None, seed, names, note, time.perf_counter() - started, territory=territory_of(ctx))  # fmt: skip
    limits = load_catalog("uncertainty")["limits"]
    poses = draw_poses(ctx.pose, spread, samples, seed)
    bone_contact = np.zeros(samples, bool)
    if needle_length_m:
        for i, pose in enumerate(poses):
            stopped = against_bone(ctx.scene, pose, needle_length_m)
            if stopped is not None and stopped is not pose:
                poses[i], bone_contact[i] = stopped, True
    # sources of fields: the planned solve; or one per property stratum; or the plan plus anchor poses
    sources, source_of = [(ctx.pose if solved is None else solved.pose, physics)], np.zeros(samples, int)
    if properties is not None and property_solve is not None:
        sources = [(ctx.pose, property_solve(f)) for f in properties.factors]
        source_of = np.random.default_rng([int(seed), 4]).permutation(np.arange(samples) % len(sources))
    frames, readers, tables_of, bands = [None] * samples, {}, {}, {}
    inexact, could_change = np.zeros(samples, bool), np.zeros(samples, bool)
    pain, motor, block, deficit, relief = (np.empty(samples) for _ in range(5))
    injured = np.zeros((samples, len(names)), bool)
    band_m, threshold = float(limits["verdict_band_mm"]) * 1e-3, float(limits["inexact_tissue_fraction"])

    def read(which: np.ndarray) -> None:
        """Read samples ``which`` from their sources: frames, the nerve and the structures, the inexact flag and the verdict band."""
        count = 0
        for k in np.unique(source_of[which]):
            pose_k, physics_k = sources[k]
            if k not in tables_of:
                tables_of[k] = solved if k == 0 and solved is not None else SolvedFields.of(physics_k, pose_k)
                displacement = max((float(np.linalg.norm(poses[i].tip_m - pose_k.tip_m)) for i in np.flatnonzero(source_of == k)), default=0.0)
                readers[k] = (_NerveCohort(ctx, [tables_of[k].lethal], seed, samples, territory_of(ctx)), _risk_reader(ctx, tables_of[k], displacement, kept=solved is not None))
            mine = which[source_of[which] == k]
            for i in mine:
                frames[i] = moved_frame(tables_of[k].frame, pose_k, poses[i])
            inexact[mine] = _inexact(ctx, tables_of[k].frame, [frames[i] for i in mine], tables_of[k].lethal, threshold)
            nerve = readers[k][0]
            banded = nerve.relief_modelled and tables_of[k].lethal is not None
            if banded and k not in bands:
                shrunk, grown = _verdict_band(tables_of[k].lethal, band_m)
                bands[k] = (shrunk, nerve.through([grown]))
            for i in mine:
                pain[i], motor[i], block[i], deficit[i], relief[i] = nerve.sample([frames[i]], i, [bands[k][0]] if banded and inexact[i] else None)
                injured[i] = readers[k][1].sample([frames[i]])
                if banded and inexact[i]:  # blocked: does the shrunk region still block? not blocked: does the grown one?
                    could_change[i] = not nerve.blocks(nerve.last_shrunk_pain) if block[i] else bands[k][1].blocks_at([frames[i]])
                else:
                    could_change[i] = False
                count += 1
                if ctx.progress is not None and len(which) == samples:
                    ctx.progress(count / samples)

    read(np.arange(samples))
    if anchors and anchor_solve is not None and properties is None and could_change.any():
        # refine where the answer could change: anchor poses among those samples, each of them moved from the nearest solved pose
        reach = needle_length_m or physics.active_length_m or 10e-3
        unsure = np.flatnonzero(could_change)
        features = _needle_features(poses, reach)
        chosen = unsure[_anchor_poses(features[unsure], anchors, seed)]
        sources += [(poses[i], anchor_solve(poses[i])) for i in chosen]
        solved_at = _needle_features([pose for pose, _ in sources], reach)
        source_of[unsure] = np.argmin(np.linalg.norm(features[unsure, None, :] - solved_at[None, :, :], axis=2), axis=1)
        read(unsure)
    checks = []
    for i in range(min(full_solves, samples) if full_solve is not None else 0):
        full, full_critical = full_solve(poses[i])
        checks.append((abs(full.pain_fibres_killed_fraction - pain[i]), full.pain_block == bool(block[i]), [r.injured for r in full_critical] == list(injured[i])))
        pain[i], block[i], deficit[i] = full.pain_fibres_killed_fraction, full.pain_block, full.motor_deficit
        motor[i] = full.motor_fibres_killed_fraction or 0.0
        relief[i] = float(full.relief.median or 0.0) if full.pain_block else 0.0  # the full solve's own relief median
        injured[i] = [r.injured for r in full_critical]
    note = ("rigid move of the fields solved once at the planned pose (exact in homogeneous tissue; samples whose lesion overlies other "
            "tissues are counted in inexact_fraction; a tip landing in bone is drawn back to its surface, bone_contact_fraction); one regrowth draw per sample; failed blocks count as zero relief")  # fmt: skip
    nerve = readers[min(readers)][0]
    return Cohort(tuple(poses), pain, motor if nerve.has_motor else None, block.astype(bool), deficit.astype(bool),
                  relief if nerve.relief_modelled else None, injured, inexact, spread, seed, names, note, time.perf_counter() - started,
                  bone_contact, tuple(checks), properties if properties is not None and property_solve is not None else None,
                  len(sources) - 1 if properties is None or property_solve is None else 0, territory=nerve.territory, could_change=could_change)  # fmt: skip


def _risk_reader(ctx: Context, tables: SolvedFields, displacement: float, kept: bool) -> _RiskCohort:
    """The critical structures' reader of ``tables`` for needles moved up to ``displacement`` (m).
    ``kept`` (tables read again by a search): one built before for as large a displacement, or a
    new one for the displacement rounded up to READER_STEP_M (so that the next candidates reuse it)."""
    if not kept:
        return _RiskCohort(ctx, [tables.fields], [tables.frame], displacement)
    reach = min((d for d in tables.risk_readers if d >= displacement), default=None)
    if reach is None:
        reach = math.ceil(displacement / READER_STEP_M) * READER_STEP_M
        tables.risk_readers[reach] = _RiskCohort(ctx, [tables.fields], [tables.frame], reach)
    return tables.risk_readers[reach]


READER_STEP_M = 5e-3
"""A kept risk reader covers needle displacements up to the next multiple of this (m)."""


def _verdict_band(lethal: FieldGrid, band_m: float) -> tuple[np.ndarray, FieldGrid]:
    """(shrunk, grown): the lethal region shrunk by ``band_m`` (values on ``lethal``'s own nodes)
    and grown by it (a grid like ``lethal``), by Euclidean distance transforms of the grid. Where
    the tissue under a moved lesion differs from the plan's, the rigid move places the lesion's
    edge only to within the verdict band; a verdict that holds across it cannot be changed by the
    shortcut's error."""
    inside = lethal.values["lethal"].reshape(lethal.shape)
    edge = band_m + 0.5 * lethal.spacing  # node distances are to the nearest node across the edge, which lies half a node from it
    shrunk = (distance_transform_edt(inside, sampling=lethal.spacing) > edge).ravel()
    grown = copy.copy(lethal)
    grown.values = dict(lethal.values) | {"lethal": (distance_transform_edt(~inside, sampling=lethal.spacing) <= edge).ravel()}
    return shrunk, grown


def _needle_features(poses, length_m: float) -> np.ndarray:
    """Each pose as (tip, end of the active length) (m, 6 numbers): two poses are close when
    both ends of their active tips are (a tilt moves the far end)."""
    return np.array([np.concatenate([p.tip_m, p.tip_m - length_m * p.direction]) for p in poses])


def _anchor_poses(features: np.ndarray, anchors: int, seed: int) -> list[int]:
    """Indices of the samples nearest the centres of a seeded k-means of the needle features."""
    centres, _ = kmeans2(features, min(anchors, len(features)), seed=np.random.default_rng([int(seed), 6]), minit="++")
    return sorted({int(np.argmin(np.linalg.norm(features - c, axis=1))) for c in centres})


class _NerveCohort:
    """One nerve's axons, read through each sample's frames from the lethal grids (one per lesion:
    an axon dies where any lesion's moved lethal region reaches it)."""

    def __init__(self, ctx: Context, lethal: list[FieldGrid | None], seed: int, samples: int, territory: Territory, nerve=None):
        cat = model_parameters()
        sim = ctx.plan.simulation
        self.nerve = nerve or ctx.nerve
        self.lethal = lethal
        pop = axon_population(self.nerve, sim.n_axons, sim.seed)
        self.frame = nerve_frame(self.nerve.centerline_m, cat["population"]["default_step_mm"] * 1e-3)
        self.paths = self.frame.offset_points(pop.x_m, pop.y_m)
        roles = pop.role
        self.pain, self.motor = roles == "pain", roles == "motor"
        self.has_motor = any(f.role == "motor" and f.fraction > 0 for f in self.nerve.fibres)
        self.f_block = float(cat["block"]["pain_block_fraction"])
        self.motor_threshold = float(cat["block"]["motor_deficit_fraction"])
        self.grade = method_grade(ctx.plan.procedure.method)
        self.relief_modelled = self.grade != 0
        self.vigour = axon_growth_factors(sim.n_axons, sim.seed)
        self.draws = recovery_draws(seed, samples) if self.relief_modelled else None
        self.territory = territory
        self.seed = sim.seed
        self.near = [None if grid is None else self._near(grid) for grid in lethal]

    def through(self, lethal: list[FieldGrid | None]) -> _NerveCohort:
        """The same nerve, axons and draws read through other lethal grids (the verdict band's grown ones)."""
        other = copy.copy(self)
        other.lethal, other.near = lethal, [None if grid is None else self._near(grid) for grid in lethal]
        return other

    def blocks_at(self, frames: list[NeedleFrame]) -> bool:
        """Does the lethal region (one grid per lesion) block at this sample's frames?"""
        return self.blocks(self.pain_fraction(self.hits(frames)[1]))

    def _near(self, lethal: FieldGrid) -> np.ndarray:
        """Nodes within a nerve radius of the lethal region: rows of the centreline there can kill."""
        r = int(math.ceil(self.nerve.radius_m / lethal.spacing)) + 1
        offsets = np.arange(-r, r + 1) ** 2
        ball = (offsets[:, None, None] + offsets[None, :, None] + offsets[None, None, :]) <= r * r
        return binary_dilation(lethal.values["lethal"].reshape(lethal.shape), structure=ball).ravel()

    def hits(self, frames: list[NeedleFrame], shrunk: list | None = None):
        """(axon paths or None, killed, killed by ``shrunk`` or None) over the nerve's rows that some
        lesion can reach. ``shrunk``: per lesion, lethal values on the same grid inside its lethal
        region (the verdict band's shrunk region: read at the same nodes, so at no extra index cost)."""
        n = self.paths.shape[1]
        reach = [None if grid is None else self.near[k][grid.index(frames[k], self.frame.points_m)] for k, grid in enumerate(self.lethal)]
        rows = np.flatnonzero(np.any([r for r in reach if r is not None], axis=0)) if any(r is not None for r in reach) else np.zeros(0, int)
        if not rows.size:
            return None, np.zeros(n, bool), None if shrunk is None else np.zeros(n, bool)
        hit, inner = np.zeros((rows.size, n), bool), np.zeros((rows.size, n), bool)
        scar, known = np.zeros((rows.size, n), bool), False
        for k, grid in enumerate(self.lethal):
            if grid is None or not reach[k][rows].any():
                continue
            flat = grid.index(frames[k], self.paths[rows].reshape(-1, 3))
            hit |= grid.values["lethal"][flat].reshape(rows.size, n)
            if shrunk is not None:
                inner |= shrunk[k][flat].reshape(rows.size, n)
            if grid.values["scar_known"]:
                known = True
                scar |= grid.values["tubes_destroyed"][flat].reshape(rows.size, n)
        f = self.frame
        paths = axon_paths(hit, scar if known else None, f.s_m, f.ds_m, f.length_m, self.nerve.end_organ_m, self.grade, rows)
        inner_killed = None if shrunk is None else axon_paths(inner, scar & inner if known else None, f.s_m, f.ds_m, f.length_m, self.nerve.end_organ_m, self.grade, rows).killed
        return paths, paths.killed, inner_killed

    def pain_fraction(self, killed: np.ndarray) -> float:
        """Share of the nerve's pain axons among ``killed`` (0 for a nerve without pain axons)."""
        return float(killed[self.pain].mean()) if self.pain.any() else 0.0

    def blocks(self, pain_killed: float) -> bool:
        """Is pain conduction blocked when this share of the pain axons is killed?"""
        return bool(self.relief_modelled and self.pain.any() and pain_killed >= self.f_block - 1e-12)

    def sample(self, frames: list[NeedleFrame], i: int, shrunk: list | None = None) -> tuple[float, float, float, float, float]:
        """(pain killed, motor killed, block, motor deficit, relief months) of one sample; with
        ``shrunk`` (see ``hits``) the pain killed by the shrunk region is kept in ``last_shrunk_pain``."""
        paths, killed, inner = self.hits(frames, shrunk)
        self.last_shrunk_pain = None if inner is None else self.pain_fraction(inner)
        pain = self.pain_fraction(killed)
        motor = float(killed[self.motor].mean()) if self.motor.any() else 0.0
        block = self.blocks(pain)
        relief = 0.0
        self.last_pain_paths = None
        if block:
            self.last_pain_paths = killed_paths(paths, self.pain, self.vigour)
            days = relief_days(self.last_pain_paths, int(self.pain.sum()), self.draws.one(i), self.territory, seed=self.seed)
            relief = float(days[0]) / days_per_month()
        deficit = self.has_motor and motor >= self.motor_threshold
        return pain, motor, float(block), float(deficit), relief


class _RiskCohort:
    """Each critical structure's points, read through each sample's frames from the field grids (one
    per lesion, combined as lesions made in turn: peak the highest, Omega and CEM43 summed, agent the
    highest). Points that no sample can bring into the disturbed part of the fields are dropped (they
    stay at body temperature with no dose)."""

    def __init__(self, ctx: Context, fields: list[FieldGrid], frames0: list[NeedleFrame], displacement: float):
        self.fields = fields
        self.kinds = [s.kind for s in ctx.scene.critical]
        self.solute = solute_of(ctx.settings)
        self.points = [np.zeros((0, 3))] * len(self.kinds)
        centres, reaches = [], []
        for grid, frame0 in zip(fields, frames0, strict=True):
            disturbed = np.zeros(len(grid.values["lethal"]), bool)
            for name, table in grid.values.items():
                disturbed |= table > (BODY_TEMP_C + 0.05 if name == "peak_temp_c" else 1e-9)
            if disturbed.any():
                local = grid.node_local(np.flatnonzero(disturbed))
                centres.append(frame0.to_world(0.5 * (local.min(axis=0) + local.max(axis=0)))[0])
                reaches.append(0.5 * float(np.linalg.norm(local.max(axis=0) - local.min(axis=0))) + displacement + grid.spacing)
        if not centres:
            return
        spacing = min(g.spacing for g in fields)
        lo, hi = (np.asarray(b, float) for b in ctx.scene.bounds_m)
        blocks = [[] for _ in self.kinds]
        self.lumen_mm = [None] * len(self.kinds)
        for centre, reach in zip(centres, reaches, strict=True):  # a box per lesion: needles far apart need no box around them all
            box_lo, box_hi = np.maximum(centre - reach, lo), np.minimum(centre + reach, hi)
            # a region too wide for the risk grid's point limit (a scan's, not cut by a template's bounds) is sampled coarser
            wide = np.prod(np.floor((box_hi - box_lo) / spacing) + 1) > RISK_POINT_LIMIT
            step = float(np.prod(box_hi - box_lo) / (0.5 * RISK_POINT_LIMIT)) ** (1 / 3) if wide else spacing
            where = structure_points(ctx.scene, box_lo, box_hi, step)
            for k, idx in enumerate(where.index):
                blocks[k].append(where.points[idx][np.linalg.norm(where.points[idx] - centre, axis=1) <= reach])
                if where.lumen_diameter_mm and self.lumen_mm[k] is None:
                    self.lumen_mm[k] = where.lumen_diameter_mm[k]
        self.points = [np.concatenate(b) if b else np.zeros((0, 3)) for b in blocks]

    def sample(self, frames: list[NeedleFrame]) -> np.ndarray:
        out = np.zeros(len(self.points), bool)
        for k, pts in enumerate(self.points):
            if not len(pts):
                continue
            reads = [(grid, grid.index(frame, pts)) for grid, frame in zip(self.fields, frames, strict=True)]
            per_point = {
                "peak_temp_c": np.max([g.values["peak_temp_c"][f] for g, f in reads], axis=0),
                "omega": np.sum([g.values["omega"][f] for g, f in reads], axis=0),
                "cem43_min": np.sum([g.values["cem43_min"][f] for g, f in reads], axis=0),
                "agent_fraction": np.max([g.values["agent_fraction"][f] for g, f in reads], axis=0),
                "agent_mmol_l": np.max([g.values["agent_mmol_l"][f] for g, f in reads], axis=0),
            }
            values = {name: float(v.max()) for name, v in per_point.items()} | {"agent_solute": self.solute}
            if self.lumen_mm[k] is not None:
                values["lumen_diameter_mm"] = self.lumen_mm[k]
            lethal_any = bool(np.any([g.values["lethal"][f].max() > 0.5 for g, f in reads])) or bool(per_point["omega"].max() >= 1.0 and len(reads) > 1)
            out[k] = injury_verdict(self.kinds[k], lethal_any, values)[0]
        return out


def _inexact(ctx: Context, frame0: NeedleFrame, frames, lethal: FieldGrid | None, threshold: float) -> np.ndarray:
    """Per sample: does the tissue under the moved lethal region differ from the planned one
    at more than ``threshold`` of its points (up to 2000 points of the region)?"""
    if lethal is None:
        return np.zeros(len(frames), bool)
    nodes = np.flatnonzero(lethal.values["lethal"])
    local = lethal.node_local(nodes[np.random.default_rng(0).permutation(len(nodes))[:2000]])
    planned = tissue_at(ctx.scene, frame0.to_world(local), "muscle")
    if not len(frames):
        return np.zeros(0, bool)
    moved = tissue_at(ctx.scene, np.concatenate([f.to_world(local) for f in frames]), "muscle").reshape(len(frames), len(local))  # one lookup for every sample
    return np.mean(moved != planned, axis=1) > threshold
