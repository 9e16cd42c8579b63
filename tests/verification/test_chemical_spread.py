"""Issue 10 (transport and spread): nonnegative transport, the bolus that follows the anatomy,
the vessel lumen as a sink. docs/models/chemical.md sections 6.1-6.2.

Engine runs in the template scenes use a coarse mesh (1 mm, 16 sectors) so the file runs in
about a minute; the default-mesh numbers are in docs/models/chemical.md.
"""

from dataclasses import replace

import numpy as np
import pytest

from neurolysis import new_plan, prepare
from neurolysis.engines.chemical import BARRIER_TISSUES, _needle, mesh_for_bolus, simulate_chemical
from neurolysis.engines.poses import tissue_at
from neurolysis.fields import NeedlePose
from neurolysis.physics.bolus import face_adjacency, fill_bolus, nodal_bolus
from neurolysis.physics.fem3d import StiffnessPattern, TetGeometry
from neurolysis.physics.mesh3d import Mesh3DSpec, build_needle_mesh3d
from neurolysis.physics.transport import PositiveTransportSolver, TransportOperators, TransportSolver, bolus_radius_m, m_matrix_stiffness
from neurolysis.validation import ValidationError

COARSE = Mesh3DSpec(h_fine_m=1.0e-3, sectors=16, fine_margin_m=12e-3, domain_m=25e-3, growth=1.3, edge_levels=1)
TEMPLATES = ("lumbar-medial-branch", "genicular", "intercostal", "celiac-plexus")


@pytest.fixture(scope="module")
def mesh():
    m = build_needle_mesh3d(_needle(), COARSE)
    return m, TetGeometry(m.nodes, m.tets)


def test_needle_mesh_stiffness_is_not_an_m_matrix_but_the_upwinded_one_is(mesh):
    m, geo = mesh
    pattern = StiffnessPattern(geo, m.n_nodes)
    k = pattern.matrix(pattern.data(np.full(len(m.tets), 1e-10)))
    off = k - d_iag(k)
    assert off.max() > 0  # obtuse tets: positive couplings, the cause of the undershoot
    k2, change = m_matrix_stiffness(k)
    off2 = k2 - d_iag(k2)
    assert off2.max() <= 0.0
    assert abs(k2 - k2.T).max() < 1e-12 * abs(k).max()
    assert np.abs(np.asarray(k2.sum(axis=1)).ravel()).max() < 1e-9 * k.diagonal().max()
    assert 0 < change < 0.1  # the added diffusion is a few % of the diagonal (measured 4 %)


def d_iag(matrix):
    import scipy.sparse as sp

    return sp.diags(matrix.diagonal())


def _ops_and_bolus(mesh, k_per_s=7.9e-4):
    m, geo = mesh
    phi = np.full(len(m.tets), 0.2)
    pattern = StiffnessPattern(geo, m.n_nodes)
    ops = TransportOperators(pattern.matrix(pattern.data(np.full(len(m.tets), 1.3e-10))), geo.node_weights(phi), np.full(m.n_nodes, k_per_s))
    fill = fill_bolus(np.linalg.norm(m.centroids, axis=1), phi * geo.volume, np.ones(len(m.tets), bool), face_adjacency(m.tets), 0.5e-6)
    return ops, nodal_bolus(m.tets, fill, phi * geo.volume, ops.capacity_m3, 100.0)


def test_crank_nicolson_undershoots_the_positive_scheme_does_not(mesh):
    ops, c0 = _ops_and_bolus(mesh)
    cn = TransportSolver(ops, 300.0, 0.5).step(c0)
    assert cn.min() < -0.1  # M/dt - A/2 has negative entries for dt > 2 m_i / A_ii: the old scheme's -0.56 %
    solver = PositiveTransportSolver(ops, 300.0)
    c, s0 = c0, ops.amount(c0)
    cleared = 0.0
    for _ in range(12):
        c, removed = solver.step(c)
        cleared += removed
        assert c.min() >= -1e-12 * 100.0 and c.max() <= 100.0 * (1 + 1e-12)  # discrete maximum principle
    assert abs(s0 - ops.amount(c) - cleared) < 1e-10 * s0
    # uniform clearance is exact: S(t) = S0 exp(-k t)
    assert ops.amount(c) == pytest.approx(s0 * np.exp(-7.9e-4 * 3600.0), rel=1e-9)


def test_bolus_fill_is_the_sphere_in_homogeneous_tissue_and_avoids_barriers(mesh):
    m, geo = mesh
    acc = 0.2 * geo.volume
    d = np.linalg.norm(m.centroids, axis=1)
    adj = face_adjacency(m.tets)
    free = fill_bolus(d, acc, np.ones(len(d), bool), adj, 1e-6)
    assert (free.fraction * acc).sum() == pytest.approx(1e-6, rel=1e-12)
    assert free.reach_m == pytest.approx(bolus_radius_m(1.0, 0.2), abs=1.5e-3)
    # a wall (slab 2-4 mm beside the tip) the bolus cannot enter: none inside it, exact volume, reaches further
    wall = (m.centroids[:, 0] > 2e-3) & (m.centroids[:, 0] < 4e-3)
    walled = fill_bolus(d, acc, ~wall, adj, 1e-6)
    assert walled.fraction[wall].max() == 0.0
    assert (walled.fraction * acc).sum() == pytest.approx(1e-6, rel=1e-12)
    assert walled.reach_m > free.reach_m + 1e-3
    # nothing beyond the wall either: the wall spans the mesh, so that side is unreachable
    assert walled.fraction[m.centroids[:, 0] > 4e-3].max() == 0.0
    c = nodal_bolus(m.tets, walled, acc, geo.node_weights(np.full(len(d), 0.2)), 50.0)
    assert c.min() >= 0.0 and c.max() <= 50.0 * (1 + 1e-12)


@pytest.fixture(scope="module", params=TEMPLATES)
def scene_run(request):
    ctx = prepare(new_plan(request.param, method="chemical"))
    v = ctx.settings
    mesh = mesh_for_bolus(v["agent"], v["volume_ml"], ctx.pose, ctx.scene, mesh=COARSE)
    result = simulate_chemical(v["agent"], v["concentration_pct"], v["volume_ml"], v["injections"], v["interval_h"], v["rate_ml_per_min"], ctx.pose, ctx.scene, mesh=mesh)
    return request.param, ctx, result


def test_default_plans_stay_nonnegative_and_conserve_mass(scene_run):
    name, _ctx, result = scene_run
    c_inj = result.concentration_pct
    for balance in result.mass_balance:
        assert balance["min_concentration_pct"] >= 0.0, name  # invariant (CG round-off clipped); was -0.56 %
        assert balance["relative_error"] < 1e-6, name
    f = result.fields
    assert f.peak_pct.max() <= c_inj * (1 + 1e-6), name  # maximum principle: nothing above the injected concentration


def test_bolus_does_not_fill_barriers_and_the_lumen_is_a_sink(scene_run):
    name, ctx, result = scene_run
    f = result.fields
    element_tissue = tissue_at(ctx.scene, f.frame.to_world(f.mesh.centroids), "muscle")
    barrier = np.isin(element_tissue, list(BARRIER_TISSUES))
    touched = np.zeros(f.mesh.n_nodes, bool)
    touched[f.mesh.tets[~barrier].ravel()] = True
    deep = ~touched  # nodes whose every element is a barrier: the bolus never fills them
    if deep.any():
        assert f.peak_pct[deep].max() < 0.5 * result.concentration_pct, name
    in_wall = np.zeros(f.mesh.n_nodes, bool)
    in_wall[f.mesh.tets[element_tissue != "blood"].ravel()] = True
    lumen = ~in_wall  # nodes whose every element is blood (the wall nodes meet the tissue outside)
    if lumen.sum() > 20:
        # washout 10 /s against a diffusive supply ~1e-3 /s: the lumen holds almost nothing
        assert np.percentile(f.peak_pct[lumen], 90) < 0.05 * result.concentration_pct, name
        assert f.peak_pct[lumen].max() < 0.5 * result.concentration_pct, name


def test_lumen_washout_rate_does_not_matter_once_large(monkeypatch):
    """The sink's strength (10 /s, order of magnitude) is not a tuning knob: 1 /s and 100 /s give the same lethal volume."""
    import neurolysis.chemistry as chem

    ctx = prepare(new_plan("celiac-plexus", method="chemical"))
    v = ctx.settings
    volumes = []
    for k in (1.0, 100.0):
        original = chem.transport_coefficients

        def patched(agent, tissue, k=k, original=original):
            co = original(agent, tissue)
            return replace(co, clearance_per_s=k) if tissue == "blood" else co

        monkeypatch.setattr("neurolysis.engines.chemical.transport_coefficients", patched)
        r = simulate_chemical(v["agent"], v["concentration_pct"], v["volume_ml"], 1, 1.0, v["rate_ml_per_min"], ctx.pose, ctx.scene,
                              mesh=mesh_for_bolus(v["agent"], v["volume_ml"], ctx.pose, ctx.scene, mesh=COARSE))
        volumes.append(r.lethal_volume_ml[0])
    # 5 % (measured 3.4 %; was 2 % before issue 10 part 2: the threshold-like fast term makes the lethal edge next to the lumen more sensitive)
    assert volumes[0] == pytest.approx(volumes[1], rel=0.05)


def _three(tips_mm):
    tips = None if tips_mm is None else np.asarray(tips_mm, float) * 1e-3
    return simulate_chemical("ethanol", 100.0, 0.1, 3, 1.0, 1.0, NeedlePose(np.zeros(3), np.array([0.0, 0.0, -1.0])), mesh=COARSE, injection_tips_m=tips)


def test_repeats_at_separate_sites_kill_about_three_times_the_volume():
    """issue 19: three 0.1 mL boluses of 100 % ethanol in homogeneous muscle (r_b = 4.9 mm each).
    At one point the repeats land in tissue already dead: the lethal volume grows little; 9 mm
    apart (about 2 r_b: the boluses touch) it is about three times one bolus's, a little more
    as the sub-lethal fringes where two boluses meet add up to a lethal dose."""
    same = _three(None)
    apart = _three([[0.0, 0.0, 0.0], [9.0, 0.0, 0.0], [-9.0, 0.0, 0.0]])
    one = same.lethal_volume_ml[0]
    assert apart.lethal_volume_ml[0] == pytest.approx(one, rel=1e-9)  # the first injection is the same
    assert same.lethal_volume_ml[-1] < 1.5 * one
    assert 2.5 * one < apart.lethal_volume_ml[-1] < 4.0 * one
    assert np.allclose(np.array(apart.injection_tips_mm)[1], [9.0, 0.0, 0.0])
    for b in apart.mass_balance:  # each bolus adds the injected amount, conserved to the CG tolerance
        assert b["relative_error"] < 1e-6


def test_injection_tips_are_checked_before_any_mesh():
    with pytest.raises(ValidationError, match="one finite"):
        _three([[0.0, 0.0, 0.0]])
    with pytest.raises(ValidationError, match="within the fine mesh"):
        _three([[0.0, 0.0, 0.0], [30.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
