"""The enthalpy (phase-change) kernel against exact Stefan solutions, with observed orders.

Material: tissue-like constants with an isothermal phase change at T_m = 0 C:
C_s = 1.8 MJ/m^3/K, k_s = 2.0 W/m/K (frozen), C_l = 3.6 MJ/m^3/K, k_l = 0.5 W/m/K,
L = 2.6e8 J/m^3 (~ 0.75 x 334 kJ/kg x 1050 kg/m^3), wall at -89 C (N2O probe).
Exact solutions: Carslaw HS, Jaeger JC, Conduction of Heat in Solids, 2nd ed. 1959,
section 11.2 (Neumann) and 11.3 (line sink, Paterson 1952) [UNVERIFIED: section numbers
from memory]; each is re-derived in its docstring (similarity form + Stefan condition).

Expected order: an enthalpy method with a sharp front is first order in h for the front
position and the temperature L2 error (dt proportional to h here, backward Euler is first
order in dt). Errors are measured as the maximum (front) and the RMS (temperature L2)
over all steps in 10 s <= t <= 60 s, which averages out the staircase of the front.
"""

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import erf, erfc, exp1

from neurolysis.physics.freezing import FreezingMaterial, HeatBoundary, freezing_material, line_mesh, time_below, uniform_properties
from neurolysis.physics.phase_change import FreezingSolver, Phase, freeze_thaw_phases
from neurolysis.validation import ValidationError

C_S, K_S, C_L, K_L, LATENT, T_M, T_WALL = 1.8e6, 2.0, 3.6e6, 0.5, 2.6e8, 0.0, -89.0
ALPHA_S, ALPHA_L = K_S / C_S, K_L / C_L
SHARP = FreezingMaterial(T_M, T_M, LATENT, C_S, C_L, K_S, K_L)
LEVELS = (40, 80, 160, 320)
END_S, FROM_S = 60.0, 10.0


def neumann_lambda(initial_c: float) -> float:
    """Root of the Stefan condition for freezing of a half-space x > 0, wall at T_w.

    Solid:  T = T_w + (T_m - T_w) erf(x / 2 sqrt(a_s t)) / erf(lam),  front s = 2 lam sqrt(a_s t)
    Liquid: T = T_i - (T_i - T_m) erfc(x / 2 sqrt(a_l t)) / erfc(nu lam),  nu = sqrt(a_s / a_l)
    L ds/dt = k_s T_s,x - k_l T_l,x at x = s gives
        lam = St_s e^(-lam^2) / (sqrt(pi) erf lam) - k_l (T_i - T_m) e^(-nu^2 lam^2) / (L sqrt(pi a_s a_l) erfc(nu lam)),
    St_s = C_s (T_m - T_w) / L; for T_i = T_m (one phase) the last term vanishes.
    """
    nu = np.sqrt(ALPHA_S / ALPHA_L)

    def condition(lam):
        solid = C_S * (T_M - T_WALL) / LATENT * np.exp(-lam * lam) / (np.sqrt(np.pi) * erf(lam))
        liquid = K_L * (initial_c - T_M) / (LATENT * np.sqrt(np.pi * ALPHA_S * ALPHA_L)) * np.exp(-((nu * lam) ** 2)) / erfc(nu * lam)
        return lam - solid + liquid

    return brentq(condition, 1e-6, 5.0)


def neumann(x, t, initial_c):
    """Front position (m) and temperature (C) of the Neumann solution (see ``neumann_lambda``)."""
    lam = neumann_lambda(initial_c)
    nu = np.sqrt(ALPHA_S / ALPHA_L)
    front = 2 * lam * np.sqrt(ALPHA_S * t)
    solid = T_WALL + (T_M - T_WALL) * erf(x / (2 * np.sqrt(ALPHA_S * t))) / erf(lam)
    liquid = initial_c - (initial_c - T_M) * erfc(x / (2 * np.sqrt(ALPHA_L * t))) / erfc(nu * lam)
    return front, np.where(x < front, solid, liquid)


def _slab(n, initial_c, length=0.03):
    """Run the slab problem on n elements with dt = T / n; errors over 10-60 s."""
    x = np.linspace(0.0, length, n + 1)
    mesh = line_mesh(x)
    solver = FreezingSolver(mesh, uniform_properties(SHARP, mesh))
    if initial_c > T_M:
        state = solver.initial_state(initial_c)
        boundary = HeatBoundary(np.array([0, n]), np.array([T_WALL, initial_c]))
    else:  # liquid exactly at the melting point: all latent heat still present
        state = solver.state_from_enthalpy(0.0, np.full(n + 1, LATENT))
        boundary = HeatBoundary(np.array([0]), T_WALL)

    def errors(s):
        front, exact = neumann(x, s.time_s, initial_c)
        return s.time_s, s.frozen_volume_m3(mesh) - front, mesh.node_volume_m3 @ (s.temp_c - exact) ** 2 / length, s.temp_c

    state, reports, observed = solver.run(state, [Phase(END_S, boundary)], END_S / n, errors)
    kept = [o for o in observed if o[0] >= FROM_S - 1e-9]
    front_error = max(abs(o[1]) for o in kept)
    temp_error = np.sqrt(np.mean([o[2] for o in kept]))
    return front_error, temp_error, [o[3] for o in observed], reports


def _rate(errors):
    return np.polyfit(np.log([1 / n for n in LEVELS]), np.log(errors), 1)[0]


@pytest.mark.parametrize("initial_c", [T_M, 37.0], ids=["one-phase", "two-phase"])
def test_neumann_stefan_first_order(initial_c):
    results = [_slab(n, initial_c) for n in LEVELS]
    front, temp = [r[0] for r in results], [r[1] for r in results]
    front_rate, temp_rate = _rate(front), _rate(temp)
    exact_front = neumann(np.zeros(1), END_S, initial_c)[0]
    assert 0.9 <= front_rate <= 1.7, f"observed front rate: {front_rate:.2f} (errors {front})"
    assert 0.9 <= temp_rate <= 1.5, f"observed temperature L2 rate: {temp_rate:.2f} (errors {temp})"
    assert front[-1] < 0.005 * exact_front, f"front error {front[-1]:.3g} m vs front {exact_front:.3g} m"
    assert temp[-1] < 0.1, f"temperature L2 error {temp[-1]:.3g} C"


def test_one_phase_stefan_is_monotone_and_bounded():
    """No oscillation at the front: each node only cools and stays within [T_w, T_m]."""
    _, _, temps, reports = _slab(80, T_M)
    temps = np.array(temps)
    assert temps.min() >= T_WALL - 1e-9 and temps.max() <= T_M + 1e-9
    assert np.all(np.diff(temps, axis=0) <= 1e-9), "a node warmed up during pure freezing"
    assert max(r.newton_iterations for r in reports) <= 12


def paterson_lambda(sink_w_m, initial_c):
    """Freezing around a line sink of Q W/m at r = 0 in liquid initially at T_i.

    Solid:  T = T_m - Q / (4 pi k_s) [E1(r^2 / 4 a_s t) - E1(lam^2)],  front s = 2 lam sqrt(a_s t)
    Liquid: T = T_i - (T_i - T_m) E1(r^2 / 4 a_l t) / E1(lam^2 a_s / a_l)
    Stefan condition L s ds/dt = s (k_s T_s,r - k_l T_l,r) at r = s:
        2 L a_s lam^2 = Q e^(-lam^2) / (2 pi) - 2 k_l (T_i - T_m) e^(-lam^2 a_s / a_l) / E1(lam^2 a_s / a_l).
    """
    nu2 = ALPHA_S / ALPHA_L

    def condition(lam):
        return 2 * LATENT * ALPHA_S * lam**2 - sink_w_m * np.exp(-(lam**2)) / (2 * np.pi) + 2 * K_L * (initial_c - T_M) * np.exp(-(lam**2) * nu2) / exp1(lam**2 * nu2)

    return brentq(condition, 1e-4, 3.0)


def _radial(n, sink_w_m=300.0, initial_c=37.0, r0=1e-4, outer=0.02):
    """Cylindrical P1 mesh r0 <= r <= outer; the sink is a heat outflow Q at r0 (line sink
    approximated by a 0.1 mm radius: relative effect ~ r0^2 / (a_s t) < 2e-4)."""
    r = np.linspace(r0, outer, n + 1)
    mesh = line_mesh(r, "cylindrical")
    solver = FreezingSolver(mesh, uniform_properties(SHARP, mesh))
    lam, nu2 = paterson_lambda(sink_w_m, initial_c), ALPHA_S / ALPHA_L
    inflow = np.zeros(n + 1)
    inflow[0] = -sink_w_m
    boundary = HeatBoundary(np.array([n]), initial_c, inflow_w=inflow)

    def errors(s):
        t = s.time_s
        front = 2 * lam * np.sqrt(ALPHA_S * t)
        solid = T_M - sink_w_m / (4 * np.pi * K_S) * (exp1(r**2 / (4 * ALPHA_S * t)) - exp1(lam**2))
        liquid = initial_c - (initial_c - T_M) * exp1(r**2 / (4 * ALPHA_L * t)) / exp1(lam**2 * nu2)
        exact = np.where(r < front, solid, liquid)
        ice_radius = np.sqrt((s.frozen_volume_m3(mesh) + np.pi * r0**2) / np.pi)
        return t, ice_radius - front, mesh.node_volume_m3 @ (s.temp_c - exact) ** 2 / mesh.node_volume_m3.sum()

    start = solver.initial_state(initial_c)
    state, reports, observed = solver.run(start, [Phase(END_S, boundary)], END_S / n, errors)
    kept = [o for o in observed if o[0] >= FROM_S - 1e-9]
    stored = state.energy_j(mesh) - start.energy_j(mesh)
    supplied = sum(rep.inflow_j + rep.fixed_nodes_j for rep in reports)
    return max(abs(o[1]) for o in kept), np.sqrt(np.mean([o[2] for o in kept])), stored, supplied


def test_radial_line_sink_first_order():
    """Axisymmetric (cylindrical) geometry and the heat-flux boundary against Paterson's solution."""
    results = [_radial(n) for n in LEVELS]
    front, temp = [r[0] for r in results], [r[1] for r in results]
    front_rate, temp_rate = _rate(front), _rate(temp)
    exact_front = 2 * paterson_lambda(300.0, 37.0) * np.sqrt(ALPHA_S * END_S)
    assert 0.9 <= front_rate <= 2.0, f"observed radial front rate: {front_rate:.2f} (errors {front})"
    assert 0.9 <= temp_rate <= 1.6, f"observed radial temperature L2 rate: {temp_rate:.2f} (errors {temp})"
    assert front[-1] < 0.005 * exact_front
    stored, supplied = results[-1][2:]
    assert stored == pytest.approx(supplied, rel=1e-9)


def test_energy_balance_freeze_thaw_with_perfusion_and_mushy_range():
    """Catalogued muscle (mushy -8..-1 C, perfusion), 2 mm N2O probe freeze 90 / thaw 30 / freeze 90 s.

    Stored-enthalpy change = heat through the probe + perfusion heat, step by step and in
    total, to the Newton tolerance; latent heat is neither lost nor created at the front.
    """
    muscle = freezing_material("muscle")
    r = 1e-3 + np.geomspace(1e-5, 0.02, 120) - 1e-5
    mesh = line_mesh(r, "cylindrical")
    solver = FreezingSolver(mesh, uniform_properties(muscle, mesh), thresholds_c=(-20.0,))
    start = solver.initial_state(37.0)
    far = HeatBoundary(np.array([len(r) - 1]), 37.0)
    phases = freeze_thaw_phases(np.array([0]), -89.0, (("freeze", 90.0), ("thaw", 30.0), ("freeze", 90.0)))
    phases = [Phase(p.duration_s, HeatBoundary(np.concatenate([p.boundary.fixed_nodes, far.fixed_nodes]), np.concatenate([p.boundary.fixed_temp_c, far.fixed_temp_c]))) for p in phases]
    state, reports, energies = solver.run(start, phases, 1.0, lambda s: s.energy_j(mesh))
    steps = np.diff(np.concatenate([[start.energy_j(mesh)], energies]))
    supplied = np.array([rep.fixed_nodes_j + rep.perfusion_j + rep.inflow_j + rep.exchange_j for rep in reports])
    assert np.max(np.abs(steps - supplied)) <= 1e-8 * np.max(np.abs(supplied))
    total = state.energy_j(mesh) - start.energy_j(mesh)
    assert total == pytest.approx(supplied.sum(), rel=1e-9)
    assert total < 0 and sum(rep.perfusion_j for rep in reports) > 0
    assert state.min_temp_c.min() == pytest.approx(-89.0) and state.time_below_s[0, 1] > 100.0


def test_energy_balance_prescribed_flux_only():
    """Insulated slab at 37 C losing a fixed 20 kW/m^2 through x = 0 for 200 s: no boundary
    reaction to hide behind, so stored-enthalpy change must equal -q t exactly."""
    mesh = line_mesh(np.linspace(0.0, 0.02, 81))
    solver = FreezingSolver(mesh, uniform_properties(freezing_material("nerve", perfused=False), mesh))
    start = solver.initial_state(37.0)
    inflow = np.zeros(81)
    inflow[0] = -20000.0
    state, reports, _ = solver.run(start, [Phase(200.0, HeatBoundary(inflow_w=inflow))], 2.0)
    assert state.frozen_fraction[0] > 0.99  # the front did pass through the mushy range
    assert state.energy_j(mesh) - start.energy_j(mesh) == pytest.approx(-20000.0 * 200.0, rel=1e-9)


def test_enthalpy_curve_inverse_and_fraction():
    mesh = line_mesh(np.linspace(0.0, 1e-3, 4))
    curve = uniform_properties(freezing_material("muscle"), mesh).curve
    temps = np.array([-60.0, -8.0, -5.0, -1.0, 0.0, 37.0])[:, None] * np.ones(4)
    assert np.allclose(curve.temperature(curve.enthalpy(temps)), temps)
    fraction = curve.frozen_fraction(curve.enthalpy(temps))
    assert np.allclose(fraction[[0, 1, 3, 4, 5]], [[1], [1], [0], [0], [0]]) and 0 < fraction[2, 0] < 1


def test_time_below_threshold_is_exact_for_linear_cooling():
    assert time_below(np.array([0.0]), np.array([-40.0]), -20.0, 10.0)[0] == pytest.approx(5.0)
    assert time_below(np.array([-30.0]), np.array([-25.0]), -20.0, 3.0)[0] == pytest.approx(3.0)


@pytest.mark.parametrize(
    "field, kwargs",
    [
        ("liquidus_c", {"liquidus_c": -10.0}),
        ("latent_heat_j_m3", {"latent_heat_j_m3": float("nan")}),
        ("conductivity_frozen_w_m_k", {"conductivity_frozen_w_m_k": -1.0}),
    ],
)
def test_bad_material_rejected(field, kwargs):
    values = dict(solidus_c=-8.0, liquidus_c=-1.0, latent_heat_j_m3=2.5e8, heat_capacity_frozen_j_m3_k=1.9e6,
                  heat_capacity_unfrozen_j_m3_k=3.8e6, conductivity_frozen_w_m_k=1.8, conductivity_unfrozen_w_m_k=0.5)
    values.update(kwargs)
    with pytest.raises(ValidationError, match=field):
        FreezingMaterial(**values)


def test_bad_step_and_boundary_rejected():
    mesh = line_mesh(np.linspace(0.0, 1e-3, 4))
    solver = FreezingSolver(mesh, uniform_properties(SHARP, mesh))
    state = solver.initial_state(37.0)
    with pytest.raises(ValidationError, match="dt_s"):
        solver.step(state, 0.0, HeatBoundary())
    with pytest.raises(ValidationError, match="fixed_nodes"):
        solver.step(state, 1.0, HeatBoundary(np.array([7]), -89.0))
    with pytest.raises(ValidationError, match="fixed_temp_c"):
        HeatBoundary(np.array([0]), -300.0)


def test_axisymmetric_triangle_mesh_through_project_assembly():
    """The same line-sink problem on the project's axisymmetric P1 triangles
    (``fem.unit_stiffness_entries`` + ``PatternOperator``), uniform in z: the kernel is
    mesh-agnostic, and the 2D result matches Paterson's front to the 1D accuracy."""
    from skfem import MeshTri

    from neurolysis.physics.fem import TWO_PI, PatternOperator, element_geometry, unit_stiffness_entries
    from neurolysis.physics.freezing import ConductionMesh

    n, r0, outer, sink = 160, 1e-4, 0.02, 300.0
    tri = MeshTri.init_tensor(np.linspace(r0, outer, n + 1), np.array([0.0, 1e-3]))
    everything = np.arange(tri.p.shape[1])
    operator = PatternOperator(*unit_stiffness_entries(tri), tri.p.shape[1], everything, everything)
    volume = TWO_PI * (element_geometry(tri).load @ np.ones(tri.t.shape[1]))
    mesh = ConductionMesh(volume, tri.t.T, lambda k: TWO_PI * operator.matrix(k))
    solver = FreezingSolver(mesh, uniform_properties(SHARP, mesh))
    inner, far = np.flatnonzero(np.isclose(tri.p[0], r0)), np.flatnonzero(np.isclose(tri.p[0], outer))
    inflow = np.zeros(tri.p.shape[1])
    inflow[inner] = -sink * 1e-3 / len(inner)  # W over a 1 mm high slice
    state, _, _ = solver.run(solver.initial_state(37.0), [Phase(END_S, HeatBoundary(far, 37.0, inflow_w=inflow))], END_S / n)
    ice_radius = np.sqrt((state.frozen_volume_m3(mesh) / 1e-3 + np.pi * r0**2) / np.pi)
    exact = 2 * paterson_lambda(sink, 37.0) * np.sqrt(ALPHA_S * END_S)
    assert ice_radius == pytest.approx(exact, rel=0.01)


def test_two_tissues_converge_and_conserve_energy():
    """Fat over muscle (two conductivity groups: the Newton matrix is then approximate at
    the interface node): the step still converges and conserves energy."""
    from neurolysis.physics.freezing import EnthalpyCurve, FreezingProperties

    x = np.linspace(0.0, 0.02, 81)
    mesh = line_mesh(x)
    fat, muscle = freezing_material("fat"), freezing_material("muscle")
    in_fat = 0.5 * (x[:-1] + x[1:]) < 0.001
    node_fat = x <= 0.001  # nodal properties of the interface node taken from fat: a modelling choice
    pick = lambda name, nodal: np.where(nodal, getattr(fat, name), getattr(muscle, name))  # noqa: E731
    curve = EnthalpyCurve(-8.0, -1.0, pick("heat_capacity_frozen_j_m3_k", node_fat), pick("heat_capacity_unfrozen_j_m3_k", node_fat), pick("latent_heat_j_m3", node_fat))
    props = FreezingProperties(curve, pick("conductivity_frozen_w_m_k", in_fat), pick("conductivity_unfrozen_w_m_k", in_fat), pick("perfusion_w_m3_k", node_fat))
    solver = FreezingSolver(mesh, props)
    start = solver.initial_state(37.0)
    state, reports, _ = solver.run(start, [Phase(120.0, HeatBoundary(np.array([0, 80]), np.array([-89.0, 37.0])))], 1.0)
    supplied = sum(r.fixed_nodes_j + r.perfusion_j for r in reports)
    assert state.energy_j(mesh) - start.energy_j(mesh) == pytest.approx(supplied, rel=1e-9)
    assert state.frozen_fraction[x > 0.0015].max() > 0.5  # the ice crossed into muscle


def test_inexact_newton_gives_the_same_step():
    """``linear_forcing``: Newton systems solved only to a fraction of the Newton residual
    (here by a deliberately perturbed direct solve with that relative residual) converge to
    the same steps as exact solves, within the Newton tolerance, and conserve energy."""
    from scipy.sparse.linalg import splu

    x = np.linspace(0.0, 0.02, 81)
    mesh = line_mesh(x)
    phases = [Phase(60.0, HeatBoundary(np.array([0, 80]), np.array([-89.0, 37.0]))), Phase(20.0, HeatBoundary(np.array([80]), 37.0))]
    props = uniform_properties(freezing_material("muscle"), mesh)
    etas = []

    def sloppy(matrix, rhs, rtol):
        etas.append(rtol)
        exact = splu(matrix.tocsc()).solve(rhs)
        # an error whose residual is rtol x ||rhs|| (what an inexact Krylov solve may leave)
        error = splu(matrix.tocsc()).solve(rtol * np.linalg.norm(rhs) * np.sin(np.arange(len(rhs))) / np.sqrt(len(rhs)))
        return exact + error

    exact_solver = FreezingSolver(mesh, props, rtol=1e-10)
    inexact_solver = FreezingSolver(mesh, props, rtol=1e-10, linear_solve=sloppy, linear_forcing=1e-2)
    start = exact_solver.initial_state(37.0)
    ref, _, _ = exact_solver.run(start, phases, 1.0)
    got, reports, _ = inexact_solver.run(start, phases, 1.0)
    assert etas and min(etas) >= 1e-2 and max(etas) <= 0.5
    np.testing.assert_allclose(got.temp_c, ref.temp_c, atol=1e-6)
    np.testing.assert_allclose(got.min_temp_c, ref.min_temp_c, atol=1e-6)
    supplied = sum(r.fixed_nodes_j + r.perfusion_j for r in reports)
    assert got.energy_j(mesh) - start.energy_j(mesh) == pytest.approx(supplied, rel=1e-9)
    with pytest.raises(ValidationError):
        FreezingSolver(mesh, props, linear_forcing=0.9)


def test_exact_interface_jacobian_fewer_newton_iterations():
    """Fat over muscle: with ``exact_jacobian`` the Newton direction solves the exact
    (nonsymmetric) interface Jacobian, here densely; same steps as the nodal-mean
    Jacobian within the Newton tolerance, fewer iterations, energy conserved."""
    from neurolysis.physics.freezing import EnthalpyCurve, FreezingProperties

    x = np.linspace(0.0, 0.02, 81)
    mesh = line_mesh(x)
    fat, muscle = freezing_material("fat"), freezing_material("muscle")
    in_fat = 0.5 * (x[:-1] + x[1:]) < 0.002
    node_fat = x <= 0.002
    pick = lambda name, nodal: np.where(nodal, getattr(fat, name), getattr(muscle, name))  # noqa: E731
    curve = EnthalpyCurve(-8.0, -1.0, pick("heat_capacity_frozen_j_m3_k", node_fat), pick("heat_capacity_unfrozen_j_m3_k", node_fat), pick("latent_heat_j_m3", node_fat))
    props = FreezingProperties(curve, pick("conductivity_frozen_w_m_k", in_fat), pick("conductivity_unfrozen_w_m_k", in_fat), pick("perfusion_w_m3_k", node_fat))

    def dense(matrix, rhs, rtol, operator):
        columns = np.column_stack([operator(e) for e in np.eye(len(rhs))])
        return np.linalg.solve(columns, rhs)

    phases = [Phase(90.0, HeatBoundary(np.array([0, 80]), np.array([-89.0, 37.0]))), Phase(30.0, HeatBoundary(np.array([80]), 37.0))]
    nodal = FreezingSolver(mesh, props, rtol=1e-10)
    exact = FreezingSolver(mesh, props, rtol=1e-10, linear_solve=dense, exact_jacobian=True)
    start = nodal.initial_state(37.0)
    ref, ref_reports, _ = nodal.run(start, phases, 2.0)
    got, reports, _ = exact.run(start, phases, 2.0)
    np.testing.assert_allclose(got.temp_c, ref.temp_c, atol=1e-6)
    assert got.min_temp_c[x > 0.0025].min() < -8.0  # the ice crossed the interface
    assert sum(r.newton_iterations for r in reports) < 0.8 * sum(r.newton_iterations for r in ref_reports)
    supplied = sum(r.fixed_nodes_j + r.perfusion_j for r in reports)
    assert got.energy_j(mesh) - start.energy_j(mesh) == pytest.approx(supplied, rel=1e-9)
    with pytest.raises(ValidationError):
        FreezingSolver(mesh, props, exact_jacobian=True)
