"""Relief over a cancer's course (issue 19, part 5): it ends at the earliest of the nerve's
recovery, pain progressing beyond the treated pathway, and death."""

import math
from dataclasses import replace

import numpy as np
import pytest

from neurolysis.outcome.recovery_cases import calibrate_progression_median_days
from neurolysis.outcome.relief import RELIEF_ENDS, Territory, disease_course, end_shares, model_parameters, relief_ends
from neurolysis.outcome.uncertainty import Cohort

COURSE = model_parameters()["disease_course"]["celiac-plexus"]


def _cancer(survival_days=193.0, progression_days=600.0) -> Territory:
    return Territory(survival_median_days=survival_days, disease="test", progression_median_days=progression_days)


def test_competing_exponentials_share_by_their_rates():
    """A nerve that never recovers: death comes first with P = lambda_S / (lambda_S + lambda_P)
    = p / (p + s) for medians s (survival) and p (progression); 600 / 793 = 0.757."""
    ends = relief_ends(np.full(200_000, 1e9), _cancer(), seed=3)
    shares = end_shares(np.argmin(ends, axis=0))
    assert shares["death"] == pytest.approx(600.0 / 793.0, abs=0.005)
    assert shares["progression"] == pytest.approx(193.0 / 793.0, abs=0.005)
    assert shares["recovery"] == 0.0


def test_relief_lived_is_the_earliest_end():
    """min(R, P, S) is itself exponential when R never comes: its median is ln 2 / (lambda_S + lambda_P) = 1 / (1/193 + 1/600) days."""
    ends = relief_ends(np.full(200_000, 1e9), _cancer(), seed=5)
    assert np.median(ends.min(axis=0)) == pytest.approx(1.0 / (1.0 / 193.0 + 1.0 / 600.0), rel=0.01)


def test_a_nerve_that_recovers_first_ends_relief_by_recovery():
    course = disease_course(np.full(1000, 1.0), _cancer(), seed=1)
    assert course["relief_end"] == "recovery" and course["relief_end_shares"]["recovery"] > 0.99


def test_without_a_progression_median_only_recovery_and_death_end_relief():
    ends = relief_ends(np.full(5000, 1e9), _cancer(progression_days=None), seed=0)
    assert set(np.unique(np.argmin(ends, axis=0))) == {RELIEF_ENDS.index("death")}


def test_no_disease_course_outside_cancer():
    assert relief_ends(np.ones(10), Territory()) is None and disease_course(np.ones(10), Territory()) is None


def test_progression_median_is_recomputed_from_its_calibration():
    """Eisenberg 1995: ~90 % of survivors relieved at 3 months -> median 3 x 30.4375 x ln 2 / -ln 0.9 days."""
    assert calibrate_progression_median_days() == pytest.approx(COURSE["progression_median_days"], abs=0.05)
    assert calibrate_progression_median_days() == pytest.approx(3 * 30.4375 * math.log(2) / -math.log(0.9))


def test_cohort_reports_what_ends_each_blocked_samples_relief():
    """uncertainty.relief_end_shares: one disease-course draw per blocked sample; failed blocks
    (relief 0) are left out; 1e6-month relief never ends by recovery."""
    n = 4000
    block = np.arange(n) % 4 != 0
    cohort = Cohort((None,) * n, np.ones(n), None, block, np.zeros(n, bool), np.where(block, 1e6, 0.0), np.zeros((n, 0), bool),
                    np.zeros(n, bool), None, 0, (), "test", 0.0, territory=_cancer())
    d = cohort.to_dict()
    assert d["relief_end_shares"]["recovery"] == 0.0
    assert d["relief_end_shares"]["death"] == pytest.approx(600.0 / 793.0, abs=0.03)
    assert d["relief_lived_months"]["median"] == pytest.approx(1.0 / (1.0 / 193.0 + 1.0 / 600.0) / 30.4375, rel=0.08)
    assert "relief_end_shares" not in replace(cohort, territory=Territory()).to_dict()  # not a cancer
