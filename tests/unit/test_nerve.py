"""Axon kill, lesioned length and relief against analytic lethal regions.

The nerve is straight along z from -20 to +20 mm, radius 1 mm, 10 % motor, 20 % touch,
20 % A-delta, 50 % C; the end organ lies 15 mm beyond its distal end. Lethal regions are
exact shapes (cylinder, sphere, half-space), so which axons die is known in closed form.
"""

import json
import math

import numpy as np
import pytest

from neurolysis.anatomy.centreline import nerve_frame
from neurolysis.anatomy.scene import FibreClass, Nerve
from neurolysis.fields import FieldSample
from neurolysis.outcome.axons import axon_population, nerve_outcome
from neurolysis.outcome.recovery_cases import relief_for_lesion
from neurolysis.validation import ValidationError

R_NERVE = 1e-3
FIBRES = (
    FibreClass("A-alpha", "motor", 12.0, 0.10, True),
    FibreClass("A-beta", "touch", 8.0, 0.20, True),
    FibreClass("A-delta", "pain", 3.0, 0.20, True),
    FibreClass("C", "pain", 1.0, 0.50, False),
)
SENSORY = (FibreClass("A-delta", "pain", 3.0, 0.3, True), FibreClass("C", "pain", 1.0, 0.7, False))
REQUIRED_KEYS = {
    "nerve", "killed_fraction_by_class", "pain_fibres_killed_fraction", "motor_fibres_killed_fraction",
    "lesioned_length_mm", "pain_block", "relief_months", "motor_deficit",
}


def straight_nerve(fibres=FIBRES, kind="mixed") -> Nerve:
    return Nerve("test", np.array([[0, 0, -20e-3], [0, 0, 20e-3]]), R_NERVE, fibres, 15e-3, kind=kind)


def sample_from(lethal: np.ndarray) -> FieldSample:
    return FieldSample(np.where(lethal, 80.0, 37.0), lethal * 5.0, lethal * 1e3, lethal)


def cylinder(radius_m, z0_m, z1_m, cx_m=0.0):
    """Lethal where (x - cx)^2 + y^2 <= r^2 and z0 <= z <= z1."""
    def sampler(p):
        return sample_from(((p[:, 0] - cx_m) ** 2 + p[:, 1] ** 2 <= radius_m**2) & (p[:, 2] >= z0_m) & (p[:, 2] <= z1_m))
    return sampler


def sphere(center_m, radius_m):
    c = np.asarray(center_m, float)

    def sampler(p):
        return sample_from(np.sum((p - c) ** 2, axis=1) <= radius_m**2)
    return sampler


def nothing(p):
    return sample_from(np.zeros(p.shape[0], bool))


def test_cylinder_around_nerve_kills_all_over_6_mm():
    """A lethal cylinder (r 1.5 mm > nerve 1 mm) over z in [-3, 3] mm kills every axon; the
    lesion is 6 mm long and starts 17 mm from the proximal end (to one 0.1 mm step)."""
    out = nerve_outcome(straight_nerve(), cylinder(1.5e-3, -3e-3, 3e-3), "rf")
    assert all(v == 1.0 for v in out.killed_fraction_by_class.values())
    assert out.pain_fibres_killed_fraction == 1.0 and out.motor_fibres_killed_fraction == 1.0
    assert out.lesioned_length_mm == pytest.approx(6.0, abs=out.step_mm)
    assert out.any_kill_length_mm == pytest.approx(6.0, abs=out.step_mm)
    assert out.lesion_start_mm == pytest.approx(17.0, abs=out.step_mm)
    assert np.allclose(out.axons.died_at_mm, 17.0, atol=out.step_mm)
    assert np.allclose(out.axons.lethal_length_mm, 6.0, atol=out.step_mm)
    assert out.pain_block and out.relief.median > 0 and out.relief.p10 < out.relief.median < out.relief.p90
    assert out.motor_deficit and "MOTOR DEFICIT" in out.motor_deficit_note


def test_length_resolved_to_step():
    for step in (0.05e-3, 0.1e-3, 0.4e-3):
        out = nerve_outcome(straight_nerve(), cylinder(1.5e-3, -2.37e-3, 3.11e-3), "rf", n_axons=200, step_m=step)
        assert out.step_mm <= step * 1e3 + 1e-12
        assert out.lesioned_length_mm == pytest.approx(5.48, abs=out.step_mm)


def test_sphere_over_half_the_cross_section_kills_half():
    """Sphere of radius 20 mm centred 20 mm off the axis: an axon at (x, y) dies iff
    (x - 20)^2 + y^2 <= 400 mm^2 (closest approach at z = 0), i.e. x >= 20 - sqrt(400 - y^2):
    just under half the disc. The expected fraction is integrated on a fine grid."""
    big = 20e-3
    out = nerve_outcome(straight_nerve(), sphere([big, 0, 0], big), "rf", n_axons=4000)
    g = np.linspace(-R_NERVE, R_NERVE, 1501)
    x, y = np.meshgrid(g, g)
    disc = x**2 + y**2 <= R_NERVE**2
    expected = float(((x - big) ** 2 + y**2 <= big**2)[disc].mean())
    assert 0.45 < expected < 0.5
    sd = math.sqrt(expected * (1 - expected) / 4000)
    killed = out.axons.killed.mean()
    assert abs(killed - expected) < 4 * sd, f"killed {killed:.3f} vs analytic {expected:.3f}"
    assert not out.pain_block and out.relief.median == 0.0


def test_no_lethal_region_kills_none_pulsed():
    out = nerve_outcome(straight_nerve(), nothing, "pulsed-rf")
    assert out.pain_fibres_killed_fraction == 0.0 and not out.axons.killed.any()
    assert not out.pain_block and not out.motor_deficit
    assert out.relief.median is None and out.relief.mechanism == "not-modelled"
    assert "neuromodulation" in out.relief.note
    json.dumps(out.to_dict())


def test_pulsed_never_claims_a_block_even_if_sampler_says_lethal():
    out = nerve_outcome(straight_nerve(), cylinder(2e-3, -3e-3, 3e-3), "pulsed-rf", n_axons=200)
    assert not out.pain_block and out.relief.median is None


def test_thermal_method_without_lesion_gives_no_relief():
    out = nerve_outcome(straight_nerve(), nothing, "rf")
    assert not out.pain_block and out.relief.median == 0.0 and out.lesion_start_mm is None
    assert out.lesioned_length_mm == 0.0


@pytest.mark.parametrize("offset_mm, blocked", [(0.0, True), (3.5, False), (10.0, False)])
def test_moving_lesion_away_loses_block(offset_mm, blocked):
    out = nerve_outcome(straight_nerve(), sphere([offset_mm * 1e-3, 0, 0], 3e-3), "rf", n_axons=1000)
    assert out.pain_block is blocked
    if offset_mm >= 10.0:
        assert out.pain_fibres_killed_fraction == 0.0


def test_longer_lesion_somewhat_longer_relief_not_proportional():
    """Three times the lesion adds the scar crossing of the extra length, not three times the relief."""
    short = nerve_outcome(straight_nerve(), cylinder(1.5e-3, -2e-3, 2e-3), "rf", n_axons=500)
    long = nerve_outcome(straight_nerve(), cylinder(1.5e-3, -6e-3, 6e-3), "rf", n_axons=500)
    assert long.lesioned_length_mm > 2.5 * short.lesioned_length_mm
    assert short.relief.median < long.relief.median < 1.5 * short.relief.median


def test_incomplete_kill_shorter_then_no_relief():
    """Cylinder r 1.5 mm moved off the axis: complete, then ~88 %, then ~56 % of the cross-section."""
    nerve = straight_nerve()
    full, partial, half = (nerve_outcome(nerve, cylinder(1.5e-3, -5e-3, 5e-3, cx), "rf") for cx in (0.0, 0.8e-3, 1.3e-3))
    assert full.pain_fibres_killed_fraction == 1.0
    assert 0.8 <= partial.pain_fibres_killed_fraction < 0.95 and partial.pain_block
    assert partial.relief.median < full.relief.median
    assert half.pain_fibres_killed_fraction < 0.8 and not half.pain_block and half.relief.median == 0.0


def test_cryo_relief_shorter_than_rf_for_same_lesion():
    rf = nerve_outcome(straight_nerve(), cylinder(1.5e-3, -3e-3, 3e-3), "rf", n_axons=300)
    cryo = nerve_outcome(straight_nerve(), cylinder(1.5e-3, -3e-3, 3e-3), "cryo", n_axons=300)
    assert cryo.pain_block and cryo.relief.median < rf.relief.median
    assert cryo.injury_grades == {"sunderland-2": 1.0} and rf.injury_grades == {"sunderland-3": 1.0}


def test_grade_follows_the_samplers_tube_destruction():
    """A sampler that marks tubes destroyed only inside r < 0.5 mm: axons killed there are
    grade 3, the rest of the killed rim grade 2, and the rim regrows sooner."""
    def sampler(p):
        r2 = p[:, 0] ** 2 + p[:, 1] ** 2
        lethal = (r2 <= (1.5e-3) ** 2) & (np.abs(p[:, 2]) <= 3e-3)
        sample = sample_from(lethal)
        return FieldSample(sample.peak_temp_c, sample.omega, sample.cem43_min, lethal, tubes_destroyed=lethal & (r2 <= (0.5e-3) ** 2))

    out = nerve_outcome(straight_nerve(), sampler, "rf", n_axons=2000)
    core = out.injury_grades["sunderland-3"]
    assert core == pytest.approx(0.25, abs=0.04) and out.injury_grades["sunderland-2"] == pytest.approx(1 - core)
    all_scar = nerve_outcome(straight_nerve(), cylinder(1.5e-3, -3e-3, 3e-3), "rf", n_axons=2000)
    assert out.relief.median < all_scar.relief.median


def test_reproducible_with_seed():
    s = cylinder(1.5e-3, -3e-3, 3e-3, 0.9e-3)
    a = nerve_outcome(straight_nerve(), s, "rf", seed=7, n_axons=800)
    b = nerve_outcome(straight_nerve(), s, "rf", seed=7, n_axons=800)
    c = nerve_outcome(straight_nerve(), s, "rf", seed=8, n_axons=800)
    assert a.to_dict(include_axons=True) == b.to_dict(include_axons=True)
    assert not np.array_equal(a.axons.x_mm, c.axons.x_mm)


@pytest.mark.parametrize("n", [1000, 2000, 2001, 37])
def test_fibre_fractions_respected(n):
    pop = axon_population(straight_nerve(), n, seed=3)
    counts = np.bincount(pop.class_index, minlength=4)
    assert counts.sum() == n
    assert np.all(np.abs(counts - np.array([f.fraction for f in FIBRES]) * n) < 1.0)
    r = np.hypot(pop.x_m, pop.y_m)
    assert r.max() <= R_NERVE
    if n >= 1000:  # uniform over the disc: half the axons inside r = R / sqrt(2)
        assert abs(np.mean(r <= R_NERVE / math.sqrt(2)) - 0.5) < 0.05


def test_no_motor_fibres_reports_none():
    out = nerve_outcome(straight_nerve(SENSORY, "sensory"), cylinder(1.5e-3, -3e-3, 3e-3), "rf", n_axons=200)
    assert out.motor_fibres_killed_fraction is None and not out.motor_deficit
    assert out.to_dict()["motor_fibres_killed_fraction"] is None


def test_to_dict_contract():
    d = nerve_outcome(straight_nerve(), cylinder(1.5e-3, -3e-3, 3e-3), "rf", n_axons=200).to_dict()
    assert REQUIRED_KEYS <= set(d)
    assert set(d["relief_months"]) == {"median", "p10", "p90"}
    assert set(d["killed_fraction_by_class"]) == {"A-alpha", "A-beta", "A-delta", "C"}
    json.dumps(d)


def test_one_sampler_call():
    calls = []

    def counting(p):
        calls.append(p.shape)
        return nothing(p)

    nerve_outcome(straight_nerve(), counting, "rf", n_axons=300, step_m=0.2e-3)
    assert len(calls) == 1 and calls[0] == (200 * 300, 3)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_axons": 0}, {"n_axons": -5}, {"n_axons": 2.5}, {"step_m": float("nan")}, {"step_m": 0.0}, {"seed": -1}, {"n_axons": True}],
)
def test_bad_input_raises(kwargs):
    with pytest.raises(ValidationError):
        nerve_outcome(straight_nerve(), nothing, "rf", **kwargs)


def test_unknown_method_and_bad_fibres_raise():
    with pytest.raises(ValidationError, match="method"):
        nerve_outcome(straight_nerve(), nothing, "laser")
    bad = (FibreClass("C", "pain", 1.0, 0.5, False),)
    with pytest.raises(ValidationError, match="sum"):
        nerve_outcome(straight_nerve(bad), nothing, "rf")


def test_relief_for_lesion_monotone_in_length_and_distance():
    a = relief_for_lesion(5e-3, 15e-3, "rf").median
    b = relief_for_lesion(10e-3, 15e-3, "rf").median
    c = relief_for_lesion(10e-3, 60e-3, "rf").median
    assert a < b < c


def test_frame_on_curved_nerve():
    """Quarter circle of radius 20 mm in the xy-plane: the transported frame stays
    orthonormal and does not twist (u or w stays along z), offsets keep their radius."""
    t = np.linspace(0, np.pi / 2, 40)
    line = np.column_stack([20e-3 * np.cos(t), 20e-3 * np.sin(t), np.zeros_like(t)])
    f = nerve_frame(line, 0.1e-3)
    assert f.length_m == pytest.approx(20e-3 * np.pi / 2, rel=1e-3)
    for a, b in ((f.u, f.w), (f.u, f.tangent), (f.w, f.tangent)):
        assert np.allclose(np.sum(a * b, axis=1), 0, atol=1e-9)
    zcomp = np.maximum(np.abs(f.u[:, 2]), np.abs(f.w[:, 2]))
    assert np.allclose(zcomp, 1.0, atol=1e-6)
    pts = f.offset_points(np.array([0.7e-3]), np.array([0.3e-3]))[:, 0, :]
    assert np.allclose(np.linalg.norm(pts - f.points_m, axis=1), math.hypot(0.7e-3, 0.3e-3))


def test_curved_nerve_through_lethal_torus_section():
    """A lethal ball at a point of a curved nerve kills the whole section it contains."""
    t = np.linspace(0, np.pi / 2, 40)
    line = np.column_stack([20e-3 * np.cos(t), 20e-3 * np.sin(t), np.zeros_like(t)])
    nerve = Nerve("arc", line, 0.5e-3, SENSORY, 10e-3)
    mid = np.array([20e-3 * np.cos(np.pi / 4), 20e-3 * np.sin(np.pi / 4), 0.0])
    out = nerve_outcome(nerve, sphere(mid, 2e-3), "rf", n_axons=500)
    assert out.pain_fibres_killed_fraction == 1.0
    # chord through the ball at the nerve's own radius: between 2 sqrt(2^2 - 0.5^2) and 4 mm
    assert 3.8 <= out.any_kill_length_mm <= 4.0 + out.step_mm
    assert out.lesion_start_mm == pytest.approx(20 * np.pi / 4 - 2.0, abs=0.1)


def test_nerve_catalog_sourced():
    from neurolysis._catalog import load_catalog

    cat = load_catalog("nerve_model")
    for name, entry in cat["method"].items():
        assert entry["injury"] == ("none" if entry["grade"] == 0 else f"sunderland-{entry['grade']}") and entry["source"], name
    r = cat["recovery"]
    for key, value in r.items():
        if not isinstance(value, dict):
            assert r["sources"].get(key), key
    for group in ("maturation", "age", "sprouting", "recurrence"):
        for key in r[group]:
            if key != "sources":
                assert r[group]["sources"][key], f"{group}.{key}"
    assert r["tube_rate_p10_mm_per_day"] < r["tube_rate_median_mm_per_day"] < r["tube_rate_p90_mm_per_day"]
    assert 0 < r["delay_min_days"] < r["delay_max_days"]
    assert set(cat["method"]) >= {"rf", "cooled-rf", "pulsed-rf"}
