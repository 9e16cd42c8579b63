"""Arteries are judged at their wall (issue 10, part 3): wall sampling and wall criteria.

Scene (mm): muscle, a large artery along z (lumen radius 5 mm, axis x = y = 0) and a
small artery along z (radius 0.75 mm, axis x = 12, y = 0), both tissue "blood".
"""

import re

import numpy as np
import pytest

from neurolysis.anatomy.scene import CriticalStructure, Scene
from neurolysis.fields import FieldSample
from neurolysis.outcome.risk import assess_risk, injury_verdict, structure_points

MM = 1e-3
R_BIG, R_SMALL, X_SMALL = 5.0, 0.75, 12.0
LO, HI = np.array([-10, -10, -10]) * MM, np.array([16, 10, 10]) * MM


def label_at(p):
    p = np.atleast_2d(p)
    lab = np.zeros(p.shape[0], int)
    lab[np.hypot(p[:, 0], p[:, 1]) <= R_BIG * MM] = 1
    lab[np.hypot(p[:, 0] - X_SMALL * MM, p[:, 1]) <= R_SMALL * MM] = 2
    return lab


def scene() -> Scene:
    critical = (CriticalStructure("big artery", "artery", regions=("big",)), CriticalStructure("small artery", "artery", regions=("small",)))
    bounds = (np.array([-50, -50, -50]) * MM, np.array([50, 50, 50]) * MM)
    return Scene("vessels", "", bounds, ("muscle", "big", "small"), ("muscle", "blood", "blood"), label_at, (), critical, None)


def _radial_mm(p, x0):
    return np.hypot(p[:, 0] - x0 * MM, p[:, 1]) / MM


@pytest.mark.parametrize("spacing_mm", [0.5, 1.0])
def test_wall_points_lie_in_the_shell_and_none_in_the_lumen(spacing_mm):
    where = structure_points(scene(), LO, HI, spacing_mm * MM)
    big, small = (where.points[i] for i in where.index)
    assert len(big) > 500 and len(small) > 20
    assert np.all(label_at(big) != 1) and np.all(label_at(small) != 2)  # no lumen point counts
    # lumen size from the grid, and the wall thickness from data (0.13 x radius, >= 0.1 mm)
    d_big, d_small = where.lumen_diameter_mm
    assert d_big == pytest.approx(2 * R_BIG, rel=0.15) and abs(d_small - 2 * R_SMALL) <= 2 * spacing_mm  # to about one spacing
    r = _radial_mm(big, 0.0) - R_BIG
    assert r.min() >= -1e-9 and r.max() <= 0.13 * d_big / 2 + spacing_mm / 50  # bisection to spacing/64
    assert np.mean(r < spacing_mm / 32) > 0.2  # points on the lumen surface ...
    assert np.mean(r > 0.13 * R_BIG * 0.6) > 0.2  # ... and out through the wall
    ang = np.arctan2(big[:, 1], big[:, 0])
    assert len(np.unique(np.floor((ang + np.pi) / (np.pi / 4)) % 8)) == 8  # all the way round
    rs = _radial_mm(small, X_SMALL) - R_SMALL
    t_small = max(0.1, 0.13 * d_small / 2)  # wall from the grid's lumen size, at least 0.1 mm
    assert rs.min() >= -1e-9 and rs.max() <= t_small + spacing_mm / 50


def _sampler(hot_lumen=False, hot_wall=False, agent_wall=0.0):
    def sampler(p):
        r_big = _radial_mm(p, 0.0)
        inside = r_big < R_BIG - 0.01
        t = np.full(len(p), 37.0)
        t[inside] = 90.0 if hot_lumen else 37.0
        wall = (r_big >= R_BIG - 0.01) & (r_big <= R_BIG + 1.0)
        wall |= np.abs(_radial_mm(p, X_SMALL) - R_SMALL) <= 0.5
        if hot_wall:
            t[wall] = 75.0
        agent = np.where(wall, agent_wall, 0.0)
        lethal = t > 55.0
        return FieldSample(t, np.where(lethal, 5.0, 0.0), np.where(lethal, 1e3, 0.0), lethal, agent, agent_solute="phenol")  # phenol: judged by its fraction

    return sampler


def test_a_hot_lumen_alone_is_no_injury_a_hot_wall_is():
    box = (LO, HI)
    lumen_only = {r.name: r for r in assess_risk(scene(), _sampler(hot_lumen=True), box_m=box, spacing_m=0.5 * MM)}
    assert not lumen_only["big artery"].injured and lumen_only["big artery"].peak_temp_c == 37.0
    wall = {r.name: r for r in assess_risk(scene(), _sampler(hot_wall=True), box_m=box, spacing_m=0.5 * MM)}
    for name in ("big artery", "small artery"):
        assert wall[name].injured and "68.7 C" in wall[name].reason, wall[name].reason


def test_agent_at_the_wall_flags_a_small_artery_not_a_large_one():
    risks = {r.name: r for r in assess_risk(scene(), _sampler(agent_wall=1.0), box_m=(LO, HI), spacing_m=0.5 * MM)}
    assert risks["small artery"].injured and "spasm" in risks["small artery"].reason
    big = risks["big artery"]
    assert not big.injured and big.agent_fraction == pytest.approx(1.0)
    assert re.search(r"fraction of the injected concentration\) 100 % at the wall: not applied, lumen ~1[01] mm > 4 mm", big.reason), big.reason


def test_size_rule_applies_only_with_a_known_lumen_size():
    values = {"peak_temp_c": 37.0, "omega": 0.0, "cem43_min": 0.0, "agent_fraction": 1.0, "agent_solute": "phenol"}
    assert injury_verdict("artery", False, values)[0]  # unknown size (Monte Carlo): safe side
    assert injury_verdict("artery", False, values | {"lumen_diameter_mm": 1.5})[0]
    assert not injury_verdict("artery", True, values | {"lumen_diameter_mm": 20.0})[0]
    assert injury_verdict("artery", False, values | {"peak_temp_c": 70.0, "lumen_diameter_mm": 20.0})[0]
