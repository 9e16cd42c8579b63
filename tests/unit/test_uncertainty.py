"""Placement Monte Carlo: the rigid-move reading against exact moved fields, reproducibility,
the spread drawn as specified, and bad [uncertainty] input refused in one line."""

import json
from dataclasses import replace

import numpy as np
import pytest

from neurolysis import load_plan, new_plan, plan_toml, prepare
from neurolysis.cli import main
from neurolysis.engines.poses import pose_frame
from neurolysis.fields import BODY_TEMP_C, FieldSample, NeedlePose
from neurolysis.methods.base import PhysicsResult
from neurolysis.outcome.assess import assess, territory_of
from neurolysis.outcome.axons import nerve_outcome
from neurolysis.outcome.field_tables import SolvedFields
from neurolysis.outcome.lesion_cohort import lesions_cohort
from neurolysis.outcome.spread import draw_poses, placement_spread
from neurolysis.outcome.uncertainty import _NerveCohort, _verdict_band, moved_frame, placement_cohort, wilson_interval
from neurolysis.validation import ValidationError
from tests.plans import one_needle_plan

RADIUS_M = 3e-3


def _sphere_physics(pose, radius_m: float = RADIUS_M) -> PhysicsResult:
    """An analytic 'lesion': a lethal sphere (3 mm) around the point 2 mm behind the tip,
    peak temperature falling off linearly from 90 C (a stand-in for an engine's fields)."""
    centre = pose.tip_m - 2e-3 * pose.direction

    def sample(points_m):
        r = np.linalg.norm(np.asarray(points_m, float).reshape(-1, 3) - centre, axis=1)
        peak = np.maximum(BODY_TEMP_C, 90.0 - 6e3 * r)
        return FieldSample(peak, np.where(r <= radius_m, 2.0, 0.0), np.zeros(len(r)), r <= radius_m)

    return PhysicsResult(sample, {}, {}, (), 10e-3, "sphere", risk_margin_m=12e-3, risk_spacing_m=0.5e-3)


@pytest.fixture(scope="module")
def lumbar(tmp_path_factory):
    path = tmp_path_factory.mktemp("mc") / "plan.toml"
    path.write_text(plan_toml(new_plan("lumbar-medial-branch")))
    ctx = prepare(load_plan(path, ["uncertainty.samples=40"]))
    physics = _sphere_physics(ctx.pose)
    return ctx, physics, assess(ctx, physics)


def test_rigid_move_reading_matches_exact_moved_fields(lumbar):
    """Each sample's killed fraction equals the nerve outcome of the exactly moved sphere
    (to the grid: 0.2 mm nearest-node reading of the lethal region)."""
    ctx, physics, found = lumbar
    spread = placement_spread(ctx.nerve.name, offset_sd_mm=1.5, angle_sd_deg=10.0)
    cohort = placement_cohort(ctx, physics, found.target, found.critical, 40, 7, spread)
    frame0 = pose_frame([ctx.pose])
    errors = []
    for i in range(0, 40, 4):
        moved = moved_frame(frame0, ctx.pose, cohort.poses[i])
        exact = nerve_outcome(ctx.nerve, lambda p, m=moved: physics.sample(frame0.to_world(m.to_local(p))), "rf", seed=0)
        errors.append(abs(exact.pain_fibres_killed_fraction - cohort.pain_killed[i]))
    assert max(errors) <= 0.05, errors
    assert cohort.pain_killed.min() < cohort.pain_killed.max()  # the spread moves the lesion on and off the nerve


def test_zero_spread_reproduces_the_planned_outcome(lumbar):
    ctx, physics, found = lumbar
    spread = placement_spread(ctx.nerve.name, offset_sd_mm=0.0, angle_sd_deg=0.0, gross_miss_fraction=0.0)
    cohort = placement_cohort(ctx, physics, found.target, found.critical, 5, 0, spread)
    assert np.allclose(cohort.pain_killed, found.target.pain_fibres_killed_fraction, atol=0.02)
    assert np.all(cohort.pain_block == found.target.pain_block)
    assert np.all(cohort.injured == np.array([r.injured for r in found.critical]))


def test_same_seed_same_numbers_and_another_seed_differs(lumbar):
    ctx, physics, found = lumbar
    spread = placement_spread(ctx.nerve.name)
    a = placement_cohort(ctx, physics, found.target, found.critical, 30, 3, spread).to_dict()
    b = placement_cohort(ctx, physics, found.target, found.critical, 30, 3, spread).to_dict()
    c = placement_cohort(ctx, physics, found.target, found.critical, 30, 4, spread).to_dict()
    strip = lambda d: {k: v for k, v in d.items() if k != "wall_time_s"}
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_poses_follow_the_specified_spread(lumbar):
    ctx = lumbar[0]
    spread = placement_spread(ctx.nerve.name, offset_sd_mm=[1.0, 2.0, 0.5], angle_sd_deg=6.0, gross_miss_fraction=0.0)
    poses = draw_poses(ctx.pose, spread, 4000, 1)
    offsets = np.array([p.tip_m - ctx.pose.tip_m for p in poses]) * 1e3
    assert np.allclose(offsets.std(axis=0), [1.0, 2.0, 0.5], rtol=0.05)
    tilt = np.degrees(np.arccos(np.clip([p.direction @ ctx.pose.direction for p in poses], -1, 1)))
    assert np.sqrt(np.mean(tilt**2)) == pytest.approx(6.0 * np.sqrt(2), rel=0.05)  # 2D Gaussian: rms = sd sqrt(2)
    gross = placement_spread(ctx.nerve.name, offset_sd_mm=0.0, angle_sd_deg=0.0, gross_miss_fraction=0.25)
    far = np.array([np.linalg.norm(p.tip_m - ctx.pose.tip_m) for p in draw_poses(ctx.pose, gross, 4000, 2)]) * 1e3
    assert np.mean(far > 0) == pytest.approx(0.25, abs=0.03)
    assert far[far > 0].min() >= 3.0 and far.max() <= 10.0


def test_operator_preset_scales_the_published_spread():
    experienced = placement_spread("superomedial genicular nerve")
    trainee = placement_spread("superomedial genicular nerve", "in-training")
    assert experienced.offset_sd_m[0] == pytest.approx(2.74e-3)
    assert trainee.offset_sd_m[0] == pytest.approx(1.5 * 2.74e-3)
    assert trainee.gross_miss_fraction == pytest.approx(2 * experienced.gross_miss_fraction)
    assert "UNVERIFIED" in trainee.sources["operator"]


def test_wilson_interval():
    lo, hi = wilson_interval(92, 100)
    assert lo == pytest.approx(0.8500, abs=1e-3) and hi == pytest.approx(0.9589, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("uncertainty.samples=0", "uncertainty.samples = 0: allowed range is [1, 100000]"),
        ("uncertainty.samples=10000000", "uncertainty.samples = 10000000: allowed range is [1, 100000]"),
        ("uncertainty.offset_sd_mm=-1", "uncertainty.offset_sd_mm = -1 mm: allowed range is [0, 20] mm"),
        ("uncertainty.angle_sd_deg=nan", "uncertainty.angle_sd_deg = nan: must be a finite number"),
        ("uncertainty.operator=\"novice\"", "uncertainty.operator = 'novice': allowed values are 'experienced', 'in-training'"),
        ("uncertainty.gross_miss_fraction=1.5", "uncertainty.gross_miss_fraction = 1.5: allowed range is [0, 1]"),
        ("uncertainty.samples=2.5", "uncertainty.samples = 2.5: must be a whole number in [1, 100000]"),
    ],
)
def test_bad_uncertainty_input_is_one_line_exit_2(tmp_path, capsys, override, message):
    path = tmp_path / "plan.toml"
    path.write_text(plan_toml(one_needle_plan("genicular", "surgical")))
    assert main(["simulate", str(path), "--check", "--set", override]) == 2
    err = capsys.readouterr().err
    assert err == f"neurolysis: error: {message}\n"
    with pytest.raises(ValidationError):
        load_plan(path, [override])


def test_monte_carlo_option_adds_the_uncertainty_section(tmp_path, capsys):
    """Surgery has no placement spread: every sample is the planned outcome, and it says so."""
    path = tmp_path / "plan.toml"
    path.write_text(plan_toml(one_needle_plan("genicular", "surgical")))
    assert main(["simulate", str(path), "--json", "--quiet", "--monte-carlo", "20"]) == 0
    d = json.loads(capsys.readouterr().out)
    u = d["uncertainty"]
    assert set(u) >= {"samples", "seed", "p_block", "p_block_95ci", "relief_months", "p_motor_deficit", "critical", "inexact_fraction", "method"}
    assert u["samples"] == 20 and u["p_block"] == float(d["target"]["pain_block"])
    assert set(u["relief_months"]) == {"median", "p10", "p90", "mean"}
    assert [c["name"] for c in u["critical"]] == [c["name"] for c in d["critical"]]
    assert "does not apply" in u["method"]


def test_full_solves_replace_and_check_the_shortcut(lumbar):
    """Samples solved in full use the full result and report their agreement with the shortcut
    (here the 'full solve' is the analytic sphere at the sample's pose: exact)."""
    from dataclasses import replace

    ctx, physics, found = lumbar

    def full_solve(pose):
        at = replace(ctx, pose=pose)
        done = assess(at, _sphere_physics(pose))
        return done.target, done.critical

    spread = placement_spread(ctx.nerve.name, offset_sd_mm=1.5, angle_sd_deg=10.0)
    cohort = placement_cohort(ctx, physics, found.target, found.critical, 12, 5, spread, None, full_solve, 4)
    v = cohort.to_dict()["verification"]
    assert v["full_solves"] == 4
    assert v["pain_killed_abs_error_max"] <= 0.05 and v["block_agreement"] == 1.0


def test_property_spread_solves_each_stratum_and_moves_the_outcome(lumbar):
    """Each stratum's factors come from stratified log-normal quantiles and are solved once;
    a larger "conductivity" makes the analytic sphere larger (radius x factor^4), so strata differ in killed fraction."""
    from neurolysis.outcome.spread import PropertySpread

    ctx, physics, found = lumbar
    solved = []

    def property_solve(factors):
        solved.append(factors)
        grow = factors["electrical_conductivity_s_m"]
        base = _sphere_physics(ctx.pose)
        return PhysicsResult(lambda p: base.sample(ctx.pose.tip_m + (np.asarray(p) - ctx.pose.tip_m) / grow**4), {}, {}, (), 10e-3, "sphere",
                             risk_margin_m=12e-3, risk_spacing_m=0.5e-3)  # fmt: skip

    spread = PropertySpread(0.5, 0.3, 4, 0)
    factors = sorted(f["electrical_conductivity_s_m"] for f in spread.factors)
    assert factors == pytest.approx(np.exp(0.5 * np.array([-1.1503, -0.3186, 0.3186, 1.1503])), rel=1e-3)
    still = placement_spread(ctx.nerve.name, offset_sd_mm=0.0, angle_sd_deg=0.0, gross_miss_fraction=0.0)
    cohort = placement_cohort(ctx, physics, found.target, found.critical, 40, 0, still, None, None, 0, property_solve, spread)
    assert len(solved) == 4
    assert cohort.to_dict()["property_spread"]["strata"] == 4
    assert len(set(np.round(cohort.pain_killed, 3))) > 1  # the strata give different lesions at the same pose


def test_anchor_poses_are_solved_and_each_sample_reads_the_nearest(lumbar):
    """With anchors, samples move from the nearest solved pose: with an exact 'solver' (the
    analytic sphere at the pose) every sample still matches its exactly moved field."""
    ctx, physics, found = lumbar
    solved = []

    def anchor_solve(pose):
        solved.append(pose)
        return _sphere_physics(pose)

    spread = placement_spread(ctx.nerve.name, offset_sd_mm=2.0, angle_sd_deg=8.0)
    cohort = placement_cohort(ctx, physics, found.target, found.critical, 24, 3, spread, None, None, 0, None, None, anchor_solve, 4)
    assert 1 <= len(solved) <= 4 and cohort.to_dict()["anchors"] == len(solved)
    frame0 = pose_frame([ctx.pose])
    errors = []
    for i in range(24):
        moved = moved_frame(frame0, ctx.pose, cohort.poses[i])
        exact = nerve_outcome(ctx.nerve, lambda p, m=moved: physics.sample(frame0.to_world(m.to_local(p))), "rf", seed=0)
        errors.append(abs(exact.pain_fibres_killed_fraction - cohort.pain_killed[i]))
    assert np.mean(errors) <= 0.02 and max(errors) <= 0.15, errors  # nearest node of a 0.2 mm grid: an edge slicing the nerve is placed within ~0.17 mm
    solved.clear()  # no spread: no sample is inexact, none could change, so no anchor is solved (refinement only where the answer could change)
    still = placement_spread(ctx.nerve.name, offset_sd_mm=0.0, angle_sd_deg=0.0, gross_miss_fraction=0.0)
    quiet = placement_cohort(ctx, physics, found.target, found.critical, 8, 3, still, None, None, 0, None, None, anchor_solve, 4)
    assert not solved and quiet.to_dict()["anchors"] == 0 and not quiet.could_change.any()


def test_a_cohort_read_from_a_solve_at_another_pose_matches_the_moved_lesion(lumbar):
    """``solved``: fields solved at the plan's pose, read for a needle placed elsewhere (the
    search's moved readings), give the outcome of the lesion solved at the new pose (the sphere
    moves with the needle: exact to the grid), and not the plan's own."""
    ctx, physics, found = lumbar
    still = placement_spread(ctx.nerve.name, offset_sd_mm=0.0, angle_sd_deg=0.0, gross_miss_fraction=0.0)
    tilted = np.array([0.3, -0.2, 0.0]) + ctx.pose.direction
    exacts = []
    for moved in (ctx.pose.shifted([1.5e-3, 0.0, 0.0]), ctx.pose.shifted([2.0e-3, 0.0, 0.0]), NeedlePose(ctx.pose.tip_m + [1.5e-3, 0, 0], tilted / np.linalg.norm(tilted))):
        there = replace(ctx, pose=moved)
        exacts.append(assess(there, _sphere_physics(moved)).target.pain_fibres_killed_fraction)
        read = placement_cohort(there, physics, found.target, found.critical, 3, 0, still, solved=SolvedFields.of(physics, ctx.pose))
        assert np.allclose(read.pain_killed, exacts[-1], atol=0.02), (moved, exacts[-1], read.pain_killed)
    assert found.target.pain_fibres_killed_fraction == 1.0 and min(exacts) < 0.5  # the moves take the lesion partly off the nerve


def test_the_verdict_band_flags_the_samples_a_small_edge_shift_would_flip(lumbar):
    """The verdict band: a sample is flagged when its block verdict flips with the lethal region
    shrunk (a blocked sample) or grown (a sample not blocked) by the band. Sliding the sphere off the nerve (0.1 mm steps): every sample
    whose verdict a shift of the band flips is flagged (growing by the band covers every shift by
    it), and none is flagged more than twice the band from where the verdict flips."""
    ctx, physics, _ = lumbar
    tables = SolvedFields.of(physics, ctx.pose)
    nerve = _NerveCohort(ctx, [tables.lethal], 0, 1, territory_of(ctx))
    steps = np.round(np.arange(0.0, 3.01, 0.1), 2)
    frames = [moved_frame(tables.frame, ctx.pose, ctx.pose.shifted([1e-3 * x, 0.0, 0.0])) for x in steps]
    band_mm = 0.5
    shrunk, grown = _verdict_band(tables.lethal, band_mm * 1e-3)
    wider = _NerveCohort(ctx, [grown], 0, 1, territory_of(ctx))
    blocked, flagged = np.zeros(len(steps), bool), np.zeros(len(steps), bool)
    for i, f in enumerate(frames):
        blocked[i] = bool(nerve.sample([f], 0, [shrunk])[2])
        flagged[i] = nerve.last_shrunk_pain < nerve.f_block if blocked[i] else wider.blocks_at([f])
    assert blocked[0] and not blocked[-1]
    flip_at = steps[np.argmax(~blocked)]
    k = int(round(band_mm / 0.1))
    for i in range(len(steps)):
        if any(blocked[j] != blocked[i] for j in range(max(0, i - k), min(len(steps), i + k + 1))):
            assert flagged[i], (steps[i], flip_at)
        if abs(steps[i] - flip_at) > 2 * band_mm:
            assert not flagged[i], (steps[i], flip_at)


def test_the_verdict_band_of_several_needles_flags_every_target_a_band_could_flip(tmp_path):
    """Three needles at the knee, each lesion an analytic sphere of 3 mm: a sample is flagged only
    when inexact, and every inexact sample where some target's verdict differs with spheres
    0.5 mm smaller (a target blocked at 3 mm) or larger (not blocked) is flagged: the band
    (0.5 mm, data/uncertainty.toml) covers a change of every lesion's edge by that much."""
    path = tmp_path / "knee.toml"
    path.write_text(plan_toml(new_plan("genicular")))
    ctx = prepare(load_plan(path, ["uncertainty.samples=60"]))
    spreads = [placement_spread(part.nerve.name) for part in ctx.lesions]
    cohorts = {r: lesions_cohort(ctx, [_sphere_physics(part.pose, r * 1e-3) for part in ctx.lesions], 60, 3, spreads, None) for r in (2.5, 3.0, 3.5)}
    planned = cohorts[3.0]
    assert planned.could_change is not None
    assert not (planned.could_change & ~planned.inexact).any()
    blocked = {r: np.array([b for _, _, b in c.targets]) for r, c in cohorts.items()}  # (targets, samples)
    flips = ((blocked[3.0] & ~blocked[2.5]) | (~blocked[3.0] & blocked[3.5])).any(axis=0)
    must = flips & planned.inexact
    assert must.any(), "the spread should put some edge across a nerve"
    assert planned.could_change[must].all(), np.flatnonzero(must & ~planned.could_change)
    assert planned.could_change.mean() < 1.0
