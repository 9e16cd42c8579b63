"""The placement cohort of a plan with several needles: every needle misplaced on its own.

Each sample draws a pose for every needle from its own target's published spread (an
independent stream of the same seed), moves each lesion's fields with its needle (the rigid-move
shortcut of :mod:`neurolysis.outcome.uncertainty`, lesion by lesion), and reads every target nerve
and critical structure from the moved lesions together: an axon dies where any moved lethal region
reaches it; a structure's dose combines the lesions as they are made in turn (peak the highest,
Omega and CEM43 summed). The sample's block and relief are the territory's
(:mod:`neurolysis.outcome.territory`): the nerves blocked regrow with their weighted shares, a
treated nerve not blocked conducts its whole share, and the territory is relieved while the
input stays below the plan's relief endpoint's threshold (without a catalogued territory: every
target blocked, the shortest relief of the targets), with one regrowth draw per sample.

The verdict band of one needle applies here too (``could_change``): an inexact sample (some
lesion over other tissue than planned) reads every target through all its lesions' lethal regions
shrunk by the band (a target blocked) or grown by it (a target not blocked); it could change when
some target's verdict flips. The territory's own verdict (relief > 0) is taken to hold when no
target's verdict flips: a change of the killed shares alone within the band is not flagged.

Limits beyond those of one needle: a lethal region made by two lesions only together (neither
reaching Omega = 1 alone) is missed by the nerve reading, which takes each lesion's own lethal
region; no anchor poses, property strata or full re-solves (``[uncertainty]`` refuses them with
several needles).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.engines.poses import against_bone
from neurolysis.methods.base import Context, PhysicsResult
from neurolysis.outcome.assess import territory_of
from neurolysis.outcome.field_tables import SolvedFields
from neurolysis.outcome.spread import PlacementSpread, draw_poses
from neurolysis.outcome.territory import shared_relief_days, shared_territory
from neurolysis.outcome.uncertainty import Cohort, _inexact, _NerveCohort, _RiskCohort, _verdict_band, moved_frame


def lesions_cohort(ctx: Context, parts: Sequence[PhysicsResult], samples: int, seed: int, spreads: Sequence[PlacementSpread], needle_length_m: float | None) -> Cohort:
    """The cohort of ``ctx.lesions`` (each solved as ``parts``) with ``spreads[k]`` for the k-th needle."""
    started = time.perf_counter()
    limits = load_catalog("uncertainty")["limits"]
    names = tuple(s.name for s in ctx.scene.critical)
    poses, frames, fields, lethal, frames0, inexact, contact = [], [], [], [], [], np.zeros(samples, bool), np.zeros(samples, bool)
    for k, (lesion, physics) in enumerate(zip(ctx.lesions, parts, strict=True)):
        drawn = draw_poses(lesion.pose, spreads[k], samples, seed, stream=k)
        if needle_length_m:
            for i, pose in enumerate(drawn):
                stopped = against_bone(ctx.scene, pose, needle_length_m)
                if stopped is not None and stopped is not pose:
                    drawn[i], contact[i] = stopped, True
        tables = SolvedFields.of(physics, lesion.pose)
        moved = [moved_frame(tables.frame, lesion.pose, p) for p in drawn]
        inexact |= _inexact(lesion, tables.frame, moved, tables.lethal, float(limits["inexact_tissue_fraction"]))
        poses.append(drawn)
        frames.append(moved)
        fields.append(tables.fields)
        lethal.append(tables.lethal)
        frames0.append(tables.frame)
    displacement = max(float(np.linalg.norm(p.tip_m - lesion.pose.tip_m)) for drawn, lesion in zip(poses, ctx.lesions, strict=True) for p in drawn)
    nerves = list({lesion.nerve.name: lesion.nerve for lesion in ctx.lesions}.values())
    readers = [_NerveCohort(ctx, lethal, seed, samples, territory_of(ctx, n.name), nerve=n) for n in nerves]
    banded = readers[0].relief_modelled and any(grid is not None for grid in lethal)
    if banded:
        bands = [(None, None) if grid is None else _verdict_band(grid, float(limits["verdict_band_mm"]) * 1e-3) for grid in lethal]
        shrunk = [band[0] for band in bands]
        grown_readers = [reader.through([band[1] for band in bands]) for reader in readers]
    could_change = np.zeros(samples, bool)
    risk = _RiskCohort(ctx, fields, frames0, displacement)
    found = shared_territory(nerves[0].name)
    shares = None if found is None else [found[1].get(n.name) for n in nerves]
    untreated = None if shares is None else 1.0 - sum(s for s in shares if s is not None)
    per = np.zeros((len(nerves), samples, 5))
    block, relief = np.zeros(samples, bool), np.zeros(samples)
    injured = np.zeros((samples, len(names)), bool)
    for i in range(samples):
        moved = [frames[k][i] for k in range(len(ctx.lesions))]
        paths = []
        unsure = banded and inexact[i]
        for j, reader in enumerate(readers):
            per[j, i] = reader.sample(moved, i, shrunk if unsure else None)
            paths.append(reader.last_pain_paths)
            if unsure and not could_change[i]:  # blocked: does the shrunk region still block? not blocked: does the grown one?
                could_change[i] = not reader.blocks(reader.last_shrunk_pain) if per[j, i, 2] else grown_readers[j].blocks_at(moved)
        blocked = per[:, i, 2].astype(bool)
        block[i] = bool(blocked.all())
        if shares is not None and all(s is not None for s in shares) and readers[0].relief_modelled and blocked.any():
            # the territory's input: a nerve not blocked conducts its whole share (module docstring)
            kept = [(p, int(r.pain.sum()), s) for p, r, s, b in zip(paths, readers, shares, blocked, strict=True) if b]
            conducting = sum(s for s, b in zip(shares, blocked, strict=True) if not b)
            days = shared_relief_days([p for p, _, _ in kept], [n for _, n, _ in kept], [s for _, _, s in kept], untreated + conducting, readers[0].territory,
                                      readers[0].draws.one(i), ctx.plan.simulation.seed)[readers[0].territory.endpoint]  # fmt: skip
            relief[i] = float(days[0]) / float(load_catalog("nerve_model")["recovery"]["days_per_month"])
            block[i] = relief[i] > 0
        elif block[i] and readers[0].relief_modelled:
            relief[i] = float(per[:, i, 4].min())
        injured[i] = risk.sample(moved)
        if ctx.progress is not None:
            ctx.progress((i + 1) / samples)
    first = readers[0]
    note = (f"{len(ctx.lesions)} needles, each misplaced on its own (its target's spread) and its lesion's fields moved rigidly with it; an axon dies where any "
            "moved lesion is lethal; block and relief are the territory's (every treated nerve blocked; their weighted regrowth, one draw per sample)")  # fmt: skip
    targets = tuple((n.name, per[j, :, 0].copy(), per[j, :, 2].astype(bool)) for j, n in enumerate(nerves))
    return Cohort(tuple(poses[0]), per[0, :, 0], per[0, :, 1] if first.has_motor else None, block, per[:, :, 3].any(axis=0),
                  relief if first.relief_modelled else None, injured, inexact, spreads[0], seed, names, note, time.perf_counter() - started,
                  contact, targets=targets, territory=first.territory, could_change=could_change if banded else None,
                  lesion_poses=tuple(tuple(drawn) for drawn in poses))  # fmt: skip


__all__ = ["lesions_cohort"]
