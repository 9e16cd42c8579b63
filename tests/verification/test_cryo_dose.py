"""Cryo dose (issue 19, part 3): the probe cools over its cool-down time, tissue dies only after
a hold at or below the lethal isotherm (time summed over the freezes), and a vessel lumen is
held at body temperature. Hand-checkable cases on small meshes."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from neurolysis.anatomy.templates import load_template
from neurolysis.cryoprobes import Cryoprobe, cryoprobe
from neurolysis.engines.cryo import simulate_cryo
from neurolysis.engines.poses import tissue_at
from neurolysis.fields import NeedlePose
from neurolysis.physics.freezing import lethal_hold_s
from neurolysis.physics.mesh3d import Mesh3DSpec
from neurolysis.physics.phase_change import RAMP_STEPS_PER_TAU, freeze_thaw_phases

DOWN = np.array([0.0, 0.0, -1.0])
COARSE = Mesh3DSpec(h_fine_m=0.6e-3, sectors=12, fine_margin_m=5e-3, domain_m=8e-3, growth=1.3, edge_levels=2)
INSTANT = Cryoprobe(id="test-instant", gas="N2O", outer_diameter_mm=1.4, active_length_mm=5.0, tip_temp_c=-89.0, cooldown_s=0.0)


@cache
def _run(probe, cycles: tuple):
    return simulate_cryo(probe, list(cycles), NeedlePose(np.zeros(3), DOWN), mesh=COARSE, dt_s=0.5)


def test_probe_ramps_to_its_tip_temperature():
    """T(t) = 37 + (T_tip - 37)(1 - exp(-t / tau)) at each step's middle, then T_tip."""
    phases = freeze_thaw_phases(np.array([0]), -89.0, (("freeze", 30.0), ("thaw", 5.0), ("freeze", 2.0)), cooldown_s=3.0, start_temp_c=37.0)
    first = phases[0]
    step = 3.0 / RAMP_STEPS_PER_TAU
    assert first.duration_s == step
    assert float(first.boundary.fixed_temp_c[0]) == pytest.approx(37.0 - 126.0 * (1.0 - math.exp(-0.5 * step / 3.0)))
    freeze1 = [p for p in phases[: phases.index(next(p for p in phases if p.label == "thaw"))]]
    assert sum(p.duration_s for p in freeze1) == pytest.approx(30.0)
    assert float(freeze1[-1].boundary.fixed_temp_c[0]) == -89.0  # held after five time constants
    second = phases[len(freeze1) + 1 :]
    assert float(second[0].boundary.fixed_temp_c[0]) == pytest.approx(float(first.boundary.fixed_temp_c[0]))  # each freeze ramps anew
    assert min(float(p.boundary.fixed_temp_c[0]) for p in second) > -89.0 + 126.0 * math.exp(-2.0 / 3.0) - 1.0  # 2 s: not yet cold
    assert len(freeze_thaw_phases(np.array([0]), -89.0, (("freeze", 30.0),))) == 1  # no cool-down: held at once


def test_a_lumen_is_held_at_body_temperature_in_every_phase():
    phases = freeze_thaw_phases(np.array([0, 1]), -89.0, (("freeze", 3.0), ("thaw", 2.0)), held_nodes=np.array([7, 8]), held_temp_c=37.0)
    for p in phases:
        held = dict(zip(p.boundary.fixed_nodes.tolist(), p.boundary.fixed_temp_c.tolist(), strict=True))
        assert held[7] == held[8] == 37.0
    assert 0 not in dict(zip(phases[-1].boundary.fixed_nodes.tolist(), phases[-1].boundary.fixed_temp_c.tolist(), strict=True))  # thaw: probe free


@pytest.mark.parametrize("probe", [INSTANT, cryoprobe("n2o-1.4mm")], ids=["no cool-down", "catalogued cool-down"])
def test_a_one_second_freeze_kills_nothing(probe):
    """1 s is shorter than the 5 s hold: nothing can die, even where the tissue went below -20 C
    (the probe without a cool-down touches it at -89 C at once)."""
    result = _run(probe, (("freeze", 1.0),))
    assert result.lethal_zone.volume_mm3 == 0.0
    assert not np.any(result.fields.cold_time_s >= lethal_hold_s())
    if probe is INSTANT:
        assert result.fields.min_temp_c.min() < -20.0  # below the isotherm, not long enough
    else:  # one ramp step of 1 s at its mid-value 37 - 126 (1 - exp(-0.5 / 3)) = 17.7 C: no ice at all
        assert result.fields.min_temp_c.min() > 17.0


def test_death_needs_the_hold_and_freezes_add():
    """4 s at -89 C leaves the probe surface 4 s - 0.226 s below -20 C (the first 0.5 s step goes
    linearly from 37 to -89 C: below -20 C for 0.5 x 69 / 126 of it): < 5 s, nothing dies; two
    such freezes separated by a 1 s thaw put 7.55 s there: the surface layer dies."""
    lost = 0.5 * (37.0 + 20.0) / 126.0
    one = _run(INSTANT, (("freeze", 4.0),))
    two = _run(INSTANT, (("freeze", 4.0), ("thaw", 1.0), ("freeze", 4.0)))
    assert one.lethal_zone.volume_mm3 == 0.0 and one.fields.cold_time_s.max() == pytest.approx(4.0 - lost, abs=1e-6)
    assert two.lethal_zone.volume_mm3 > 0.0 and two.fields.cold_time_s.max() >= 8.0 - 2 * lost - 1e-6
    held = _run(INSTANT, (("freeze", 30.0),))
    reached = held.fields.min_temp_c <= held.lethal_isotherm_c
    lethal = held.fields.cold_time_s >= lethal_hold_s()
    assert np.all(reached[lethal]) and np.any(reached & ~lethal)  # the edge touched -20 C for < 5 s: spared


@pytest.mark.slow
def test_the_vessel_lumen_stays_at_body_temperature():
    """The default genicular cryo plan's needle beside the superomedial genicular artery: its lumen
    nodes are held at 37 C, so nothing inside it freezes."""
    scene = load_template("genicular")
    pose = scene.placements[("superomedial genicular nerve", "parallel")]
    result = simulate_cryo(None, None, pose, scene)  # the catalogued default probe and protocol, as the default plan
    f = result.fields
    lumen = f.mesh.tissue_nodes.copy()
    lumen &= np.asarray(tissue_at(scene, f.frame.to_world(f.mesh.nodes), "muscle")) == "blood"
    assert lumen.any()
    assert np.all(f.min_temp_c[lumen] >= 37.0 - 1e-6)
