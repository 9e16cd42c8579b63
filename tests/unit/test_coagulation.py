"""Visible coagulation (data/coagulation.toml, physics/damage.py, both RF engines): the medium's
own criterion, measured by the one lesion measurer, beside unchanged lethal criteria."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from neurolysis._catalog import load_catalog
from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.engines.rf.engine3d import simulate_rf3d
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.fields import NeedlePose
from neurolysis.physics.damage import CoagulationTracker, coagulation_criterion
from neurolysis.physics.fem3d import TetGeometry
from neurolysis.physics.lesion import measure_lesion, measure_lesion3d, tissue_edges
from neurolysis.physics.mesh3d import Mesh3DSpec

HEAD_KEYS = ["lesion", "isotherm50", "cem43", "max_tissue_temp_c", "tip_temp_c_final", "mean_power_w", "impedance_ohm_start", "impedance_ohm_end", "traces"]
TAIL_KEYS = ["mesh", "energy", "wall_time_s", "warnings", "disclaimer"]
OLD_2D_KEYS = HEAD_KEYS + ["lesion_growth", "settings", "tissue_properties"] + TAIL_KEYS
OLD_3D_KEYS = HEAD_KEYS + ["settings", "poses", "bipolar", "joined"] + TAIL_KEYS
SHAPE_KEYS = {"criterion", "threshold", "width_mm", "length_mm", "distal_mm", "proximal_mm", "area_mm2", "volume_mm3", "reaches_domain_edge"}


def test_catalog_criteria_sourced_and_not_calibrated_on_lesions():
    cat = load_catalog("coagulation")
    for medium, entry in cat["medium"].items():
        assert entry["source"] and entry["tag"] in {"READ", "READ-2nd", "DERIVED"}, medium
    assert coagulation_criterion("egg-white").threshold == 61.0
    assert coagulation_criterion("chicken-breast").threshold == 53.0
    assert coagulation_criterion("muscle").threshold == 58.0
    liver = coagulation_criterion("liver")
    assert liver.kind == "arrhenius" and liver.threshold == pytest.approx(np.log(2), abs=1e-4)
    # Jacques' Eyring parameters (dS 553.5 J/mol/K, dH 2.768e5 J/mol): 50 % coagulation at 60 C in 30.7 s
    assert liver.arrhenius.time_to_threshold_s(60.0, liver.threshold) == pytest.approx(30.7, rel=0.01)
    nerve = coagulation_criterion("nerve")
    assert nerve.proxy == "muscle" and nerve.threshold == 58.0 and "as muscle" in nerve.label
    # no number both calibrates and validates; validated ids are validation entries of rf_published
    published = load_catalog("rf_published")
    assert list(cat["roles"]["calibrates"]) == []
    for cid in cat["roles"]["validates"]:
        assert published[cid]["role"] == "validation", cid
    assert {e["role"] for e in published.values()} <= {"validation", "verification", "recorded"}


def test_tracker_threshold_and_arrhenius():
    temp = np.array([21.0, 60.0, 70.0])
    one = CoagulationTracker({"egg-white": np.ones(3, bool)}, temp)
    field, threshold, label = one.field(np.array([50.0, 61.0, 80.0]))
    assert threshold == 61.0 and field.tolist() == [50.0, 61.0, 80.0] and "egg-white" in label
    liver = CoagulationTracker({"liver": np.ones(3, bool)}, temp)
    for _ in range(10):
        liver.advance(temp, 1.0)  # constant temperature: trapezoid rule is exact
    omega, threshold, _ = liver.field(temp)
    rate = coagulation_criterion("liver").arrhenius.rate(temp)
    np.testing.assert_allclose(omega, 10.0 * rate, rtol=1e-12)
    # two tissues: field / own threshold, the larger where a node touches both
    mixed = CoagulationTracker({"egg-white": np.array([True, True, False]), "chicken-breast": np.array([False, True, True])}, temp)
    index, threshold, _ = mixed.field(np.array([61.0, 55.0, 26.5]))
    assert threshold == 1.0
    np.testing.assert_allclose(index, [1.0, 55.0 / 53.0, 0.5])


@cache
def _egg_white_2d():
    return simulate_rf(RFSettings(tissue="egg-white", ex_vivo=True, time_s=30.0))


def test_2d_coagulation_is_the_isotherm_at_the_medium_threshold():
    r = _egg_white_2d()
    f = r.fields
    expected = measure_lesion(f.needle_mesh, f.max_temp_c, 61.0, "x")
    c = r.coagulation
    assert (c.threshold, c.width_mm, c.length_mm, c.volume_mm3) == (61.0, expected.width_mm, expected.length_mm, expected.volume_mm3)
    assert 0 < c.width_mm < r.isotherm50.width_mm  # 61 C lies inside the 50 C isotherm
    # the lethal criteria are measured as before, from their own fields
    assert r.lesion == measure_lesion(f.needle_mesh, f.omega, 1.0, "arrhenius")
    assert r.isotherm50 == measure_lesion(f.needle_mesh, f.max_temp_c, 50.0, "isotherm50")


def test_2d_json_keeps_old_keys_and_adds_coagulation():
    d = _egg_white_2d().to_dict()
    assert sorted(d) == sorted(OLD_2D_KEYS + ["coagulation"])
    assert set(d["coagulation"]) == SHAPE_KEYS == set(d["isotherm50"])
    assert d["lesion"]["criterion"] == "arrhenius" and d["isotherm50"]["threshold"] == 50.0 and d["cem43"]["criterion"] == "cem43"


def test_3d_coagulation_and_json():
    spec = Mesh3DSpec(h_fine_m=0.8e-3, sectors=8, fine_margin_m=3e-3, domain_m=20e-3)
    r = simulate_rf3d(RFSettings(time_s=20.0), [NeedlePose(np.zeros(3), np.array([0.0, 0.0, -1.0]))], mesh=spec)
    d = r.to_dict()
    assert sorted(d) == sorted(OLD_3D_KEYS + ["coagulation", "electrodes"])
    assert d["electrodes"] == "monopolar" and d["bipolar"] is None and d["joined"] is None  # one needle: no strip
    m = r.fields.mesh
    expected = measure_lesion3d(m, r.fields.max_temp_c, 58.0, "x", tissue_edges(m), TetGeometry(m.nodes, m.tets).volume)
    assert r.coagulation.threshold == 58.0 and "muscle" in r.coagulation.criterion
    assert r.coagulation.width_mm == pytest.approx(expected.width_mm) and r.coagulation.volume_mm3 == pytest.approx(expected.volume_mm3)
    assert r.coagulation.width_mm < r.isotherm50.width_mm
