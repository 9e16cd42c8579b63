"""The electric solver against exact potentials, with observed convergence orders."""

import numpy as np
import pytest
from skfem import MeshTri

from neurolysis.physics.electric import UnitPotential
from neurolysis.physics.fem import TWO_PI, element_geometry, unit_stiffness_entries
from tests.conftest import polar_mesh


def _solve(mesh, active, ground, sigma=0.5):
    geometry = element_geometry(mesh)
    solver = UnitPotential(mesh, geometry, unit_stiffness_entries(mesh), np.ones(mesh.t.shape[1], bool), active, ground)
    phi = solver.solve(np.full(mesh.t.shape[1], sigma))
    return solver, geometry, phi


def _l2_error(mesh, geometry, nodal_error):
    """r-weighted L2 norm of a nodal field with lumped (nodal) quadrature: sqrt(2 pi sum w_i e_i^2)."""
    weights = geometry.load @ np.ones(mesh.t.shape[1])
    return np.sqrt(TWO_PI * float(weights @ nodal_error**2))


def sphere_case(n):
    """Sphere of radius a at V = 1 inside a grounded sphere of radius b (3D, axisymmetric).

    Exact: V(rho) = (a / rho - a / b) / (1 - a / b);  current I = 4 pi sigma / (1/a - 1/b).
    """
    a, b = 1e-3, 10e-3
    mesh = polar_mesh(a, b, n, n, grading=1.6)
    rho = np.hypot(*mesh.p)
    active = np.flatnonzero(np.isclose(rho, a))
    ground = np.flatnonzero(np.isclose(rho, b))
    exact = (a / rho - a / b) / (1 - a / b)
    return mesh, active, ground, exact, 4 * np.pi / (1 / a - 1 / b)


def cylinder_case(n):
    """Coaxial cylinders: V = 1 at r = a, 0 at r = b, insulated ends.

    Exact: V(r) = ln(b / r) / ln(b / a);  current per length I/H = 2 pi sigma / ln(b / a).
    """
    a, b, height = 0.5e-3, 5e-3, 2e-3
    mesh = MeshTri.init_tensor(a + (b - a) * np.linspace(0, 1, n + 1) ** 1.5, np.linspace(0, height, max(2, n // 4) + 1))
    r = mesh.p[0]
    active = np.flatnonzero(np.isclose(r, a))
    ground = np.flatnonzero(np.isclose(r, b))
    return mesh, active, ground, np.log(b / r) / np.log(b / a), 2 * np.pi * height / np.log(b / a)


@pytest.mark.parametrize("case", [sphere_case, cylinder_case], ids=["sphere", "cylinder"])
def test_potential_converges_at_second_order(case):
    sizes, errors, current_errors = [], [], []
    for n in (8, 16, 32):
        mesh, active, ground, exact, conductance_per_sigma = case(n)
        solver, geometry, phi = _solve(mesh, active, ground)
        err = _l2_error(mesh, geometry, phi - exact)
        sizes.append(1.0 / n)
        errors.append(err)
        current = solver.electrode_current_a(np.full(mesh.t.shape[1], 0.5), phi)
        current_errors.append(abs(current / (0.5 * conductance_per_sigma) - 1))
    rate = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert rate == pytest.approx(2.0, abs=0.2), f"observed L2 rate: {rate:.2f}"
    assert current_errors[-1] < 0.01, f"electrode current off by {current_errors[-1]:.2%}"
    assert current_errors[-1] < current_errors[0]


def test_joule_power_equals_electrode_current():
    """Discrete identity: sum sigma |grad phi|^2 dV = I (for 1 V) -- the power the tip delivers."""
    mesh, active, ground, _, _ = sphere_case(16)
    solver, _, phi = _solve(mesh, active, ground)
    sigma = np.full(mesh.t.shape[1], 0.5)
    assert solver.unit_power_w(solver.unit_joule(sigma, phi)) == pytest.approx(solver.electrode_current_a(sigma, phi), rel=1e-8)
