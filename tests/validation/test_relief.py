"""The relief-duration model against published durations (data/nerve_model.toml).

One anchor calibrates the one uncertain rate (v_scar median, MacVicar 2013); every other
published duration is held out, compared with a rule fixed in the data file before the
comparison was run, and never tuned. A held-out comparison that misses is listed in
KNOWN_MISSES with the reason and runs as a strict xfail (it fails loudly the day the
model starts to agree, and docs/models/nerve.md must then be updated).
"""

import numpy as np
import pytest

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.scene import FibreClass, Nerve
from neurolysis.fields import FieldSample
from neurolysis.outcome.axons import nerve_outcome
from neurolysis.outcome.relief import calibrate_scar_rate, relief_for_lesion

CAT = load_catalog("nerve_model")
TOLERANCE = 1.3  # model / published within [1/1.3, 1.3] (data file, [validation] header)

KNOWN_MISSES: dict[str, str] = {
    "govind-2003-ton": "model 15.0 vs 9.8 months: the model sees only lesion geometry, and the TON lesion is taken equal to the lumbar anchor's; nothing in it distinguishes TON from lumbar medial branch (docs/models/nerve.md section 3)",
    "koh-2017-complete": "model 15.0 vs 7.0 months: same target and lesion as the anchor, but a different cohort and outcome (mean effect duration vs MacVicar's median in complete responders); the two published values differ 2-fold and one rate cannot match both",
    "genicular-conventional": "model 4.1 vs 2.6 months: published duration mixes complete and failed capture of variable genicular nerves (conventional monopolar capture 49.6-99.1 %, literature-2.md 1b); the case assumes complete capture",
    "genicular-cooled": "model 8.3 vs 11.1 months (x0.75, band x0.77-1.3): with the anchor's lesion taken from the simulated default plan (17.2 mm), a 9 mm cooled lesion (UNVERIFIED input) relieves for shorter; it passed (x1.24) with the first 10 mm anchor lesion",
    "genicular-ratio": "model cooled/conventional 2.0 vs 4.3: lesion length alone explains half the published ratio; the rest is probably capture (see genicular-conventional)",
    "mccormick-2015-lumbar": "model 15.0 months is above the 6-12 month band because the anchor (MacVicar 15 months) is itself above it",
}


def _relief(case: dict):
    return relief_for_lesion(case["lesion_length_mm"] * 1e-3, case["distal_mm"] * 1e-3, case["method"])


def _judge(case_id: str) -> tuple[bool, str]:
    case = CAT["validation"][case_id]
    if "ratio" in case:
        num = _relief(CAT["validation"][case["numerator"]]).median
        den = _relief(CAT["validation"][case["denominator"]]).median
        model = num / den
        return 1 / TOLERANCE <= model / case["ratio"] <= TOLERANCE, f"model ratio {model:.2f} vs {case['ratio']}"
    r = _relief(case)
    if "median_months" in case:
        ok = 1 / TOLERANCE <= r.median / case["median_months"] <= TOLERANCE
        return ok, f"model median {r.median:.2f} (p10-p90 {r.p10:.1f}-{r.p90:.1f}) vs {case['median_months']} months"
    lo, hi = case["band_months"]
    return lo <= r.median <= hi, f"model median {r.median:.2f} (p10-p90 {r.p10:.1f}-{r.p90:.1f}) vs band {lo}-{hi} months"


GATED = [k for k, v in CAT["validation"].items() if "lesion_length_mm" in v or "ratio" in v]


def test_calibration_reproduces_anchor():
    anchor = CAT["calibration"]["macvicar-2013"]
    assert anchor["tag"] == "READ"
    r = _relief(anchor)
    assert r.median == pytest.approx(anchor["median_months"], rel=0.02)
    stored = CAT["regrowth"]["scar_rate_median_mm_per_day"]
    assert calibrate_scar_rate("macvicar-2013") == pytest.approx(stored, rel=0.01)


def test_anchor_is_not_a_validation_case():
    assert not set(CAT["calibration"]) & set(CAT["validation"])


@pytest.mark.parametrize("case_id", GATED)
def test_held_out_duration(case_id, request):
    case = CAT["validation"][case_id]
    assert case["source"] and case["tag"] in {"READ", "READ-2nd", "DERIVED"} and case["inputs"]
    if case_id in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[case_id]))
    ok, text = _judge(case_id)
    assert ok, f"{case_id}: {text} ({case['claim']})"


def test_koh_2017_trend_less_complete_capture_shorter_relief():
    """Koh 2017 (held out, qualitative): relief falls as capture becomes incomplete. A lethal
    cylinder (r 1.5 mm, 10 mm long) is moved off a 1 mm nerve's axis; relief must fall
    monotonically with the killed pain fraction and vanish without block."""
    assert "koh-2017-trend" in CAT["validation"]
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
