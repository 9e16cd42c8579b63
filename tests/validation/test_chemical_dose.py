"""Issue 10 (part 2): the chemical dose response against Taylor 1976 and the clinical ranges.

Roles (``agents.toml [dose_response.roles]``): Taylor's 10 % / 15 s rim CALIBRATES K_f; the spared
core at every exposure is HELD OUT; depth growing with C and t is verification (a monotone law in
monotone transport guarantees it). Clinical cases run the real engine through a plan on a coarse
mesh (``simulation.mesh_refinement=0.7``); numbers at the default mesh are in docs/models/chemical.md.
Criteria fixed before looking: "kills through" = >= 95 % of pain fibres (the method's full-strip
level); "does not kill the whole nerve" = < 95 %.
"""

import tomllib
from functools import cache
from itertools import pairwise

import numpy as np
import pytest

from neurolysis.chemistry import dose_response, topical_exposure
from neurolysis.physics.lesion import volume_above_m3
from neurolysis.planning.plan import apply_overrides, new_plan, plan_from_dict, plan_toml
from neurolysis.planning.simulate import simulate

STRIP = 0.95
EXPOSURES = [(c, t) for c in (10.0, 20.0, 30.0, 50.0) for t in (15.0, 30.0, 60.0)]


# ------------------------------------------------------------------ Taylor 1976, the topical model


def test_taylor_rim_calibration_reproduced_and_converged():
    """Calibration: 10 % for 15 s kills the outermost fibre layer (5 um under the sheath), not deeper than ~1 fibre."""
    run = topical_exposure("ethanol", 10.0, 15.0)
    assert run.at_rim("lethal") == pytest.approx(1.0, rel=1e-6)
    assert 0.0 < run.killed_depth_m() <= 10e-6
    fine = topical_exposure("ethanol", 20.0, 15.0, cells=400)
    assert fine.killed_depth_m() == pytest.approx(topical_exposure("ethanol", 20.0, 15.0).killed_depth_m(), abs=3e-6)


def test_taylor_depth_grows_with_concentration_and_time():
    """Verification (guaranteed by the construction): the killed depth never shrinks with C or t."""
    depth = {(c, t): topical_exposure("ethanol", c, t).killed_depth_m() for c, t in EXPOSURES}
    for c, t in EXPOSURES:
        for c2, t2 in EXPOSURES:
            if c2 >= c and t2 >= t:
                assert depth[(c2, t2)] >= depth[(c, t)] - 1e-9
    assert depth[(20.0, 15.0)] > depth[(10.0, 15.0)] and depth[(10.0, 30.0)] > depth[(10.0, 15.0)]


def test_taylor_core_spared_at_weak_exposures():
    """Rim killed, core spared at 10 % x 15-30 s and 20 % x 15 s (killed area 5 / 35 / 54 %)."""
    for c, t in ((10.0, 15.0), (10.0, 30.0), (20.0, 15.0)):
        f = topical_exposure("ethanol", c, t).killed_area_fraction()
        assert 0.0 < f < 1.0, (c, t, f)


@pytest.mark.xfail(strict=True, reason="validation miss: Taylor 1976 saw a spared core for every exposure in 10-50 % x 15-60 s; the model "
                   "kills the whole 0.2 mm mouse nerve from 10 % x 60 s, 20 % x 30 s and 30 % x 15 s up (core peak 6-29 %, above C_f = 5.07 %). "
                   "The endoneurial apparent diffusivity (phi D / (lambda^2 theta) = 2e-10 m^2/s) fills a 0.2 mm nerve in ~1 min; a spared "
                   "core needs ~3-5x slower transverse transport, a larger nerve or a finite, diluted topical dose (not modelled)")
def test_taylor_core_spared_at_every_exposure():
    for c, t in EXPOSURES:
        f = topical_exposure("ethanol", c, t).killed_area_fraction()
        assert 0.0 < f < 1.0, (c, t, f)


def test_taylor_tubes_only_at_high_exposure():
    """Grade: at Taylor's exposures up to 20 % the killed rim keeps its tubes (grade 2); 50 % x 60 s destroys them."""
    for c, t in ((10.0, 60.0), (20.0, 60.0)):
        assert topical_exposure("ethanol", c, t).killed_depth_m("tubes") == 0.0
    assert topical_exposure("ethanol", 50.0, 60.0).killed_depth_m("tubes") > 0.0


# ------------------------------------------------------------------ the intercostal nerve through the real plan


@cache
def _intercostal(agent: str, pct: float, ml: float, injections: int = 1, interval_h: float = 24.0):
    overrides = ["simulation.mesh_refinement=0.7", f"procedure.agent='{agent}'", f"procedure.concentration_pct={pct}", f"procedure.volume_ml={ml}",
                 f"procedure.injections={injections}", f"procedure.interval_h={interval_h}"]
    return simulate(plan_from_dict(apply_overrides(tomllib.loads(plan_toml(new_plan("intercostal", method="chemical"))), overrides)))


def test_dilute_ethanol_does_not_kill_the_intercostal_nerve():
    """3 mL of 10 % (was: 100 % of pain and motor fibres over ~31-38 mm, lethal volume 14.9 mL)."""
    out = _intercostal("ethanol", 10.0, 3.0)
    assert out.target.pain_fibres_killed_fraction < STRIP
    section = out.to_dict()["chemical"]
    assert section["lethal_volume_ml"][0] < 3.0
    assert all(b["min_concentration_pct"] >= 0.0 for b in section["mass_balance"])  # invariant


def test_strong_ethanol_kills_more_than_dilute_and_tubes_follow_the_dose():
    weak, strong = _intercostal("ethanol", 10.0, 3.0), _intercostal("ethanol", 100.0, 3.0)
    assert strong.target.pain_fibres_killed_fraction > 0.5 > weak.target.pain_fibres_killed_fraction
    engine = strong.physics.engine
    pts = strong.nerve.centerline_m
    s = engine.sample(pts)
    assert s.tubes_destroyed is not None and np.all(s.tubes_destroyed <= s.lethal)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="validation miss: 3 mL of 65 % ethanol kills ~72 % and 100 % ~90 % of the intercostal nerve's pain fibres "
                   "(default mesh), not >= 95 %: the agent enters the 2 mm nerve only through its sheath and the core stays below "
                   "C_f before clearance (muscle t1/2 15 min) removes it; clinical practice (about 65 %, 50-100 %) strips it")
def test_clinical_ethanol_kills_the_intercostal_nerve_through():
    for pct, ml in ((65.0, 3.0), (100.0, 5.0)):
        assert _intercostal("ethanol", pct, ml).target.pain_fibres_killed_fraction >= STRIP, (pct, ml)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="consistency miss: 6 % aqueous phenol 1.5-3 mL kills ~45-50 % of the intercostal pain fibres (rim), "
                   "not >= 95 %; same cause as ethanol (sheath, 2 mm nerve, clearance). Cf. Sung 2001: perineural phenol damaged "
                   "about half the nerve's thickness (READ-2nd)")
def test_clinical_phenol_kills_the_intercostal_nerve_through():
    for ml in (1.5, 3.0):
        assert _intercostal("phenol-water", 6.0, ml).target.pain_fibres_killed_fraction >= STRIP, ml


@pytest.mark.slow
def test_repeated_dilute_injections_deepen_the_damage():
    """Verification: 3 mL of 20 % three times, 1 h apart: the killed share never falls and grows (0 -> 2 -> 5 % at the default mesh)."""
    out = _intercostal("ethanol", 20.0, 3.0, 3, 1.0)
    fractions = [r["pain_fibres_killed_fraction"] for r in out.to_dict()["chemical"]["per_injection"]]
    assert all(b >= a for a, b in pairwise(fractions)) and fractions[-1] > fractions[0]


# ------------------------------------------------------------------ the lethal volume


def test_lethal_volume_counts_element_fractions():
    """volume_above_m3: one tet with values 0, 0, 0, 1 is above 0.5 on (1/2)^3 of its volume (exact 0.125; lattice p = 6: 20/84, O(1/p))."""
    tets = np.array([[0, 1, 2, 3]])
    vol = volume_above_m3(tets, np.array([6.0]), np.array([0.0, 0.0, 0.0, 1.0]), 0.5)
    assert vol == pytest.approx(6.0 * 20 / 84)
    assert volume_above_m3(tets, np.array([6.0]), np.array([1.0, 1.0, 1.0, 1.0]), 0.5) == 6.0
    assert dose_response("ethanol").fast_constant_pct_s > 0
