"""3D chemical neurolysis engine: mass balance, the radial exact solution, monotonicity, kill, sampling, input checks.

Coarse bolus-scale mesh (1 mm, 16 sectors) so the file runs in well under a minute.
"""

import math

import numpy as np
import pytest
from scipy.special import erf

from neurolysis.chemistry import transport_coefficients
from neurolysis.engines.chemical import simulate_chemical
from neurolysis.fields import NeedlePose
from neurolysis.physics.mesh3d import Mesh3DSpec
from neurolysis.validation import ValidationError

MESH = Mesh3DSpec(h_fine_m=1.0e-3, sectors=16, fine_margin_m=12e-3, domain_m=25e-3, growth=1.3, edge_levels=1)
POSE = NeedlePose(np.array([0.01, -0.02, 0.005]), np.array([0.3, -0.5, -0.8]))
SHORT_H = 10.0 / 60.0


def run(agent="ethanol", pct=100.0, ml=0.5, n=1, interval_h=SHORT_H, **kw):
    return simulate_chemical(agent, pct, ml, n, interval_h, 1.0, kw.pop("pose", POSE), mesh=kw.pop("mesh", MESH), **kw)


@pytest.fixture(scope="module")
def twice():
    return run(n=2, interval_h=2.0)


def sphere_solution(r, t, radius, c0, a, k):
    """Uniform sphere (radius R, c0) diffusing in infinite space with clearance:
    c = c0 e^(-kt) / 2 [erf((R - r)/s) + erf((R + r)/s) - s / (r sqrt(pi)) (e^(-(R-r)^2/s^2) - e^(-(R+r)^2/s^2))],  s = 2 sqrt(a t)."""
    s = 2.0 * math.sqrt(a * t)
    r = np.maximum(r, 1e-12)
    term = s / (r * math.sqrt(math.pi)) * (np.exp(-((radius - r) / s) ** 2) - np.exp(-((radius + r) / s) ** 2))
    return c0 * math.exp(-k * t) * 0.5 * (erf((radius - r) / s) + erf((radius + r) / s) - term)


def test_mass_balance_clearance_only(twice):
    for m in twice.mass_balance:
        # amount lost over the interval equals the clearance integral sum m k c dt (backward Euler, exact)
        assert m["relative_error"] < 1e-6
        assert m["min_concentration_pct"] >= 0.0  # invariant: M-matrix step >= 0, CG round-off (~1e-25) clipped
    first = twice.mass_balance[0]
    assert first["start_pct_ml"] == pytest.approx(first["injected_pct_ml"], rel=1e-12)
    # second injection starts from the residual plus a new bolus
    second = twice.mass_balance[1]
    assert second["start_pct_ml"] == pytest.approx(first["end_pct_ml"] + second["injected_pct_ml"], rel=1e-12)
    # uniform k = 7.9e-4 /s: S(2 h) = S0 exp(-k t) (3.5e-3 of the dose) up to the time error (measured -8 %)
    k = transport_coefficients("ethanol", "muscle").clearance_per_s
    assert first["end_pct_ml"] == pytest.approx(math.exp(-k * 7200.0) * 50.0, rel=0.15)


def test_against_radial_exact_solution():
    t = 3600.0
    res = run(ml=0.5, interval_h=t / 3600.0)
    co = transport_coefficients("ethanol", "muscle")
    a = co.diffusivity_m2_s / co.capacity_fraction  # permeant agent: capacity theta, apparent diffusivity D_eff / theta
    c0 = 100.0 * co.volume_fraction / co.capacity_fraction  # the bolus diluted at once into the tissue water (issue 10 part 2)
    radius = res.bolus_radius_mm * 1e-3
    r = np.linspace(0.0, 16e-3, 33)
    f = res.fields
    errors = []
    for direction in ([1, 0, 0], [0, 0, 1], [0, 0, -1], [0.6, 0.48, 0.64]):
        d = np.asarray(direction, float) / np.linalg.norm(direction)
        local = r[:, None] * d
        numeric = f.mesh.interpolate(f.concentration_pct, local, np.nan)
        exact = sphere_solution(r, t, radius, c0, a, co.clearance_per_s)
        errors.append(np.abs(numeric - exact).max() / exact.max())
    # stated tolerance: max error <= 10 % of the exact peak at 1 h (measured 8.4 % at h = 1 mm). Was 5 % (measured 3 %) before
    # issue 10 part 2: with the capacity theta the apparent diffusivity is 3.75x smaller, so the front at 1 h is as sharp
    # (width ~0.7 mm ~ h) as the old 10-min case, which measured 7.9-11.6 %
    assert max(errors) < 0.10, errors


def test_more_concentration_volume_injections_kill_more(twice):
    weak = run(pct=25.0, ml=0.5)  # was 8 %: diluted x phi/theta = 0.27 it no longer reaches C_f (issue 10 part 2)
    strong = run(pct=100.0, ml=0.5)
    small = run(pct=100.0, ml=0.25)
    assert 0 < weak.lethal_volume_ml[0] < strong.lethal_volume_ml[0]
    assert small.lethal_volume_ml[0] < strong.lethal_volume_ml[0]
    assert small.spread_volume_ml[0] < strong.spread_volume_ml[0]
    # a second identical bolus 2 h later kills about the same region (the fast term is threshold-like; issue 10 part 2): not less
    assert twice.lethal_volume_ml[0] <= twice.lethal_volume_ml[1]
    assert twice.tip_dose[0] < twice.tip_dose[1]


def test_dilute_ethanol_spares_the_tip_strong_kills():
    dilute = run(pct=2.0, ml=0.5, interval_h=0.5)
    strong = run(pct=50.0, ml=0.5, interval_h=0.5)
    tip = POSE.tip_m[None, :]
    assert dilute.lethal_volume_ml[0] == 0.0
    assert not dilute.sample(tip).lethal[0]
    assert dilute.tip_dose[0] < 0.5
    assert strong.sample(tip).lethal[0]
    # the lethal region of a strong bolus is about the bolus sphere (r_b = 8.4 mm): 1.5-4 mL
    assert 1.5 < strong.lethal_volume_ml[0] < 4.0


def test_sample_consistent(twice):
    d = POSE.direction
    e1 = np.cross(d, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    pts = POSE.tip_m + np.linspace(0, 30e-3, 61)[:, None] * e1
    s = twice.sample(pts)
    lam = twice.lethal_index(pts)
    assert s.lethal.shape == (61,) and np.array_equal(s.lethal, lam >= 1.0)
    assert np.all(s.peak_temp_c == 37.0) and np.all(s.omega == 0.0) and np.all(s.cem43_min == 0.0)
    assert s.lethal[0] and not s.lethal[-1]
    # the lethal segment ends near the bolus radius (within 3 mesh cells)
    edge_mm = np.linspace(0, 30, 61)[np.flatnonzero(s.lethal)[-1]]
    assert abs(edge_mm - twice.bolus_radius_mm) < 3.0
    # after the first injection the region is no larger than after both
    first = twice.sample_after(0, pts)
    assert np.all(first.lethal <= s.lethal)
    assert np.array_equal(twice.sampler_after(-1)(pts).lethal, s.lethal)
    # far away (off the mesh) is unharmed
    assert not twice.sample(POSE.tip_m[None, :] + 1.0).lethal[0]
    d = twice.to_dict()
    assert d["lethal_volume_ml"] == list(twice.lethal_volume_ml) and d["systemic"]["ethanol_g"] > 0
    with pytest.raises(ValidationError):
        twice.sample_after(2, pts)


@pytest.mark.parametrize(
    "args",
    [
        ("vodka", 40.0, 0.5, 1, 24.0, 1.0),
        ("ethanol", 150.0, 0.5, 1, 24.0, 1.0),
        ("ethanol", 100.0, 0.0, 1, 24.0, 1.0),
        ("phenol-water", 10.0, 0.5, 1, 24.0, 1.0),
        ("ethanol", 100.0, 0.5, 0, 24.0, 1.0),
        ("ethanol", 100.0, 0.5, 1.5, 24.0, 1.0),
        ("ethanol", float("nan"), 0.5, 1, 24.0, 1.0),
        ("ethanol", 100.0, float("nan"), 1, 24.0, 1.0),
        ("ethanol", 100.0, 0.5, 1, 0.0, 1.0),
        ("ethanol", 100.0, 0.5, 1, 24.0, 0.0),
        ("ethanol", 100.0, 0.5, 1, float("inf"), 1.0),
    ],
)
def test_bad_input_rejected_before_solve(args, monkeypatch):
    import neurolysis.engines.chemical as chem

    def no_mesh(*a, **k):
        raise AssertionError("mesh built before validation")

    monkeypatch.setattr(chem, "build_needle_mesh3d", no_mesh)
    with pytest.raises(ValidationError):
        chem.simulate_chemical(*args, POSE)


def test_lethal_volume_consistent_under_refinement(twice):
    """lethal_volume_ml integrates the P1 indicator per element (issue 10 part 2): h = 1.25 -> 1.0 mm changes it by
    < 10 % (measured 3.44 -> 3.32 mL, 3.6 %; 3.11 mL at 0.75 mm; whole node volumes gave 3.00 / 2.94 / 2.83)."""
    coarse = run(interval_h=SHORT_H, mesh=Mesh3DSpec(h_fine_m=1.25e-3, sectors=12, fine_margin_m=12e-3, domain_m=25e-3, growth=1.3, edge_levels=1))
    fine = run(interval_h=SHORT_H)
    assert coarse.lethal_volume_ml[0] == pytest.approx(fine.lethal_volume_ml[0], rel=0.10)
    assert fine.lethal_volume_ml[0] < fine.fields.node_volume_m3.sum() * 1e6
