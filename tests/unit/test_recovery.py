"""The recovery model (outcome/relief.py) against hand-computed cases, one per injury grade.

Each case fixes the draw (delay, rates, recurrence) so the relief end can be computed by hand
from T_i = t_W + s_i / (a v_scar) + p_i / (a v g_i) and I(t) = u + (1 - u) [alive + sum h] / N
+ S(t), h(tau) = m_0 + (1 - m_0) min(tau a / tau_f, 1), relief ends at I = theta.
"""

import math

import numpy as np
import pytest

from neurolysis._catalog import load_catalog
from neurolysis.outcome.relief import InputModel, KilledPaths, RecoveryDraws, Territory, age_factor, crossing_mask, disease_course, relief_days, territory_for
from neurolysis.validation import ValidationError

REC = load_catalog("nerve_model")["recovery"]
THETA = REC["return_threshold"]
M0 = REC["maturation"]["start_fraction"]
TAU_F = REC["maturation"]["full_months"] * REC["days_per_month"]
HORIZON = REC["horizon_months"] * REC["days_per_month"]


def _draw(delay=5.0, tube_mm_day=1.0, scar_mm_day=0.1, recurrence=math.inf) -> RecoveryDraws:
    return RecoveryDraws(np.array([delay]), np.array([tube_mm_day * 1e-3]), np.array([scar_mm_day * 1e-3]), np.array([recurrence]))


def _paths(n, grade, scar_mm=0.0, tube_mm=20.0) -> KilledPaths:
    return KilledPaths(np.full(n, scar_mm * 1e-3), np.full(n, tube_mm * 1e-3), np.full(n, grade), np.ones(n))


def _maturation_days(share: float, age: float = 1.0) -> float:
    """Days after reconnection for h to reach ``share``."""
    return (share - M0) / (1 - M0) * TAU_F / age


def test_grade2_single_axon():
    """Tubes intact: T = 5 + 20 mm / 1 mm/day = 25 d; relief ends when h = theta."""
    days = relief_days(_paths(1, 2, tube_mm=20.0), 1, _draw(), Territory())
    assert days[0] == pytest.approx(25.0 + _maturation_days(THETA), rel=1e-9)


def test_grade3_scar_delay_and_crossing_share():
    """10 axons through 2 mm of scar at 0.1 mm/day (20 d) then 10 mm of tubes (10 d): T = 35 d
    for the round(q3 x 10) = 9 that cross; I = 0.9 h, so relief ends when h = theta / 0.9."""
    crossing = int(crossing_mask(10, 0).sum())
    assert crossing == round(REC["scar_crossing_share"] * 10) == 9
    days = relief_days(_paths(10, 3, scar_mm=2.0, tube_mm=10.0), 10, _draw(), Territory())
    assert days[0] == pytest.approx(35.0 + _maturation_days(THETA / 0.9), rel=1e-9)


def test_grade3_with_untreated_input_and_survivors():
    """u = 0.1 and 2 of 10 pain axons alive: base = 0.1 + 0.9 x 0.2 = 0.28; 8 killed, 7 cross
    (round(0.9 x 8)); I = 0.28 + 0.09 x 7 h = theta."""
    n_cross = int(crossing_mask(8, 0).sum())
    assert n_cross == 7
    days = relief_days(_paths(8, 3, scar_mm=2.0, tube_mm=10.0), 10, _draw(), Territory(untreated_share=0.1))
    share = (THETA - 0.28) / (0.09 * n_cross)
    if share <= M0:  # the jump at reconnection already reaches theta
        assert days[0] == pytest.approx(35.0)
    else:
        assert days[0] == pytest.approx(35.0 + _maturation_days(share), rel=1e-9)


def test_grade5_never_reconnects_recurrence_or_horizon():
    """Cut with the stump managed: no regrowth; relief ends at the draw's recurrence, else at the horizon."""
    assert relief_days(_paths(5, 5), 5, _draw(), Territory())[0] == pytest.approx(HORIZON)
    assert relief_days(_paths(5, 5), 5, _draw(recurrence=100.0), Territory())[0] == pytest.approx(100.0)


def test_no_maturation_counts_reconnected_axons():
    """Rodent cases: a reconnected axon gives its whole input. 10 grade-2 axons reconnect at
    5 + k days (tubes k mm at 1 mm/day); I = j / 10 after j reconnect: ends at the first j/10 >= theta."""
    paths = KilledPaths(np.zeros(10), np.arange(1, 11) * 1e-3, np.full(10, 2), np.ones(10))
    days = relief_days(paths, 10, _draw(), Territory(), maturation=False)
    j = math.ceil(THETA * 10 - 1e-12)
    assert days[0] == pytest.approx(5.0 + j, abs=1e-6)


def test_age_scales_regrowth_and_maturation_not_the_delay():
    young = REC["age"]["young_age_years"]
    a = age_factor(young)
    assert a == pytest.approx(REC["age"]["young_factor"])
    assert age_factor(None) == age_factor(80.0) == 1.0
    assert 1.0 < age_factor(0.5 * (young + REC["age"]["adult_age_years"])) < a
    days = relief_days(_paths(1, 2, tube_mm=20.0), 1, _draw(), Territory(age_years=young))
    assert days[0] == pytest.approx(5.0 + 20.0 / a + _maturation_days(THETA, a), rel=1e-9)


def test_sprouting_alone_ends_relief_when_it_reaches_theta():
    """No axon reconnects (grade 5, no recurrence); u = 0.3 and a 0.1 sprout share ramping from
    day 14 over 90 days: 0.3 + 0.1 (t - 14) / 90 = theta."""
    territory = Territory(untreated_share=0.3, sprouting_share=0.1)
    days = relief_days(_paths(4, 5), 4, _draw(), territory)
    onset, ramp = REC["sprouting"]["onset_days"], REC["sprouting"]["ramp_days"]
    assert days[0] == pytest.approx(onset + ramp * (THETA - 0.3) / 0.1, rel=1e-9)


def test_crossing_day_matches_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        t_i = rng.uniform(0, 400, rng.integers(1, 40))
        model = InputModel(rng.uniform(0, 0.2), 1 / 50, M0, rng.uniform(50, 800), rng.uniform(0.2, 0.6), rng.uniform(0, 0.1), 14.0, 90.0)
        got = model.crossing_day(t_i, 3000.0)
        grid = np.linspace(0, 3000, 300_001)
        values = model.at(grid, t_i)
        above = np.flatnonzero(values >= model.theta)
        want = grid[above[0]] if above.size else 3000.0
        assert got == pytest.approx(want, abs=0.011)


def test_disease_course_exponential_survival():
    """P(R >= S) for S exponential with median m is 1 - exp(-ln 2 R / m)."""
    days = np.full(20000, 100.0)
    course = disease_course(days, Territory(survival_median_days=193.0, disease="cancer"), seed=1)
    assert course["p_relief_outlasts_survival"] == pytest.approx(1 - math.exp(-math.log(2) * 100 / 193), abs=0.01)
    assert disease_course(days, Territory()) is None


def test_territory_from_catalog_and_age_checked():
    knee = territory_for("genicular", "superomedial genicular nerve")
    assert knee.untreated_share > 0 and knee.sprouting_share == 0
    assert territory_for("intercostal", "intercostal nerve").sprouting_share > 0
    assert territory_for("celiac-plexus", "celiac plexus").survival_median_days == pytest.approx(193.0)
    with pytest.raises(ValidationError, match="patient.age_years"):
        territory_for("genicular", "superomedial genicular nerve", age_years=-3)


def test_fifty_percent_endpoint_ends_later_by_the_hand_computed_maturation():
    """One grade-2 axon: complete relief ends when h = theta, >= 50 % relief when h = theta + (1 - theta) / 2."""
    from neurolysis.outcome.relief import endpoint_threshold

    half = endpoint_threshold(THETA, "fifty_percent")
    assert half == pytest.approx(THETA + 0.5 * (1 - THETA)) and endpoint_threshold(THETA, "complete") == THETA
    days = relief_days(_paths(1, 2, tube_mm=20.0), 1, _draw(), Territory(endpoint="fifty_percent"))
    assert days[0] == pytest.approx(25.0 + _maturation_days(half), rel=1e-9)


def test_an_unknown_endpoint_is_refused_naming_the_field():
    with pytest.raises(ValidationError, match=r"simulation.relief_endpoint = 'half'.*complete, fifty_percent"):
        territory_for("genicular", "superomedial genicular nerve", endpoint="half")


def test_knee_territory_complete_relief_needs_all_three_nerves_and_half_relief_any_two():
    """Shares 0.2833 each and 0.15 untreated: with one nerve still conducting, I(0) = 0.15 + 0.2833 =
    0.433, above theta = 0.333 (no complete relief) but below theta + (1 - theta) / 2 = 0.666."""
    from neurolysis.outcome.territory import shared_relief_days

    share = load_catalog("nerve_model")["shared_territory"]["knee"]["shares"]["superomedial genicular nerve"]
    two = [_paths(10, 2, tube_mm=20.0)] * 2
    conducting = 0.15 + share
    for endpoint, relieved in (("complete", False), ("fifty_percent", True)):
        days = shared_relief_days(two, [10, 10], [share, share], conducting, Territory(endpoint=endpoint), _draw(), 0)[endpoint]
        assert (days[0] > 0) == relieved, (endpoint, days)
    all_three = shared_relief_days([_paths(10, 2, tube_mm=20.0)] * 3, [10] * 3, [share] * 3, 0.15, Territory(), _draw(), 0)
    assert all_three["complete"][0] > 0


def test_relief_at_every_endpoint_is_each_endpoints_own_relief():
    """The input evaluated once and crossed at each endpoint's threshold gives, bit for bit, the
    relief computed for that endpoint alone."""
    from neurolysis.outcome.relief import axon_growth_factors, endpoints, recovery_draws, relief_days, relief_days_by_endpoint

    paths = KilledPaths(np.full(40, 2e-3), np.full(40, 30e-3), np.full(40, 3), axon_growth_factors(40, 3))  # axons regrowing at their own rates
    draws = recovery_draws(3, 200)
    every = relief_days_by_endpoint(paths, 60, draws, Territory(), seed=3)
    assert set(every) == set(endpoints()) and len(every) >= 2
    for endpoint in endpoints():
        np.testing.assert_array_equal(every[endpoint], relief_days(paths, 60, draws, Territory(endpoint=endpoint), seed=3))
    assert np.all(every["fifty_percent"] >= every["complete"])  # half the pain back comes later than any
