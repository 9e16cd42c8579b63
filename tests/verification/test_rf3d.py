"""Verification of the 3D RF engine (neurolysis.engines.rf.engine3d) against the axisymmetric one,
an analytic potential, energy conservation, symmetry and input validation."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from neurolysis.anatomy.scene import Scene
from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.engines.rf.engine3d import simulate_rf3d
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.fields import NeedlePose
from neurolysis.physics.fem3d import Potential3D, StiffnessPattern, TetGeometry
from neurolysis.physics.mesh import NeedleGeometry
from neurolysis.physics.mesh3d import Mesh3DSpec, build_cross_section, extrude
from neurolysis.validation import ValidationError

DOWN = np.array([0.0, 0.0, -1.0])
SHORT = RFSettings(time_s=30.0)
COARSE_BIPOLAR = Mesh3DSpec(h_fine_m=0.6e-3, sectors=12, fine_margin_m=4e-3, domain_m=30e-3)


def _pose(tip_mm=(0.0, 0.0, 0.0), direction=DOWN) -> NeedlePose:
    return NeedlePose(np.asarray(tip_mm, float) * 1e-3, np.asarray(direction, float))


def _rotation(tilt_deg: float, azimuth_deg: float) -> np.ndarray:
    t, a = np.radians(tilt_deg), np.radians(azimuth_deg)
    ry = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return rz @ ry


@cache
def _short_axis():
    return simulate_rf3d(SHORT, [_pose()])


@cache
def _short_oblique():
    rot = _rotation(30.0, 45.0)
    return simulate_rf3d(SHORT, [NeedlePose(np.array([1e-3, -2e-3, 3e-3]), rot @ DOWN)]), rot


def _scene(label_at, bounds_mm=50.0) -> Scene:
    b = bounds_mm * 1e-3
    return Scene(
        name="test",
        description="test scene",
        bounds_m=(np.full(3, -b), np.full(3, b)),
        region_names=("muscle", "bone"),
        region_tissue=("muscle", "bone"),
        label_at=label_at,
        nerves=(),
        critical=(),
        target="none",
    )


@pytest.mark.slow
def test_default_lesion_within_5_percent_of_axisymmetric():
    """Acceptance gate (issue 4): 18 G, 10 mm, 80 C, 90 s in muscle; width and length within 5 %."""
    reference = simulate_rf(RFSettings()).lesion
    result = simulate_rf3d(RFSettings(), [_pose()])
    for name in ("width_mm", "length_mm"):
        got, want = getattr(result.lesion, name), getattr(reference, name)
        assert abs(got / want - 1) < 0.05, f"{name}: 3D {got:.3f} vs axisymmetric {want:.3f} mm"
    assert abs(result.lesion.volume_mm3 / reference.volume_mm3 - 1) < 0.15
    assert result.energy.imbalance_relative < 1e-4
    assert abs(result.tip_temp_c_final - 80.0) < 0.1


def test_energy_balance_closes():
    r = _short_axis()
    assert r.energy.delivered_j > 10.0
    assert r.energy.imbalance_relative < 1e-4, r.energy.as_dict()
    assert r.mesh["nodes"] == r.to_dict()["mesh"]["nodes"]


def test_oblique_pose_gives_the_same_lesion():
    """The mesh moves rigidly with the needle: an oblique needle (30 deg tilt, 45 deg azimuth) gives the same lesion."""
    axis = _short_axis()
    oblique, rot = _short_oblique()
    for name in ("width_mm", "length_mm", "volume_mm3"):
        assert getattr(oblique.lesion, name) == pytest.approx(getattr(axis.lesion, name), rel=1e-6), name
    # same field at corresponding points (needle frame -> anatomy frame by the pose)
    rng = np.random.default_rng(1)
    local = rng.uniform(-6e-3, 6e-3, size=(200, 3)) * np.array([1, 1, 1.5]) + np.array([0, 0, 5e-3])
    a = axis.sample(local * np.array([1, 1, 1]))
    frame_a, frame_o = axis.fields.frame, oblique.fields.frame
    b = oblique.sample(frame_o.to_world(frame_a.to_local(local)))
    np.testing.assert_allclose(b.peak_temp_c, a.peak_temp_c, atol=1e-6)
    np.testing.assert_array_equal(b.lethal, a.lethal)


def test_sample_matches_nodes_and_outside_is_undisturbed():
    r = _short_axis()
    f = r.fields
    rng = np.random.default_rng(0)
    nodes = rng.choice(np.flatnonzero(f.mesh.tissue_nodes), 300, replace=False)
    world = f.frame.to_world(f.mesh.nodes[nodes])
    s = r.sample(world)
    np.testing.assert_allclose(s.peak_temp_c, f.max_temp_c[nodes], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(s.omega, f.omega[nodes], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(s.lethal, f.omega[nodes] >= 1.0)
    far = r.sample(np.array([[1.0, 0.0, 0.0]]))
    assert far.peak_temp_c[0] == 37.0 and far.omega[0] == 0.0 and not far.lethal[0]


@pytest.mark.parametrize("level", [0])
def test_potential_between_coaxial_cylinders_converges(level):
    """Coaxial cylinders a < r < R, phi(a) = 1, phi(R) = 0: phi = ln(R/r) / ln(R/a) and the
    conductance per length is G = 2 pi sigma / ln(R/a). Mesh: the needle cross-section
    (rings, polygon area-matched needle) extruded over 1 mm; insulated ends. Error in G must
    fall at second order (polygon and P1 errors are O(h^2) with sectors ~ 1/h)."""
    a = 0.635e-3
    geometry = NeedleGeometry(a, 10e-3, 2 * a, 0.05e-3)
    errors, hs = [], []
    for factor in (1.0, 2.0, 4.0):
        spec = Mesh3DSpec(h_fine_m=0.4e-3 / factor, sectors=int(16 * factor), fine_margin_m=2e-3, domain_m=3e-3, edge_levels=0)
        section = build_cross_section(geometry, None, spec)
        z = np.linspace(0.0, 1e-3, 3)
        _, tets = extrude(section, len(z))
        p = section.points
        nodes = np.column_stack([np.tile(p[:, 0], len(z)), np.tile(p[:, 1], len(z)), np.repeat(z, len(p))])
        nominal = np.tile(section.ring_radius, len(z))
        outer_r = section.ring_radius.max()
        inside = nominal < a * (1 - 1e-9)
        cent = nominal[tets].max(axis=1) > a * (1 + 1e-9)  # tets outside the needle
        geo = TetGeometry(nodes, tets)
        pattern = StiffnessPattern(geo, len(nodes))
        electrode = np.flatnonzero(np.isclose(nominal, a))
        ground = np.flatnonzero(np.isclose(nominal, outer_r))
        pot = Potential3D(geo, pattern, cent, [(electrode, 1.0), (ground, 0.0)], rtol=1e-12)
        pot.solve(np.ones(len(tets)))
        g = pot.terminal_power_w() / 1e-3
        exact = 2 * np.pi / np.log(outer_r / a)
        errors.append(abs(g / exact - 1))
        hs.append(spec.h_fine_m)
        assert not inside[electrode].any()
    order = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert errors[-1] < 2e-3, errors
    assert order > 1.7, f"observed order {order:.2f}, errors {errors}"


def test_bone_half_space_shrinks_the_lesion_on_its_side():
    """Bone (sigma 0.02 vs 0.45 S/m, k 0.4 vs 0.56 W/m/K) for x > 2 mm: less Joule heat there,
    so the lethal zone reaches less far toward +x than toward -x."""
    scene = _scene(lambda pts: (np.asarray(pts)[:, 0] > 2e-3).astype(int))
    r = simulate_rf3d(SHORT, [_pose()], scene)
    assert "bone" in r.mesh["tissues"]
    x = np.linspace(0.0, 8e-3, 801)
    z = 5e-3  # middle of the active tip (apex at 0, shaft up toward +z)
    plus = r.sample(np.column_stack([x, 0 * x, np.full_like(x, z)])).lethal
    minus = r.sample(np.column_stack([-x, 0 * x, np.full_like(x, z)])).lethal
    reach_plus, reach_minus = x[plus].max(), x[minus].max()
    homogeneous = _short_axis()
    reach_h = x[homogeneous.sample(np.column_stack([-x, 0 * x, np.full_like(x, z)])).lethal].max()
    assert reach_plus < reach_minus - 0.3e-3, (reach_plus, reach_minus)
    assert reach_plus < reach_h


def test_bad_input_is_rejected_before_solving():
    with pytest.raises(ValidationError, match="poses"):
        simulate_rf3d(SHORT, [])
    with pytest.raises(ValidationError, match="poses"):
        simulate_rf3d(SHORT, [_pose(), _pose((5, 0, 0))])
    with pytest.raises(ValidationError, match="bipolar needle angle"):
        simulate_rf3d(SHORT.with_(electrodes="bipolar"), [_pose(), _pose((8, 0, 0), (0.2, 0, -1))])
    with pytest.raises(ValidationError, match="spacing_mm"):
        simulate_rf3d(SHORT.with_(electrodes="bipolar"), [_pose(), _pose((1.0, 0, 0))])
    with pytest.raises(ValidationError, match="tip_mm"):
        simulate_rf3d(SHORT, [_pose((80, 0, 0))], _scene(lambda p: np.zeros(len(p), int)))
    with pytest.raises(ValidationError, match="direction"):
        NeedlePose(np.zeros(3), np.zeros(3))
    with pytest.raises(ValidationError, match="tip_mm"):
        NeedlePose(np.array([np.nan, 0, 0]), DOWN)


@cache
def _bipolar(spacing_mm: float):
    settings = RFSettings(gauge=18, tip_mm=10.0, set_temp_c=80.0, time_s=30.0, ramp_s=10.0, electrodes="bipolar")
    return simulate_rf3d(settings, [_pose(), _pose((spacing_mm, 0, 0))], mesh=COARSE_BIPOLAR)


@pytest.mark.slow
def test_bipolar_lesions_join_at_small_spacing_only():
    near, far = _bipolar(4.0), _bipolar(12.0)
    assert near.joined is True
    assert far.joined is False
    assert near.energy.imbalance_relative < 1e-4 and far.energy.imbalance_relative < 1e-4
    # both needles heat: the lethal zone surrounds each tip
    for r, spacing in ((far, 12e-3),):
        mid = np.array([[0.0, -1.5e-3, 5e-3], [spacing, -1.5e-3, 5e-3]])
        assert r.sample(mid).lethal.all()


@pytest.mark.slow
def test_bipolar_sample_matches_nodes():
    r = _bipolar(4.0)
    f = r.fields
    nodes = np.flatnonzero(f.mesh.tissue_nodes)[::997]
    s = r.sample(f.frame.to_world(f.mesh.nodes[nodes]))
    np.testing.assert_allclose(s.omega, f.omega[nodes], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s.cem43_min, f.cem43_min[nodes], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("spacing_m", [None, 6e-3], ids=["one needle", "bipolar pair"])
def test_locate_returns_the_containing_tet_and_its_barycentric_weights(spacing_m):
    """``NeedleMesh3D.locate`` reads the weights from the prism (2D barycentrics and height) without
    solving a system per tet: they must rebuild the point from the chosen tet's vertices, lie in
    [0, 1] (the tet contains the point) and sum to 1; points off the mesh get -1."""
    from neurolysis.physics.mesh3d import build_needle_mesh3d

    mesh = build_needle_mesh3d(NeedleGeometry(0.635e-3, 10e-3, 0.6e-3, 0.05e-3), COARSE_BIPOLAR, spacing_m=spacing_m)
    rng = np.random.default_rng(3)
    lo, hi = mesh.nodes.min(axis=0), mesh.nodes.max(axis=0)
    near = rng.uniform([-8e-3, -8e-3, -6e-3], [8e-3 + (spacing_m or 0.0), 8e-3, 16e-3], size=(4000, 3))
    far = rng.uniform(lo, hi, size=(2000, 3))
    points = np.vstack([near, far, mesh.nodes[rng.choice(mesh.n_nodes, 500)], hi + 1e-3])
    tet, w = mesh.locate(points)
    found = tet >= 0
    assert found[:-1].mean() > 0.9 and tet[-1] == -1 and np.all(w[-1] == 0.0)
    np.testing.assert_allclose(np.einsum("nk,nkd->nd", w[found], mesh.nodes[mesh.tets[tet[found]]]), points[found], atol=1e-12)
    assert w[found].min() >= -1e-9 and w[found].max() <= 1 + 1e-9
    np.testing.assert_allclose(w[found].sum(axis=1), 1.0, atol=1e-12)
