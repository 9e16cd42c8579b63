"""The transport solver against exact solutions: convergence orders, mass balance, barrier.

Meshes are radial (spherically or cylindrically symmetric) P1 elements: the solver is
mesh-agnostic, so the r^(d-1) weighting lives only in the assembly below.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from neurolysis.physics.transport import TransportOperators, TransportSolver, bolus_field, bolus_radius_m, cylinder_operators, run_transport

GAUSS_X = np.array([-np.sqrt(3 / 5), 0.0, np.sqrt(3 / 5)])
GAUSS_W = np.array([5 / 9, 8 / 9, 5 / 9])


def radial_operators(nodes_m, d_element, phi_element, clearance_nodes, dim=3, sink_nodes=()):
    """P1 stiffness and lumped capacity on 0 <= r <= R with measure s_d r^(d-1) dr (s_3 = 4 pi, s_2 = 2 pi per m)."""
    r = np.asarray(nodes_m, float)
    a, b = r[:-1], r[1:]
    h = b - a
    surface = 4 * np.pi if dim == 3 else 2 * np.pi
    x = 0.5 * (a + b)[:, None] + 0.5 * h[:, None] * GAUSS_X
    w = 0.5 * h[:, None] * GAUSS_W * surface * x ** (dim - 1)
    measure = w.sum(axis=1)
    k_local = d_element * measure / h**2
    n = len(r)
    i = np.arange(n - 1)
    rows = np.concatenate([i, i + 1, i, i + 1])
    cols = np.concatenate([i, i + 1, i + 1, i])
    vals = np.concatenate([k_local, k_local, -k_local, -k_local])
    stiffness = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    left = ((b[:, None] - x) / h[:, None] * w).sum(axis=1) * phi_element
    right = ((x - a[:, None]) / h[:, None] * w).sum(axis=1) * phi_element
    capacity = np.bincount(i, left, n) + np.bincount(i + 1, right, n)
    return TransportOperators(stiffness, capacity, np.asarray(clearance_nodes, float), np.asarray(sink_nodes, int))


D_EFF = 1.0e-10  # m^2/s, tissue-averaged conductance
PHI = 0.2
ALPHA = D_EFF / PHI  # diffusivity seen by c
K_CLEAR = 5e-4  # 1/s
T0, T_END = 600.0, 1800.0
AMOUNT = 1e-9  # c x m^3 in the accessible space
R_MAX = 10e-3


def point_source(r, t):
    """Instantaneous point source with clearance, in 3D (started t0 earlier to be smooth):

        phi c_t = D_eff lap c - k phi c,  c(r, t) = S / (phi (4 pi a (t + t0))^(3/2)) exp(-r^2 / (4 a (t + t0)) - k t),  a = D_eff / phi.
    """
    s = t + T0
    return AMOUNT / (PHI * (4 * np.pi * ALPHA * s) ** 1.5) * np.exp(-(r**2) / (4 * ALPHA * s) - K_CLEAR * t)


def _run(n_cells, n_steps, theta):
    r = np.linspace(0.0, R_MAX, n_cells + 1)
    ops = radial_operators(r, np.full(n_cells, D_EFF), np.full(n_cells, PHI), np.full(n_cells + 1, K_CLEAR))
    c = point_source(r, 0.0)
    solver = TransportSolver(ops, T_END / n_steps, theta)
    for _ in range(n_steps):
        c = solver.step(c)
    return r, ops, c


def _norm(ops, field_):
    """Relative capacity-weighted L2 norm (against the exact end state)."""
    r = np.linspace(0.0, R_MAX, len(field_))
    return np.sqrt(ops.capacity_m3 @ field_**2) / np.sqrt(ops.capacity_m3 @ point_source(r, T_END) ** 2)


def _solve(n_cells, n_steps, theta):
    r, ops, c = _run(n_cells, n_steps, theta)
    return _norm(ops, c - point_source(r, T_END))


def test_space_convergence_order_two():
    """Crank-Nicolson with a step small enough not to matter; L2 error vs h."""
    sizes, errors = [], []
    for n in (25, 50, 100):
        sizes.append(R_MAX / n)
        errors.append(_solve(n, 400, 0.5))
    rate = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert rate == pytest.approx(2.0, abs=0.25), f"observed L2 rate in space: {rate:.2f}, errors {errors}"


@pytest.mark.parametrize("theta, order", [(1.0, 1.0), (0.5, 2.0)])
def test_time_convergence_order(theta, order):
    """Backward Euler is first order, Crank-Nicolson second (fine mesh; differences cancel the space error)."""
    _, ops, fine = _run(200, 2560, 0.5)
    steps = (10, 20, 40)
    errors = [_norm(ops, _run(200, s, theta)[2] - fine) for s in steps]
    rate = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert rate == pytest.approx(order, abs=0.2), f"observed rate in time: {rate:.2f}, errors {errors}"


@pytest.mark.parametrize("theta", [1.0, 0.5])
def test_mass_balance_to_solver_tolerance(theta):
    """Heterogeneous D and k, zero-flux boundary: (S1 - S0)/dt = -sum m k (theta c1 + (1-theta) c0) exactly."""
    rng = np.random.default_rng(3)
    n = 60
    r = np.linspace(0.0, 5e-3, n + 1)
    ops = radial_operators(r, D_EFF * rng.uniform(0.01, 3.0, n), np.full(n, PHI), rng.uniform(0.0, 2e-3, n + 1))
    c = bolus_field(r, ops.capacity_m3, 0.05, 50.0, PHI)
    assert ops.amount(c) == pytest.approx(0.05e-6 * 50.0, rel=1e-12)
    solver = TransportSolver(ops, 20.0, theta)
    for _ in range(30):
        c1 = solver.step(c)
        lhs = (ops.amount(c1) - ops.amount(c)) / 20.0
        rhs = -(theta * ops.clearance_rate(c1) + (1 - theta) * ops.clearance_rate(c))
        assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-12 * abs(ops.amount(c)) / 20.0)
        c = c1


def test_total_amount_decays_at_clearance_rate():
    """Uniform k: S(t) = S0 exp(-k t); backward Euler gives S0 (1 + k dt)^-n exactly."""
    r = np.linspace(0.0, 5e-3, 41)
    ops = radial_operators(r, np.full(40, D_EFF), np.full(40, PHI), np.full(41, K_CLEAR))
    c0 = bolus_field(r, ops.capacity_m3, 0.1, 1.0, PHI)
    result = run_transport(TransportSolver(ops, 10.0, 1.0), c0, 600.0)
    expected = result.amount[0] * (1 + K_CLEAR * 10.0) ** -np.arange(len(result.amount))
    np.testing.assert_allclose(result.amount, expected, rtol=1e-10)
    assert result.amount[-1] / result.amount[0] == pytest.approx(np.exp(-K_CLEAR * 600.0), rel=0.01)


def test_bolus_radius_formula():
    """r = (3 V / (4 pi phi))^(1/3): 1 mL at phi 0.2 is 10.6 mm; 8x the volume doubles r."""
    assert bolus_radius_m(1.0, 0.2) == pytest.approx((3e-6 / (4 * np.pi * 0.2)) ** (1 / 3), rel=1e-12)
    assert bolus_radius_m(1.0, 0.2) * 1e3 == pytest.approx(10.6, abs=0.05)
    assert bolus_radius_m(8.0, 0.2) == pytest.approx(2 * bolus_radius_m(1.0, 0.2), rel=1e-12)


def test_cylinder_operators_conserve_and_hold_the_area():
    """physics.transport.cylinder_operators (the topical model of tests/validation/test_chemical_dose.py): zero row sums,
    capacity = theta pi R^2, and a held edge fills the cylinder to the bath value."""
    r = np.linspace(0.0, 0.2e-3, 81)
    ops = cylinder_operators(r, np.full(80, 1e-10), np.full(80, 0.65), [80])
    assert np.abs(np.asarray(ops.stiffness.sum(axis=1)).ravel()).max() < 1e-12 * ops.stiffness.diagonal().max()
    assert ops.capacity_m3.sum() == pytest.approx(0.65 * np.pi * 0.2e-3**2, rel=1e-12)
    u = np.full(81, 10.0)
    u[80] = 0.0
    result = run_transport(TransportSolver(ops, 5.0), u, 2000.0)  # u = bath - c -> 0
    assert result.concentration.max() < 1e-3 * 10.0


@pytest.mark.parametrize("theta", [1.0, 0.5])
def test_jacobi_cg_matches_direct_solve(theta):
    """The 3D engine's linear solver (``physics.linear.JacobiCGSolver``, diagonal-preconditioned CG,
    warm-started) gives the direct solution to its tolerance and keeps the mass balance."""
    from neurolysis.physics.linear import JacobiCGSolver

    rng = np.random.default_rng(5)
    n = 80
    r = np.linspace(0.0, 8e-3, n + 1)
    ops = radial_operators(r, D_EFF * rng.uniform(0.01, 3.0, n), np.full(n, PHI), rng.uniform(0.0, 2e-3, n + 1))
    c_direct = c_cg = bolus_field(r, ops.capacity_m3, 0.05, 50.0, PHI)
    cg = JacobiCGSolver(rtol=1e-10)
    direct = TransportSolver(ops, 600.0, theta)
    iterative = TransportSolver(ops, 600.0, theta, lambda matrix: lambda rhs: cg.solve(matrix, rhs, c_cg))
    for _ in range(10):
        c0 = c_cg
        c_direct, c_cg = direct.step(c_direct), iterative.step(c_cg)
        np.testing.assert_allclose(c_cg, c_direct, rtol=0, atol=1e-7 * c_direct.max())
        lhs = (ops.amount(c_cg) - ops.amount(c0)) / 600.0
        assert lhs == pytest.approx(-(theta * ops.clearance_rate(c_cg) + (1 - theta) * ops.clearance_rate(c0)), rel=1e-7)
    assert cg.solves == 10 and cg.iterations > 0 and cg.builds == 0
