"""The recovery model against published numbers (data/nerve_model.toml).

Calibration: regrowth and maturation physiology, animal time courses, one sensory-recovery
series and one neuroma rate set the parameters ([roles] calibrates); the calibrated values
are recomputed here. Every clinical relief duration is held out ([roles] validates),
compared by a rule fixed in the data file before the comparison was run, and never tuned.
A held-out comparison that misses is listed in KNOWN_MISSES with the reason and runs as a
strict xfail (it fails loudly the day the model starts to agree, and docs must be updated).
"""

import math

import numpy as np
import pytest

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.scene import FibreClass, Nerve
from neurolysis.fields import FieldSample
from neurolysis.outcome.axons import nerve_outcome
from neurolysis.outcome.recovery_cases import calibrate_return_threshold, calibrate_young_factor, case_relief, recurrence_share, relief_for_lesion

CAT = load_catalog("nerve_model")
TOLERANCE = 1.3  # model / published within [1/1.3, 1.3] (data file, [validation] header)

KNOWN_MISSES: dict[str, str] = {
    "mccormick-2015-lumbar": "model median 12.3 months, just above the 6-12 month band: the model sits between MacVicar's 15 (a pass) and Koh's 7 (a miss) at the same target",
    "koh-2017-complete": "model mean 12.7 vs 7.0 months (x1.8): same target and lesion as MacVicar's (model 12.3 vs 15, a pass); the two series differ two-fold at the same target, so no model of the nerve alone matches both. Koh's is a mean effect duration, MacVicar's a median in complete responders",
    "mouse-rf-recovery": "model 1.15 months vs recovery by day 28 (0.92): human regrowth rates (1.5 mm/day, 3-14 day delay) are used for the mouse; rodents regrow faster (rat 1-2 mm/day, Shah 2020) over shorter distances, and the distal path is an UNVERIFIED input",
    "rat-rf-cooled-conventional": "model 2.2 months vs recovery by 6 weeks (1.38): as the mouse case, and the 5 mm scar of a cooled lesion at 0.16 mm/day alone takes a month",
    "difiore-2024-adolescents": "model 3.4 vs 6.0 months: the age factor is calibrated on the other paediatric series (3.4 months at <= 21); the two series of the same procedure differ by 1.8x, so one of them must miss",
}


def _judge(case_id: str) -> tuple[bool, str]:
    case = CAT["validation"][case_id]
    r = case_relief(case)
    if "median_months" in case:
        ok = 1 / TOLERANCE <= r.median / case["median_months"] <= TOLERANCE
        return ok, f"model median {r.median:.2f} (p10-p90 {r.p10:.1f}-{r.p90:.1f}) vs {case['median_months']} months"
    if "mean_months" in case:
        ok = 1 / TOLERANCE <= r.mean / case["mean_months"] <= TOLERANCE
        return ok, f"model mean {r.mean:.2f} vs {case['mean_months']} months"
    lo, hi = case["band_months"]
    return lo <= r.median <= hi, f"model median {r.median:.2f} (p10-p90 {r.p10:.1f}-{r.p90:.1f}) vs band {lo}-{hi} months"


GATED = [k for k, v in CAT["validation"].items() if "lesion_length_mm" in v]


def test_roles_name_every_case_once():
    roles = CAT["roles"]
    calibrates, validates = set(roles["calibrates"]), set(roles["validates"])
    assert not calibrates & validates
    assert set(CAT["calibration"]) == calibrates
    assert set(CAT["validation"]) | set(CAT["plan_validation"]) == validates
    for case in CAT["calibration"].values():
        assert case["source"] and case["sets"]


@pytest.mark.slow
def test_calibrated_values_are_recomputed():
    rec = CAT["recovery"]
    assert calibrate_return_threshold() == pytest.approx(rec["return_threshold"], abs=5e-4)
    assert calibrate_young_factor() == pytest.approx(rec["age"]["young_factor"], rel=2e-3)


@pytest.mark.parametrize("case_id", ["intercostal-cryo-adult", "intercostal-cryo-young"])
def test_calibration_cases_reproduced(case_id):
    case = CAT["calibration"][case_id]
    assert case_relief(case).median == pytest.approx(case["months"], rel=0.02)


def test_recurrence_reproduces_its_calibration():
    """Morton's 8.2 % with stump neuroma at >= 10 years (calibration): P(recurrence by 120 months)."""
    assert recurrence_share(120.0) == pytest.approx(CAT["recovery"]["recurrence"]["probability"], abs=0.003)


@pytest.mark.parametrize("case_id", GATED)
def test_held_out_duration(case_id, request):
    case = CAT["validation"][case_id]
    assert case["source"] and case["measures"] and case["inputs"]
    if case_id in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[case_id]))
    ok, text = _judge(case_id)
    assert ok, f"{case_id}: {text} ({case['claim']})"


def test_intercostal_neurectomy_no_recurrence_in_13():
    """Held out: 13/13 relieved to 12 months. The model's P(no recurrence in 13 patients) must be >= 0.05."""
    case = CAT["validation"]["intercostal-neurectomy-recurrence"]
    p = recurrence_share(case["months"])
    assert (1 - p) ** case["patients"] >= 0.05


def test_lfcn_neurectomy_complete_relief_in_ci():
    case = CAT["validation"]["lfcn-neurectomy"]
    lo, hi = case["ci"]
    assert lo <= 1 - recurrence_share(case["months"]) <= hi


def test_relief_is_not_proportional_to_lesion_length():
    """Doubling the lesion changes how long relief lasts far less than two-fold (length decides
    capture, not the rates); a grade-2 lesion hardly at all."""
    rf10, rf20 = (relief_for_lesion(length, 15e-3, "rf").median for length in (10e-3, 20e-3))
    cryo5, cryo10 = (relief_for_lesion(length, 15e-3, "cryo").median for length in (5e-3, 10e-3))
    assert 1.0 < rf20 / rf10 < 1.3
    assert 1.0 < cryo10 / cryo5 < 1.03


def test_koh_2017_trend_less_complete_capture_shorter_relief():
    """Koh 2017 (held out, qualitative: 4.6 / 5.8 / 7.0 months when twitch was absent / partial /
    complete): relief falls as capture becomes incomplete. A lethal cylinder (r 1.5 mm, 10 mm
    long) is moved off a 1 mm nerve's axis; relief must fall with the killed pain fraction and
    vanish without block."""
    fibres = (FibreClass("A-delta", "pain", 3.0, 0.3, True), FibreClass("C", "pain", 1.0, 0.7, False))
    nerve = Nerve("mb", np.array([[0, 0, -10e-3], [0, 0, 10e-3]]), 1e-3, fibres, 10e-3)

    def cyl(cx):
        def sampler(p):
            lethal = ((p[:, 0] - cx) ** 2 + p[:, 1] ** 2 <= (1.5e-3) ** 2) & (np.abs(p[:, 2]) <= 5e-3)
            return FieldSample(np.where(lethal, 80.0, 37.0), lethal * 2.0, lethal * 1e3, lethal)
        return sampler

    outs = [nerve_outcome(nerve, cyl(cx * 1e-3), "rf") for cx in (0.0, 0.6, 0.8, 0.9, 1.2)]
    kills = [o.pain_fibres_killed_fraction for o in outs]
    medians = [o.relief.median for o in outs]
    assert kills == sorted(kills, reverse=True)
    assert all(a >= b for a, b in zip(medians, medians[1:])), medians
    assert medians[0] > medians[2] > medians[-1] == 0.0
    assert not math.isnan(medians[1])
