"""The bioheat solver against exact solutions, with observed convergence orders."""

import numpy as np
import pytest
from skfem import MeshTri

from neurolysis.physics.bioheat import HeatProblem
from neurolysis.physics.fem import TWO_PI, element_geometry, unit_stiffness_entries
from tests.conftest import polar_mesh

K_W_M_K = 0.5
RHO_C_J_M3_K = 3.7e6
PERFUSION_W_M3_K = 4.0e4  # w_b rho_b c_b: decay length 1/m = sqrt(k / w) = 3.5 mm


def _problem(mesh, fixed):
    geometry = element_geometry(mesh)
    return HeatProblem(mesh.p.shape[1], geometry, unit_stiffness_entries(mesh), fixed), geometry


def _l2(geometry, mesh, error):
    return np.sqrt(TWO_PI * float((geometry.load @ np.ones(mesh.t.shape[1])) @ error**2))


def heated_sphere(n):
    """Steady Pennes around a sphere held at Tb + dT inside a sphere held at Tb.

    k lap(theta) = w theta, theta = T - Tb, theta(a) = dT, theta(b) = 0:
        theta(rho) = dT (a / rho) sinh(m (b - rho)) / sinh(m (b - a)),  m^2 = w / k,
    which for b -> infinity is the textbook dT (a / rho) exp(-m (rho - a)).
    """
    a, b, blood, rise = 1e-3, 15e-3, 37.0, 40.0
    mesh = polar_mesh(a, b, n, n, grading=1.5)
    rho = np.hypot(*mesh.p)
    m = np.sqrt(PERFUSION_W_M3_K / K_W_M_K)
    exact = blood + rise * (a / rho) * np.sinh(m * (b - rho)) / np.sinh(m * (b - a))
    fixed = np.flatnonzero(np.isclose(rho, a) | np.isclose(rho, b))
    return mesh, fixed, exact, blood


def test_steady_pennes_sphere_second_order():
    sizes, errors = [], []
    for n in (8, 16, 32):
        mesh, fixed, exact, blood = heated_sphere(n)
        problem, geometry = _problem(mesh, fixed)
        n_el = mesh.t.shape[1]
        ops = problem.operators(np.full(n_el, K_W_M_K), np.full(n_el, RHO_C_J_M3_K), np.full(n_el, PERFUSION_W_M3_K), np.full(n_el, blood))
        start = np.where(np.isin(np.arange(mesh.p.shape[1]), fixed), exact, blood)
        steady, _ = problem.step(start, 1e12, ops)  # backward Euler with dt -> infinity is the steady state
        sizes.append(1 / n)
        errors.append(_l2(geometry, mesh, steady - exact))
    rate = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert rate == pytest.approx(2.0, abs=0.2), f"observed L2 rate: {rate:.2f}"


def gaussian(r, z, t, t0, diffusivity):
    """Free-space 3D heat kernel started at t0: T = 100 (t0 / (t0 + t))^1.5 exp(-rho^2 / (4 alpha (t0 + t)))."""
    return 100.0 * (t0 / (t0 + t)) ** 1.5 * np.exp(-(r**2 + z**2) / (4 * diffusivity * (t0 + t)))


def _diffuse(n, steps, end_s=20.0, t0=10.0):
    size = 6e-3
    mesh = MeshTri.init_tensor(np.linspace(0, size, n + 1), np.linspace(-size, size, 2 * n + 1))
    r, z = mesh.p
    fixed = np.flatnonzero(np.isclose(r, size) | np.isclose(abs(z), size))
    problem, geometry = _problem(mesh, fixed)
    n_el = mesh.t.shape[1]
    alpha = K_W_M_K / RHO_C_J_M3_K
    zeros = np.zeros(n_el)
    ops = problem.operators(np.full(n_el, K_W_M_K), np.full(n_el, RHO_C_J_M3_K), zeros, zeros)
    temp = gaussian(r, z, 0.0, t0, alpha)
    dt = end_s / steps
    for i in range(steps):
        temp[fixed] = gaussian(r[fixed], z[fixed], (i + 1) * dt, t0, alpha)
        temp, _ = problem.step(temp, dt, ops)
    return _l2(geometry, mesh, temp - gaussian(r, z, end_s, t0, alpha))


def test_transient_conduction_space_order_two():
    """Spatial order with a time step small enough not to matter (backward Euler, dt = 2.5 ms)."""
    errors = [_diffuse(n, 4000, end_s=10.0) for n in (8, 16, 32)]
    rate = np.polyfit(np.log([1 / 8, 1 / 16, 1 / 32]), np.log(errors), 1)[0]
    assert rate == pytest.approx(2.0, abs=0.25), f"observed spatial L2 rate: {rate:.2f}"


def test_transient_conduction_time_order_one():
    """Backward Euler is first order in time: halving dt halves the error on a fine mesh."""
    errors = [_diffuse(60, steps) for steps in (4, 8, 16)]
    rate = np.polyfit(np.log([1 / 4, 1 / 8, 1 / 16]), np.log(errors), 1)[0]
    assert rate == pytest.approx(1.0, abs=0.15), f"observed temporal L2 rate: {rate:.2f}"


def test_energy_conserved_without_losses():
    """No perfusion, insulated: all heat put in stays (stored energy = source x time)."""
    mesh = MeshTri.init_tensor(np.linspace(0, 5e-3, 21), np.linspace(-5e-3, 5e-3, 41))
    problem, geometry = _problem(mesh, np.array([], dtype=int))
    n_el = mesh.t.shape[1]
    zeros = np.zeros(n_el)
    ops = problem.operators(np.full(n_el, K_W_M_K), np.full(n_el, RHO_C_J_M3_K), zeros, zeros)
    source = np.where(geometry.r_centroid < 1e-3, 1e6, 0.0)  # W/m^3
    temp = np.full(mesh.p.shape[1], 37.0)
    total = 0.0
    for _ in range(10):
        base, (response,) = problem.step(temp, 0.5, ops, [source])
        temp = base + response
        total += TWO_PI * float(source @ geometry.weighted_volume) * 0.5
    stored = TWO_PI * float(ops.mass @ (temp - 37.0))
    assert stored == pytest.approx(total, rel=1e-7)
