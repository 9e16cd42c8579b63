"""Quasi-static electric potential around an RF electrode.

    div( sigma(T) grad V ) = 0      in tissue
    V = V0 on the active tip,   sigma dV/dn = 0 on the insulated shaft and the axis,
    V = 0 on the far boundary (the dispersive pad).

The problem is linear in V0 for a given conductivity field, so it is solved once for
V0 = 1 (the unit potential phi); the generator's voltage scales it: V = V0 phi, and
the Joule heat is Q = sigma |grad V|^2 = V0^2 sigma |grad phi|^2.
"""

from __future__ import annotations

import numpy as np
from skfem import MeshTri

from neurolysis.physics.fem import TWO_PI, ElementGeometry, PatternOperator
from neurolysis.physics.linear import LaggedFactorSolver
from neurolysis.physics.mesh import NeedleMesh


def joule_heat(sigma: np.ndarray, grad_r: np.ndarray, grad_z: np.ndarray) -> np.ndarray:
    """Q = sigma |grad V|^2  (W/m^3) from conductivity (S/m) and field components (V/m)."""
    return sigma * (grad_r**2 + grad_z**2)


class UnitPotential:
    """Solver for the potential phi with phi = 1 on the active tip and 0 far away."""

    def __init__(self, mesh: MeshTri, geometry: ElementGeometry, stiffness_entries, conducting: np.ndarray, active_nodes, ground_nodes):
        """``conducting``: mask of elements that carry current; ``active_nodes`` at phi = 1,
        ``ground_nodes`` at phi = 0 (only those touching a conducting element count)."""
        self.geometry = geometry
        n = mesh.p.shape[1]
        in_domain = np.zeros(n, bool)
        in_domain[mesh.t[:, conducting].ravel()] = True
        fixed = np.zeros(n, bool)
        fixed[active_nodes] = True
        fixed[ground_nodes] = True
        fixed &= in_domain
        self.free = np.flatnonzero(in_domain & ~fixed)
        self.fixed = np.flatnonzero(fixed)
        self.fixed_value = np.isin(self.fixed, active_nodes).astype(float)
        self.active_nodes = np.intersect1d(active_nodes, np.flatnonzero(in_domain))
        self._mask = conducting.astype(float)
        rows, cols, values, element = stiffness_entries
        self._ff = PatternOperator(rows, cols, values, element, n, self.free, self.free)
        self._fd = PatternOperator(rows, cols, values, element, n, self.free, self.fixed)
        self._active_rows = PatternOperator(rows, cols, values, element, n, self.active_nodes, np.arange(n))
        self._solver = LaggedFactorSolver()
        self._previous = None
        self.phi = np.zeros(n)
        self.phi[self.fixed] = self.fixed_value

    @classmethod
    def around_needle(cls, needle_mesh: NeedleMesh, geometry: ElementGeometry, stiffness_entries) -> UnitPotential:
        """Tissue conducts; the active tip is at 1 V, the far boundary (pad) at 0 V."""
        return cls(needle_mesh.mesh, geometry, stiffness_entries, needle_mesh.tissue, needle_mesh.active_nodes, needle_mesh.outer_nodes)

    def solve(self, sigma_element: np.ndarray) -> np.ndarray:
        """phi at every node for element conductivities ``sigma_element`` (non-conducting elements ignored)."""
        coefficient = sigma_element * self._mask
        rhs = -(self._fd.matrix(coefficient) @ self.fixed_value)
        guess = self.phi[self.free] if self._previous is None else 2.0 * self.phi[self.free] - self._previous
        self._previous = self.phi[self.free].copy()
        self.phi[self.free] = self._solver.solve(self._ff.matrix(coefficient), rhs, guess)
        return self.phi

    @property
    def factorizations(self) -> int:
        return self._solver.factorizations

    def field(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Element field components (-dphi/dr, -dphi/dz) per volt."""
        return -(self.geometry.grad_r @ phi), -(self.geometry.grad_z @ phi)

    def unit_joule(self, sigma_element: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Joule heat per element for 1 V on the tip (W/m^3/V^2), zero where nothing conducts."""
        er, ez = self.field(phi)
        return joule_heat(sigma_element * self._mask, er, ez)

    def unit_power_w(self, unit_joule: np.ndarray) -> float:
        """Power for 1 V (W/V^2) = 1 / impedance: 2 pi sum_e Q_e integral_e r dA."""
        return TWO_PI * float(unit_joule @ self.geometry.weighted_volume)

    def electrode_current_a(self, sigma_element: np.ndarray, phi: np.ndarray) -> float:
        """Current leaving the active tip for 1 V (A/V), from the discrete flux at its nodes."""
        return TWO_PI * float((self._active_rows.matrix(sigma_element * self._mask) @ phi).sum())
