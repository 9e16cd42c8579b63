"""Agent catalogs, maximum doses, dose responses and the block model against their anchors.

Calibration anchors must be reproduced; validation anchors are compared with a criterion
fixed before looking (inside the published range or +/- SD when given, else within 25 %
of the central value). A miss stays as a strict xfail with the numbers in its reason.
"""

import math

import numpy as np
import pytest

from neurolysis._catalog import load_catalog
from neurolysis.chemistry import (
    anaesthetic,
    anaesthetics,
    check_neurolytic_injection,
    dose_response,
    ethanol_grams,
    max_dose_check,
    neurolytic_agents,
    systemic_exposure,
    topical_exposure,
    transport_coefficients,
    widmark_peak_permille,
)
from neurolysis.engines.block import block_calibration, block_duration_min, block_window_s, simulate_block
from neurolysis.validation import ValidationError

H = 3600.0
ANCHORS = {a["id"]: a for a in load_catalog("anaesthetics")["block"]["anchor"]}
TAGS = {"READ", "READ-2nd", "DERIVED", "UNVERIFIED"}


def within(model, low, high):
    return low <= model <= high


def near(model, central, rel=0.25):
    return abs(model - central) <= rel * central


# ------------------------------------------------------------------ catalogs


def test_neurolytic_catalog_loads_with_sources():
    agents = neurolytic_agents()
    assert set(agents) == {"ethanol", "phenol-water", "phenol-glycerin"}
    cat = load_catalog("agents")
    for agent_id, agent in agents.items():
        assert cat["agent"][agent_id]["tag"] in TAGS
        for key in ("concentration_max_pct", "diffusivity_water_37c_m2_s", "vehicle_diffusion_factor", "partition_tissue_blood", "cell_uptake", "perineurium_factor"):
            assert agent.sources.get(key, "").strip(), f"{agent_id}.{key} has no source"
        assert 1e-10 < agent.diffusivity_water_37c_m2_s < 5e-9
    assert agents["phenol-water"].concentration_max_pct <= 7.0  # solubility (literature.md D3)
    for section in ("dose_response.ethanol", "dose_response.phenol", "dose_response.topical"):
        table = cat["dose_response"][section.split(".")[1]]
        assert table["tag"] in TAGS
        assert all(table["sources"].get(k) for k in table if k not in ("sources", "tag"))
    assert all(cat["systemic"]["sources"].get(k) for k in cat["systemic"] if k != "sources")


def test_anaesthetic_catalog_loads_with_sources():
    table = anaesthetics()
    assert set(table) == {"lidocaine", "mepivacaine", "bupivacaine", "ropivacaine", "chloroprocaine"}
    for a in table.values():
        assert a.max_mg_per_kg_epinephrine >= a.max_mg_per_kg_plain > 0
        assert a.cap_mg_epinephrine >= a.cap_mg_plain > 0
        for key in ("max_mg_per_kg_plain", "cap_mg_plain", "max_mg_per_kg_epinephrine", "cap_mg_epinephrine"):
            assert a.sources.get(key, "").strip(), f"{a.id}.{key} has no source"
    for anchor in ANCHORS.values():
        assert anchor["source"].strip() and anchor["role"] in {"calibration", "calibration-onset", "validation"}


def test_transport_coefficients_sheath_is_a_barrier():
    nerve, sheath = transport_coefficients("ethanol", "nerve"), transport_coefficients("ethanol", "perineurium")
    assert sheath.diffusivity_m2_s == pytest.approx(0.2 * nerve.diffusivity_m2_s)  # the agent's perineurium_factor (was the tissue's 0.02)
    assert 1e-5 < nerve.clearance_per_s < 1e-2
    assert transport_coefficients("phenol-glycerin", "muscle").diffusivity_m2_s < transport_coefficients("phenol-water", "muscle").diffusivity_m2_s


# ------------------------------------------------------------------ maximum dose


def test_max_dose_rule_weight_limited():
    dose, limit, over = max_dose_check("lidocaine", 1.0, 20.0, 50.0)
    assert dose == pytest.approx(200.0) and limit == pytest.approx(4.5 * 50) and not over


def test_max_dose_rule_cap_and_epinephrine():
    dose, limit, over = max_dose_check("lidocaine", 2.0, 20.0, 100.0)
    assert (dose, limit, over) == (pytest.approx(400.0), pytest.approx(300.0), True)  # cap, not 450
    dose, limit, over = max_dose_check("lidocaine", 2.0, 20.0, 100.0, epinephrine=True)
    assert limit == pytest.approx(500.0) and not over  # 7 mg/kg -> 700, capped at 500
    _, limit_b, _ = max_dose_check("bupivacaine", 0.5, 30.0, 70.0)
    assert limit_b == pytest.approx(min(2.0 * 70, 175.0))


def test_over_maximum_is_refused_unless_overridden():
    with pytest.raises(ValidationError, match="exceeds the maximum dose"):
        simulate_block("bupivacaine", 0.5, 40.0, 70.0)
    out = simulate_block("bupivacaine", 0.5, 40.0, 70.0, override_max_dose=True, samples=50)
    assert out.over_limit and out.dose_mg == pytest.approx(200.0)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: check_neurolytic_injection("vodka", 50.0, 1.0), r"^agent = 'vodka': allowed values are"),
        (lambda: check_neurolytic_injection("ethanol", 150.0, 1.0), r"^concentration_pct = 150 .*\(0, 100\]"),
        (lambda: check_neurolytic_injection("ethanol", 50.0, 0.0), r"^volume_ml = 0 mL: allowed range is \(0, 100\] mL"),
        (lambda: check_neurolytic_injection("phenol-water", 10.0, 1.0), r"^concentration_pct = 10 .*\(0, 6.7\]"),
        (lambda: max_dose_check("lignocaine", 1.0, 10.0, 70.0), r"^agent = 'lignocaine'"),
        (lambda: max_dose_check("lidocaine", 150.0, 10.0, 70.0), r"^concentration_pct = 150"),
        (lambda: max_dose_check("lidocaine", 1.0, 0.0, 70.0), r"^volume_ml = 0"),
        (lambda: max_dose_check("lidocaine", 1.0, 10.0, -70.0), r"^weight_kg = -70 kg: allowed range is \[1, 300\] kg"),
        (lambda: max_dose_check("lidocaine", float("nan"), 10.0, 70.0), r"^concentration_pct = nan: must be a finite number"),
    ],
)
def test_bad_input_one_clear_line(call, pattern):
    with pytest.raises(ValidationError, match=pattern) as info:
        call()
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ systemic exposure


def test_ethanol_grams_and_widmark():
    assert ethanol_grams(20.0, 100.0) == pytest.approx(20 * 0.789)
    # Zernig & Battista worked example: 20 g, 88 kg man, rho 0.7 -> 0.32 permille
    assert widmark_peak_permille(20.0, 88.0, "male") == pytest.approx(0.32, abs=0.01)
    exp = systemic_exposure("ethanol", 50.0, 10.0, injections=2, weight_kg=60.0, sex="female")
    assert exp.ethanol_g == pytest.approx(20 * 0.5 * 0.789)
    assert exp.peak_bac_permille == pytest.approx(exp.ethanol_g / (0.6 * 60.0))


def test_phenol_exposure_against_toxic_threshold():
    """Karri 2017 session: 10.95 mL of 5 % = 548 mg (literature-2.md 4b) is below 1 g."""
    exp = systemic_exposure("phenol-water", 5.0, 10.95)
    assert exp.phenol_mg == pytest.approx(547.5) and not exp.over_threshold
    assert systemic_exposure("phenol-glycerin", 10.0, 5.0, injections=2).over_threshold


# ------------------------------------------------------------------ neurolytic dose response


@pytest.mark.parametrize("solute", ["ethanol", "phenol"])
def test_dose_response_monotone_in_concentration_and_time(solute):
    law = dose_response(solute)
    c = np.linspace(0.0, 100.0, 401)
    rate = law.rate_per_s(c)
    assert np.all(np.diff(rate) >= 0) and rate[-1] > 0
    assert law.lethal_index(20.0, 60.0) < law.lethal_index(20.0, 120.0)


def test_ethanol_calibration_anchors_reproduced():
    law = dose_response("ethanol")
    assert law.lethal_time_s(0.5) == math.inf  # Eraenkoe: 0.5 % no effect
    assert law.lethal_time_s(2.0) / H == pytest.approx(24.0, rel=1e-9)  # Eraenkoe 2 %, 24 h
    assert law.lethal_time_s(1.0) / H == pytest.approx(168.0, rel=1e-9)  # Eraenkoe 1 %, 1 week
    assert law.fast_threshold_pct == pytest.approx(4.0 / 0.789)  # Heaton 4 g/dL
    # Taylor 10 % for 15 s: the rim fibre of the topical model reaches Lambda = 1 (K_f solved through the model)
    assert topical_exposure("ethanol", 10.0, 15.0).at_rim("lethal") == pytest.approx(1.0, rel=1e-6)
    assert 1.0 < law.fast_constant_pct_s < 10.0  # measured 3.29 %.s: the rim sees ~6 % for seconds, not 10 % for 15 s


def test_dose_roles_calibration_and_validation_disjoint():
    """agents.toml [dose_response.roles]: no published number both calibrates and validates."""
    roles = load_catalog("agents")["dose_response"]["roles"]
    assert roles["calibrates"] and roles["validates"]
    key = lambda text: text.split(":")[0] + ":" + text.split(":")[1][:25]
    assert not {key(t) for t in roles["calibrates"]} & {key(t) for t in roles["validates"]}
    assert not any("UNVERIFIED" in t for t in roles["calibrates"] + roles["validates"])


def test_permeant_agents_dilute_into_tissue_water():
    """Ethanol and phenol cross membranes: capacity theta (water) > phi (the space the injectate fills)."""
    for agent in ("ethanol", "phenol-water"):
        muscle = transport_coefficients(agent, "muscle")
        assert muscle.capacity_fraction == pytest.approx(0.75) and muscle.volume_fraction == pytest.approx(0.2)


def test_ethanol_validation_eranko_15pct_2days():
    """Eraenkoe 1977: 1.5 % killed most cells within 2 days."""
    assert near(dose_response("ethanol").lethal_time_s(1.5) / H, 48.0)


def test_ethanol_validation_high_concentration_seconds():
    """literature-2.md 4a DERIVED gate: at 50 % a lethal exposure is << 1 min; dilute (< 5 %) needs hours."""
    law = dose_response("ethanol")
    assert law.lethal_time_s(50.0) < 6.0
    assert law.lethal_time_s(4.0) > H


@pytest.mark.xfail(strict=True, reason="validation miss: model LD at 2.9 % (500 mM) is 10.4 h, Smith (adult mouse sensory neurons) "
                   "LD50 48 h; calibrated on the more sensitive sympathetic neurons of Eraenkoe 1977")
def test_ethanol_validation_smith_ld50():
    assert near(dose_response("ethanol").lethal_time_s(2.9) / H, 48.0)


def test_phenol_anchors():
    """Injected-frame anchors x phi/theta (muscle 0.2/0.75): anaesthetic (no kill) at <= 2 %, neurolytic at 5 % (60 s assumed),
    4 % kills (Soroka 4 % relief); tubes denatured from 5 %."""
    law = dose_response("phenol")
    co = transport_coefficients("phenol-water", "muscle")
    dilution = co.volume_fraction / co.capacity_fraction
    assert law.lethal_time_s(2.0 * dilution) == math.inf and law.lethal_time_s(1.0 * dilution) == math.inf
    assert law.lethal_time_s(5.0 * dilution) == pytest.approx(60.0)
    assert law.lethal_time_s(4.0 * dilution) < 10 * 60.0
    assert law.tubes_threshold_pct == pytest.approx(5.0 * dilution)


# ------------------------------------------------------------------ block model: calibration


def _anchor_min(anchor_id, motor=False, dexamethasone=False):
    a = ANCHORS[anchor_id]
    comps = [(a["agent"], a["concentration_pct"])]
    if "+" in a["agent"]:
        first, second = a["agent"].split("+")
        comps = [(first, a["concentration_pct"]), (second, a["concentration_2_pct"])]
    return block_duration_min(comps, a["volume_ml"], bool(a["epinephrine"]), dexamethasone, motor)


@pytest.mark.parametrize("anchor_id", ["mepivacaine-axillary-1.5pct-30ml", "mepivacaine-axillary-1pct-30ml", "bupivacaine-infraclavicular-0.5pct",
                                       "ropivacaine-sciatic-0.5pct-20ml", "lidocaine-typical", "chloroprocaine-3pct"])
def test_block_calibration_sensory_anchors(anchor_id):
    assert _anchor_min(anchor_id) == pytest.approx(ANCHORS[anchor_id]["sensory_min"], rel=1e-4)


def test_block_calibration_motor_and_onset():
    b = ANCHORS["bupivacaine-infraclavicular-0.5pct"]
    assert _anchor_min(b["id"], motor=True) == pytest.approx(b["motor_min"], rel=1e-4)
    cal = block_calibration()
    for agent_id, anchor_id in (("bupivacaine", "bupivacaine-infraclavicular-0.5pct"), ("mepivacaine", "mepivacaine-infraclavicular-epinephrine")):
        a = ANCHORS[anchor_id]
        onset, _ = block_window_s([cal.component(agent_id, a["concentration_pct"], a["volume_ml"], bool(a["epinephrine"]))])
        assert onset[0] / 60.0 == pytest.approx(a["onset_min"], rel=1e-4)
    assert cal.motor_ratio < 1.0


# ------------------------------------------------------------------ block model: monotonicity


def test_block_monotone():
    base = block_duration_min([("lidocaine", 1.0)], 20.0)
    assert block_duration_min([("lidocaine", 2.0)], 20.0) > base
    assert block_duration_min([("lidocaine", 1.0)], 30.0) > base
    assert block_duration_min([("lidocaine", 1.0)], 20.0, epinephrine=True) > base
    assert block_duration_min([("lidocaine", 1.0)], 20.0, dexamethasone=True) > base


def test_block_monte_carlo_seeded():
    a = simulate_block("ropivacaine", 0.5, 20.0, 70.0, seed=7)
    b = simulate_block("ropivacaine", 0.5, 20.0, 70.0, seed=7)
    assert a == b
    assert a.sensory_h.p10 < a.sensory_h.median < a.sensory_h.p90


# ------------------------------------------------------------------ block model: validation


def test_validation_mepivacaine_20ml():
    """PMC4588252 20 mL 1.5 %: 256 (95 % CI 230-282) min; tests the V^(-1/3) absorption law."""
    a = ANCHORS["mepivacaine-axillary-1.5pct-20ml"]
    assert within(_anchor_min(a["id"]), a["low_min"], a["high_min"])


def test_validation_ropivacaine_spread():
    """PMC4279346 sensory 15 h (10-17): model p10 / p90 within 25 % of 10 / 17 h."""
    out = simulate_block("ropivacaine", 0.5, 20.0, 70.0, samples=2000, seed=1)
    assert near(out.sensory_h.p10, 10.0) and near(out.sensory_h.p90, 17.0)


def test_validation_dexamethasone_ulnar_added_minutes():
    """Ulnar 3 mL 0.5 % bupivacaine + 4 mg dexamethasone: +66 min."""
    added = _anchor_min("bupivacaine-ulnar-3ml", dexamethasone=True) - _anchor_min("bupivacaine-ulnar-3ml")
    assert near(added, 66.0)


def test_validation_dexamethasone_meta_overall():
    """KJA 2022 (15 RCTs): +2.72 h; model at the Laur bupivacaine block."""
    added_h = (_anchor_min("bupivacaine-infraclavicular-0.5pct", dexamethasone=True) - 850.0) / 60.0
    assert near(added_h, 2.72)


def test_validation_chloroprocaine_typical():
    a = ANCHORS["chloroprocaine-typical"]
    assert within(_anchor_min(a["id"]), a["low_min"], a["high_min"])


def test_validation_femoral_motor():
    a = ANCHORS["bupivacaine-femoral-0.25pct"]
    assert within(_anchor_min(a["id"], motor=True), a["motor_low_min"], a["motor_high_min"])


@pytest.mark.xfail(strict=True, reason="validation miss: model 431 min vs 640 +/- 121 (ulnar 3 mL); the V^(-1/3) depot law shortens small-volume blocks too much")
def test_validation_ulnar_3ml():
    a = ANCHORS["bupivacaine-ulnar-3ml"]
    assert within(_anchor_min(a["id"]), a["sensory_min"] - a["sd_min"], a["sensory_min"] + a["sd_min"])


@pytest.mark.xfail(strict=True, reason="validation miss: model 386 / 504 min vs Laur mepivacaine + epinephrine 281 / 320; the "
                   "UNVERIFIED epinephrine factor 0.67 (or the cross-site calibration) overstates it")
def test_validation_laur_mepivacaine_epinephrine():
    a = ANCHORS["mepivacaine-infraclavicular-epinephrine"]
    assert near(_anchor_min(a["id"]), a["sensory_min"]) and near(_anchor_min(a["id"], motor=True), a["motor_min"])


@pytest.mark.xfail(strict=True, reason="validation miss: additive 1:1 mixture with epinephrine gives 895 / 1271 min vs Laur 439 / 556 "
                   "(the mixture is shorter than bupivacaine alone in the trial; the model lets epinephrine prolong the bupivacaine half)")
def test_validation_laur_mixture():
    a = ANCHORS["mixed-infraclavicular"]
    assert near(_anchor_min(a["id"]), a["sensory_min"]) and near(_anchor_min(a["id"], motor=True), a["motor_min"])


@pytest.mark.xfail(strict=True, reason="validation miss: femoral 0.25 % bupivacaine sensory 535 min vs 10-18 h (READ-2nd, volume assumed 20 mL)")
def test_validation_femoral_sensory():
    a = ANCHORS["bupivacaine-femoral-0.25pct"]
    assert within(_anchor_min(a["id"]), a["low_min"], a["high_min"])


@pytest.mark.xfail(strict=True, reason="validation miss: one motor/sensory ratio (kappa < 1, from Laur bupivacaine) makes motor outlast "
                   "sensory everywhere: ropivacaine sciatic motor 1175 vs 900 min, mepivacaine axillary motor 349 vs 264 min")
def test_validation_motor_durations():
    assert near(_anchor_min("ropivacaine-sciatic-0.5pct-20ml", motor=True), 900.0)
    assert near(_anchor_min("mepivacaine-axillary-1.5pct-30ml", motor=True), 264.0)


def test_no_block_below_blocking_concentration():
    cal = block_calibration()
    with pytest.raises(ValidationError, match="below the blocking concentration"):
        simulate_block("lidocaine", 0.5 * cal.blocking_pct("lidocaine"), 10.0, 70.0, samples=20)
    assert anaesthetic("lidocaine").reference_pct > cal.blocking_pct("lidocaine")
