"""Fluid injected before an RF lesion (issue 19, part 2): the conductivity model checked by hand,
the published comparisons (held out, data/fluids.toml [validation]) and the input checks."""

import json
import math

import numpy as np
import pytest

from neurolysis.cli import main
from neurolysis.engines.rf.fluid import PreInjection, conductivity_factor, filled_sphere
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.fluid_validation import fluid_case, fluid_case_ids, lesion_with
from neurolysis.tissue import load_tissue
from neurolysis.validation import ValidationError

KNOWN_MISSES = {
    "provenzano-2013-nacl-vs-water": "saline / water face area 0.86 vs 1.29-2.54: the fluid fills the interstitial fraction (0.2) of an 8.4 mm sphere around the apex, "
    "a uniform conductivity change larger than the lesion, which a temperature-controlled generator does not feel; the published gain needs the fluid close to the "
    "metal (a pool or a layer along the track: a virtual electrode) or its effect on tissue-electrode contact, neither modelled",
    "provenzano-2010-fluid-vs-none": "saline / no fluid 0.91 vs > 1: the same cause",
}


def test_the_filled_sphere_holds_the_volume_in_the_accessible_fraction():
    """r_b = (3 V / (4 pi phi))^(1/3): 0.5 mL in muscle (phi 0.2) -> 8.419 mm."""
    filled, radius = filled_sphere(PreInjection("saline-0.9", 0.5), np.array([0.0, 8.0e-3, 8.5e-3]), "muscle")
    assert radius == pytest.approx((3 * 0.5e-6 / (4 * math.pi * 0.2)) ** (1 / 3))
    assert filled.tolist() == [1.0, 1.0, 0.0]


def test_conductivity_factor_is_the_volume_weighted_mix():
    """1 - phi f + phi f sigma_fluid / sigma_tissue(37 C): saline in muscle 0.8 + 0.2 x 2.0 / 0.446."""
    sigma = float(load_tissue("muscle").electrical_conductivity(np.array([37.0]))[0])
    factor = conductivity_factor(PreInjection("saline-0.9", 0.5), np.array(["muscle", "muscle", "fat"], dtype=object), np.array([1.0, 0.5, 0.0]))
    assert factor[0] == pytest.approx(0.8 + 0.2 * 2.0 / sigma)
    assert factor[1] == pytest.approx(0.9 + 0.1 * 2.0 / sigma)
    assert factor[2] == 1.0  # not filled: unchanged
    water = conductivity_factor(PreInjection("water", 0.5), np.array(["muscle"], dtype=object), np.array([1.0]))
    assert water[0] == pytest.approx(0.8 + 0.2 * 0.001 / sigma)


def test_saline_lowers_and_water_raises_the_starting_impedance():
    """A conductive pool around the tip lowers the impedance the generator sees, an insulating one raises it (Provenzano 2013: NaCl lowered impedance)."""
    none, saline, water = (lesion_with(f)["impedance_ohm_start"] for f in (None, "saline-0.9", "water"))
    assert saline < none < water


@pytest.mark.parametrize("case_id", fluid_case_ids())
def test_published_pre_injection_comparison(case_id, request):
    if case_id in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(reason=f"validation miss: {KNOWN_MISSES[case_id]}", strict=True))
    c = fluid_case(case_id)
    assert c.passed, (c.area_ratio, c.band)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pre_injection": "saline-0.9"}, "give both"),
        ({"pre_injection_ml": 0.5}, "give both"),
        ({"pre_injection": "vodka", "pre_injection_ml": 0.5}, "pre_injection = 'vodka'"),
        ({"pre_injection": "saline-0.9", "pre_injection_ml": 50.0}, r"pre_injection_ml = 50 mL: allowed range is \[0.05, 5\]"),
    ],
)
def test_bad_pre_injection_is_one_line(kwargs, match):
    with pytest.raises(ValidationError, match=match) as err:
        RFSettings(**kwargs)
    assert "\n" not in str(err.value)


def test_the_one_tissue_command_takes_a_pre_injection(capsys):
    assert main(["rf", "--tissue", "chicken-breast", "--ex-vivo", "--time-s", "30", "--pre-injection", "saline-0.9", "--pre-injection-ml", "0.5", "--json", "--quiet"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["pre_injection"]["fluid"] == "saline-0.9" and d["pre_injection"]["conductivity_s_m"] == 2.0
    assert d["pre_injection"]["reach_mm"] == pytest.approx(8.419, abs=1e-3)
    assert main(["fluids", "--json"]) == 0
    assert "saline-0.9" in json.loads(capsys.readouterr().out)
