"""Critical-structure dose and flags in a synthetic scene with analytic fields.

Scene (mm): a spinal cord = cylinder along z of radius 5 around (10, 0); skin = y > 18;
a motor nerve along z at x = -4 (radius 0.5); an "aorta" region at x > 100 (outside any
box used here); muscle elsewhere. The field is a Gaussian temperature
T = 37 + dT exp(-|p - c|^2 / (2 s^2)) held for 90 s; Omega (liver set) and CEM43 follow
from that constant hold exactly, lethal = Omega >= 1.
"""

import json

import numpy as np
import pytest

from neurolysis.anatomy.scene import CriticalStructure, FibreClass, Nerve, Scene
from neurolysis.fields import FieldSample
from neurolysis.outcome.risk import assess_risk, risk_warnings
from neurolysis.physics.damage import arrhenius
from neurolysis.validation import ValidationError

MM = 1e-3
HOLD_S = 90.0
BOX = (np.array([-20, -20, -20]) * MM, np.array([20, 20, 20]) * MM)
SCENE_BOUNDS = (np.array([-150, -150, -150]) * MM, np.array([150, 150, 150]) * MM)  # the aorta at x > 100 mm lies inside
REGIONS = ("background", "muscle", "cord", "skin", "aorta")
KEYS = {"name", "kind", "peak_temp_c", "omega", "cem43_min", "injured", "reason", "distance_to_lesion_mm", "consequence"}


def label_at(p):
    p = np.atleast_2d(p)
    lab = np.ones(p.shape[0], int)
    lab[(p[:, 0] - 10 * MM) ** 2 + p[:, 1] ** 2 <= (5 * MM) ** 2] = 2
    lab[p[:, 1] > 18 * MM] = 3
    lab[p[:, 0] > 100 * MM] = 4
    return lab


def scene(extra=()) -> Scene:
    motor = Nerve(
        "femoral", np.array([[-4 * MM, 0, -30 * MM], [-4 * MM, 0, 30 * MM]]), 0.5 * MM,
        (FibreClass("A-alpha", "motor", 12, 0.5, True), FibreClass("C", "pain", 1, 0.5, False)), 0.1, kind="mixed",
    )
    critical = (
        CriticalStructure("spinal cord", "spinal-cord", regions=("cord",)),
        CriticalStructure("femoral nerve", "motor-nerve", nerve="femoral"),
        CriticalStructure("skin", "skin", regions=("skin",)),
        CriticalStructure("aorta", "artery", regions=("aorta",)),
        *extra,
    )
    return Scene("synthetic", "", SCENE_BOUNDS, REGIONS, ("fat", "muscle", "spinal-cord", "skin", "blood"), label_at, (motor,), critical, "femoral")


def gaussian(center_mm, d_t, sigma_mm):
    c = np.asarray(center_mm, float) * MM
    liver = arrhenius("liver-jacques")

    def sampler(p):
        t = 37.0 + d_t * np.exp(-np.sum((p - c) ** 2, axis=1) / (2 * (sigma_mm * MM) ** 2))
        omega = liver.rate(t) * HOLD_S
        cem = HOLD_S / 60.0 * np.where(t >= 43, 0.5, 0.25) ** (43.0 - t)
        return FieldSample(t, omega, cem, omega >= 1.0)
    return sampler


def lethal_ball(center_mm, radius_mm):
    c = np.asarray(center_mm, float) * MM

    def sampler(p):
        r = np.linalg.norm(p - c, axis=1)
        lethal = r <= radius_mm * MM
        t = np.where(lethal, 80.0, 37.0)
        return FieldSample(t, lethal * 2.0, lethal * 1e3, lethal)
    return sampler


def by_name(risks):
    return {r.name: r for r in risks}


def test_hot_field_next_to_cord_flags_it():
    risks = by_name(assess_risk(scene(), gaussian([3, 0, 0], 50.0, 2.0), box_m=BOX))
    cord = risks["spinal cord"]
    assert cord.injured and cord.peak_temp_c > 60
    assert "lethal region" in cord.reason and "coagulation" in cord.reason
    assert "paralysis" in cord.consequence.lower()
    assert cord.distance_to_lesion_mm == 0.0
    warnings = risk_warnings(risks.values())
    assert warnings and warnings[0].startswith("SPINAL CORD AT RISK")


def test_moderate_dose_sets_cem43_reason():
    """Gaussian at the origin, s = 2.9 mm: the cord's nearest point (x = 5 mm, on the grid)
    reaches ~48.3 C for 90 s: CEM43 ~59 min (between 48 and 240) but Omega < 1, so the
    Wondergem threshold sets the flag."""
    sampler = gaussian([0, 0, 0], 50.0, 2.9)
    cord = by_name(assess_risk(scene(), sampler, box_m=BOX))["spinal cord"]
    t5 = 37 + 50 * np.exp(-25 / (2 * 2.9**2))
    cem5 = HOLD_S / 60 * 0.5 ** (43 - t5)
    assert 48 <= cem5 < 240 and arrhenius("liver-jacques").rate(t5) * HOLD_S < 1, cem5  # the test's own premise
    assert cord.cem43_min == pytest.approx(cem5, rel=0.02)
    assert cord.injured and "CEM43" in cord.reason and ">= 48 min" in cord.reason and "Wondergem" in cord.reason


def test_cool_field_flags_nothing():
    risks = assess_risk(scene(), gaussian([0, 0, 0], 3.0, 2.0), box_m=BOX)
    assert not any(r.injured for r in risks)
    assert all("no threshold reached" in r.reason or "not reached" in r.reason for r in risks)
    assert risk_warnings(risks) == []
    assert all(r.distance_to_lesion_mm is None for r in risks)


def test_distance_to_lesion():
    """Lethal ball radius 2 mm at the origin: cord surface at x = 5 mm -> 3 mm; motor nerve
    surface at x = -3.5 mm -> 1.5 mm (to within a grid spacing / tube ring)."""
    risks = by_name(assess_risk(scene(), lethal_ball([0, 0, 0], 2.0), box_m=BOX, spacing_m=0.25e-3))
    assert risks["spinal cord"].distance_to_lesion_mm == pytest.approx(3.0, abs=0.3)
    assert risks["femoral nerve"].distance_to_lesion_mm == pytest.approx(1.5, abs=0.3)
    assert not risks["spinal cord"].injured


def test_motor_nerve_inside_lesion():
    risks = by_name(assess_risk(scene(), lethal_ball([-4, 0, 0], 2.0), box_m=BOX))
    nerve = risks["femoral nerve"]
    assert nerve.injured and nerve.distance_to_lesion_mm == 0.0 and 0 < nerve.lethal_fraction < 1
    assert "weakness" in nerve.consequence
    assert risk_warnings(risks.values())[0].startswith("MOTOR NERVE AT RISK")


def test_far_structure_reported_not_dropped():
    risks = assess_risk(scene(), lethal_ball([0, 0, 0], 2.0), box_m=BOX)
    assert [r.name for r in risks] == ["spinal cord", "femoral nerve", "skin", "aorta"]
    aorta = by_name(risks)["aorta"]
    assert not aorta.in_box and not aorta.injured and aorta.peak_temp_c == 37.0
    assert aorta.distance_is_lower_bound and aorta.distance_to_lesion_mm >= 17.5
    assert "not reached" in aorta.reason


def test_skin_burn_threshold():
    risks = by_name(assess_risk(scene(), gaussian([0, 19, 0], 20.0, 2.0), box_m=BOX))
    skin = risks["skin"]
    assert skin.injured and "53.4" in skin.reason and "burn" in skin.consequence


def test_unknown_kind_flagged_conservatively():
    extra = (CriticalStructure("bowel", "bowel", regions=("muscle",)),)
    bowel = by_name(assess_risk(scene(extra), lethal_ball([0, 0, 0], 2.0), box_m=BOX))["bowel"]
    assert bowel.injured and "conservative" in bowel.reason
    assert "BOWEL AT RISK" in risk_warnings([bowel])[0]


def test_to_dict_contract():
    for r in assess_risk(scene(), gaussian([3, 0, 0], 50.0, 2.0), box_m=BOX):
        d = r.to_dict()
        assert KEYS <= set(d)
        json.dumps(d)


def test_one_sampler_call_and_extra_lethal_points():
    calls = []
    inner = lethal_ball([0, 0, 0], 1.0)

    def counting(p):
        calls.append(p.shape[0])
        return inner(p)

    far = np.array([[9.0, 0, 0]]) * MM  # an extra lethal point inside the cord (x = 9 mm)
    risks = by_name(assess_risk(scene(), counting, box_m=BOX, lethal_points_m=far))
    assert len(calls) == 1
    assert risks["spinal cord"].distance_to_lesion_mm == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"box_m": (np.zeros(3), np.zeros(3))},
        {"box_m": (np.zeros(3), np.array([1, 1, np.nan]))},
        {"box_m": BOX, "spacing_m": 0.0},
        {"box_m": BOX, "spacing_m": float("inf")},
        {"box_m": BOX, "spacing_m": 1e-5},
    ],
)
def test_bad_input_raises(kwargs):
    with pytest.raises(ValidationError):
        assess_risk(scene(), lethal_ball([0, 0, 0], 1.0), **kwargs)


def test_unknown_region_raises():
    extra = (CriticalStructure("ghost", "dura", regions=("nowhere",)),)
    with pytest.raises(ValidationError, match="regions"):
        assess_risk(scene(extra), lethal_ball([0, 0, 0], 1.0), box_m=BOX)


def test_risk_catalog_sourced():
    from neurolysis._catalog import load_catalog

    cat = load_catalog("risk")
    assert cat["default_kind"] in cat["kind"] and "spinal-cord" in cat["kind"]
    assert cat["kind"]["spinal-cord"]["warning_rank"] == min(k["warning_rank"] for k in cat["kind"].values())
    for kind, entry in cat["kind"].items():
        assert entry["consequence"] and entry["criteria"], kind
        for c in entry["criteria"]:
            assert c["measure"] in {"lethal", "cem43_min", "peak_temp_c", "omega", "agent_fraction", "agent_mmol_l"}
            assert c.get("solute", "ethanol") in {"ethanol", "phenol"}
            assert c["source"] and c["tag"] in {"READ", "READ-2nd", "DERIVED", "UNVERIFIED"} and c["threshold"] > 0


def test_derived_skin_and_artery_thresholds_match_damage_sets():
    """risk.toml's peak thresholds are the temperatures where the damage.toml sets reach Omega = 1 in 90 s."""
    from neurolysis._catalog import load_catalog

    kinds = load_catalog("risk")["kind"]
    for kind, set_name in (("skin", "skin-henriques"), ("artery", "artery-agah")):
        thr = next(c["threshold"] for c in kinds[kind]["criteria"] if c["measure"] == "peak_temp_c")
        assert arrhenius(set_name).rate(np.array([thr]))[0] * 90.0 == pytest.approx(1.0, rel=0.05)


def test_injected_agent_reaching_the_cord_is_flagged_without_a_kill():
    """Chemical methods: phenol that reaches the cord at >= 10 % of its injected concentration (ethanol: at
    >= 70 mmol/L) is a paralysis risk even where it kills nothing (celiac paraplegia route)."""
    cord_centre = np.array([10 * MM, 0.0, 0.0])

    def spread(fraction_at_cord, solute="phenol"):
        def sampler(p):
            n = len(p)
            near = np.linalg.norm(p - cord_centre, axis=1) <= 6 * MM
            return FieldSample(np.full(n, 37.0), np.zeros(n), np.zeros(n), np.zeros(n, bool), np.where(near, fraction_at_cord, 0.0),
                               agent_mmol_l=np.where(near, 1000.0 * fraction_at_cord, 0.0), agent_solute=solute)

        return sampler

    low = {r.name: r for r in assess_risk(scene(), spread(0.05), box_m=BOX)}
    high = {r.name: r for r in assess_risk(scene(), spread(0.3), box_m=BOX)}
    assert not low["spinal cord"].injured and "5 % < 10 %" in low["spinal cord"].reason
    assert high["spinal cord"].injured and "30 % >= 10 %" in high["spinal cord"].reason
    assert high["spinal cord"].agent_fraction == pytest.approx(0.3)
    assert risk_warnings(high.values())[0].startswith("SPINAL CORD AT RISK")
    assert not high["skin"].injured  # the agent did not reach it
    ethanol = {r.name: r for r in assess_risk(scene(), spread(0.05, "ethanol"), box_m=BOX)}  # 50 mmol/L: under 70
    assert not ethanol["spinal cord"].injured and "50.0 mmol/L < 70 mmol/L" in ethanol["spinal cord"].reason


def test_distance_lower_bound_ignores_box_faces_on_the_scene_bounds():
    """Nothing lies beyond a face of the box that is also a face of the scene, so the lower
    bound for an unreached structure (the aorta, x > 100 mm) is the lesion's distance to the
    open faces (~18 mm to y, z = +-20 mm), not to the closed one next to it (~2 mm to x = -20 mm)."""
    s = scene()
    lo, hi = (np.asarray(b) for b in s.bounds_m)
    flush = Scene(s.name, s.description, (np.array([BOX[0][0], lo[1], lo[2]]), hi), s.region_names, s.region_tissue, s.label_at, s.nerves, s.critical, s.target)
    risks = {r.name: r for r in assess_risk(flush, gaussian([-17, 0, 0], 40.0, 1.0), box_m=BOX)}
    aorta = risks["aorta"]
    assert aorta.distance_is_lower_bound and aorta.distance_to_lesion_mm > 15.0, aorta


def test_agent_thresholds_apply_to_their_own_solute():
    """An artery wall at 60 mmol/L of ethanol is injured (Altura 1984: spasm and rupture above 54); the same
    concentration of phenol is not judged by ethanol's threshold (its own: 10 % of the injected concentration)."""
    from neurolysis.chemistry import millimolar_per_pct
    from neurolysis.outcome.risk import injury_verdict

    base = {"peak_temp_c": 37.0, "omega": 0.0, "cem43_min": 0.0, "agent_fraction": 0.05, "agent_mmol_l": 60.0, "lumen_diameter_mm": 1.5}
    injured, reason = injury_verdict("artery", False, base | {"agent_solute": "ethanol"})
    assert injured and "60.0 mmol/L >= 54 mmol/L" in reason
    assert not injury_verdict("artery", False, base | {"agent_solute": "phenol"})[0]
    assert injury_verdict("artery", False, base | {"agent_solute": "phenol", "agent_fraction": 0.12})[0]
    assert not injury_verdict("artery", False, base | {"agent_solute": "ethanol", "lumen_diameter_mm": 20.0})[0]
    assert injury_verdict("spinal-cord", False, base | {"agent_mmol_l": 75.0, "agent_solute": "ethanol"})[0]
    assert millimolar_per_pct("ethanol") == pytest.approx(10 * 0.789 / 46.07 * 1e3)  # 171.3 mmol/L per % v/v
    assert millimolar_per_pct("phenol") == pytest.approx(10 / 94.11 * 1e3)  # 106.3 mmol/L per % w/v
