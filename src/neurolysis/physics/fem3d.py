"""Linear (P1) tetrahedra: fixed-pattern assembly, AMG-preconditioned CG, potential and heat.

Coefficients are constant per element, so every operator is  A(c) = sum_e c_e A_e  with
A_e[i, j] = V_e grad(phi_i) . grad(phi_j). The unit contributions form one sparse matrix
P (pattern slot x element), so a new coefficient field costs one sparse mat-vec
``P @ c``; sub-blocks (free x free, free x fixed) are fixed gathers of that data.

The systems are solved by conjugate gradients preconditioned with one V-cycle of a
classical (Ruge-Stueben) algebraic multigrid hierarchy built for the first matrix and
reused while the coefficients drift (rebuilt only when CG slows down;
:class:`neurolysis.physics.linear.AMGSolver`), with warm starts extrapolated from the
last two solutions.

Equations (SI units):
  potential   div(sigma grad phi) = 0, phi fixed on the electrodes (and the pad)
  heat        rho c dT/dt = div(k grad T) + Q + h_x (T_ref - T), backward Euler,
              lumped mass M_i = sum_e c_e V_e / 4, far boundary held at its temperature.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurolysis.physics.linear import SOLVER_RTOL, AMGSolver, extrapolated_guess


class TetGeometry:
    """Volumes (m^3) and hat-function gradients (1/m) of a P1 tet mesh."""

    def __init__(self, nodes: np.ndarray, tets: np.ndarray):
        x = nodes[tets]  # (n, 4, 3)
        jac = x[:, 1:] - x[:, :1]  # rows: edges from vertex 0
        det = np.linalg.det(jac)
        self.volume = np.abs(det) / 6.0
        inv = np.linalg.inv(jac)  # columns: gradients of lambda_1..3
        g = inv.transpose(0, 2, 1)
        self.grads = np.concatenate([-g.sum(axis=1, keepdims=True), g], axis=1)  # (n, 4, 3)
        self.tets = tets
        n_nodes = len(nodes)
        n_el = len(tets)
        self.lumped = sp.csr_matrix((np.repeat(self.volume / 4.0, 4), (tets.ravel(), np.repeat(np.arange(n_el), 4))), shape=(n_nodes, n_el))

    def node_weights(self, element_values: np.ndarray) -> np.ndarray:
        """Lumped nodal integral of an element field: sum_e c_e V_e / 4 over the tets of node i."""
        return self.lumped @ element_values

    def gradient(self, nodal: np.ndarray) -> np.ndarray:
        """(n_el, 3) constant gradient of a P1 field."""
        return np.einsum("eij,ei->ej", self.grads, nodal[self.tets])


class StiffnessPattern:
    """Global P1 stiffness for element coefficients by one sparse mat-vec."""

    def __init__(self, geometry: TetGeometry, n_nodes: int):
        tets = geometry.tets
        n_el = len(tets)
        local = np.einsum("eik,ejk->eij", geometry.grads, geometry.grads) * geometry.volume[:, None, None]
        rows = np.repeat(tets, 4, axis=1).ravel()
        cols = np.tile(tets, (1, 4)).ravel()
        keys = rows * n_nodes + cols
        unique, slot = np.unique(keys, return_inverse=True)
        self.n_nodes = n_nodes
        self.indices = (unique % n_nodes).astype(np.int32)
        counts = np.bincount(unique // n_nodes, minlength=n_nodes)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        element = np.repeat(np.arange(n_el), 16)
        self.unit = sp.csr_matrix((local.ravel(), (slot.ravel(), element)), shape=(len(unique), n_el))

    def data(self, coefficient: np.ndarray) -> np.ndarray:
        """Values of sum_e c_e A_e in the global pattern."""
        return self.unit @ coefficient

    def matrix(self, data: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data, self.indices, self.indptr), shape=(self.n_nodes, self.n_nodes))

    def block(self, row_nodes: np.ndarray, col_nodes: np.ndarray) -> Block:
        return Block(self, row_nodes, col_nodes)


class Block:
    """A fixed (rows x cols) sub-block of the global pattern, gathered from its data."""

    def __init__(self, pattern: StiffnessPattern, row_nodes, col_nodes):
        marker = sp.csr_matrix((np.arange(1, len(pattern.indices) + 1, dtype=float), pattern.indices, pattern.indptr), shape=(pattern.n_nodes,) * 2)
        sub = marker[row_nodes][:, col_nodes].tocsr()
        self._take = sub.data.astype(np.int64) - 1
        self._indices, self._indptr, self.shape = sub.indices, sub.indptr, sub.shape

    def matrix(self, data: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data[self._take], self._indices, self._indptr), shape=self.shape)


class Potential3D:
    """phi with fixed values on electrode (and pad) nodes; only conducting elements count.

    ``fixed_values``: dict node array -> potential (V per unit generator voltage).
    """

    def __init__(self, geometry: TetGeometry, pattern: StiffnessPattern, conducting: np.ndarray, fixed: list[tuple[np.ndarray, float]], rtol: float = SOLVER_RTOL):
        n = pattern.n_nodes
        in_domain = np.zeros(n, bool)
        in_domain[geometry.tets[conducting].ravel()] = True
        value = np.full(n, np.nan)
        for nodes, v in fixed:
            value[nodes] = v
        is_fixed = in_domain & np.isfinite(value)
        self.fixed = np.flatnonzero(is_fixed)
        self.free = np.flatnonzero(in_domain & ~is_fixed)
        self.fixed_value = value[self.fixed]
        self.geometry = geometry
        self.pattern = pattern
        self._mask = conducting.astype(float)
        self._ff = pattern.block(self.free, self.free)
        self._fd = pattern.block(self.free, self.fixed)
        self._dn = pattern.block(self.fixed, np.arange(n))
        self.solver = AMGSolver(rtol)
        self._history: list[np.ndarray] = []
        self.phi = np.zeros(n)
        self.phi[self.fixed] = self.fixed_value

    def _free_values(self, data: np.ndarray, guess: np.ndarray | None) -> np.ndarray:
        """phi at the free nodes for the stiffness ``data``, the fixed nodes held."""
        return self.solver.solve(self._ff.matrix(data), -(self._fd.matrix(data) @ self.fixed_value), guess)

    def _terminal_power_w(self, data: np.ndarray, phi: np.ndarray) -> float:
        return float(self.fixed_value @ (self._dn.matrix(data) @ phi))

    def solve(self, sigma_element: np.ndarray) -> np.ndarray:
        data = self.pattern.data(sigma_element * self._mask)
        solved = self._free_values(data, extrapolated_guess(self._history))
        self._history[:] = [solved] + self._history[:1]
        self.phi[self.free] = solved
        self._data = data
        return self.phi

    def detached_solve(self, sigma_element: np.ndarray) -> tuple[np.ndarray, float]:
        """phi (V per V) and the terminal conductance (S) for ``sigma_element``, leaving the solver's
        state (phi, warm-start history) as it was: a side solve such as the stimulation test's."""
        data = self.pattern.data(sigma_element * self._mask)
        phi = np.zeros(self.pattern.n_nodes)
        phi[self.fixed] = self.fixed_value
        phi[self.free] = self._free_values(data, None)
        return phi, self._terminal_power_w(data, phi)

    def unit_joule(self, sigma_element: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Q = sigma |grad phi|^2 per element for 1 V (W/m^3/V^2)."""
        g = self.geometry.gradient(phi)
        return sigma_element * self._mask * np.einsum("ej,ej->e", g, g)

    def unit_power_w(self, unit_joule: np.ndarray) -> float:
        """Power for 1 V (W/V^2) = 1 / impedance."""
        return float(unit_joule @ self.geometry.volume)

    def terminal_power_w(self) -> float:
        """Power for 1 V from the discrete fluxes at the fixed nodes: sum_i phi_i (K phi)_i (W/V^2)."""
        return self._terminal_power_w(self._data, self.phi)

    def field(self, phi: np.ndarray) -> np.ndarray:
        return -self.geometry.gradient(phi)


class Heat3D:
    """Backward-Euler Pennes steps with the far boundary held fixed, split into free + load responses."""

    def __init__(self, geometry: TetGeometry, pattern: StiffnessPattern, fixed_nodes: np.ndarray, rtol: float = SOLVER_RTOL):
        n = pattern.n_nodes
        self.geometry = geometry
        self.pattern = pattern
        self.fixed = np.asarray(fixed_nodes)
        free = np.ones(n, bool)
        free[self.fixed] = False
        self.free = np.flatnonzero(free)
        self._ff = pattern.block(self.free, self.free)
        self._fd = pattern.block(self.free, self.fixed)
        self._boundary = pattern.block(self.fixed, np.arange(n))
        self.rtol = rtol
        self.solvers: dict[float, AMGSolver] = {}
        self._history: dict[tuple, list[np.ndarray]] = {}

    def operators(self, conductivity, heat_capacity, exchange, exchange_ref_c) -> dict:
        data = self.pattern.data(conductivity)
        w = self.geometry.node_weights
        return {
            "ff": self._ff.matrix(data),
            "fd": self._fd.matrix(data),
            "boundary": self._boundary.matrix(data),
            "mass": w(heat_capacity),
            "exchange": w(exchange),
            "exchange_ref": w(exchange * exchange_ref_c),
            "matrices": {},
        }

    def step(self, temp_c: np.ndarray, dt_s: float, ops: dict, loads=()):
        """(temperature without loads, [response to each element load]) after one step."""
        key = round(dt_s, 12)
        matrix = ops["matrices"].get(key)
        if matrix is None:
            diagonal = (ops["mass"] / dt_s + ops["exchange"])[self.free]
            matrix = ops["matrices"][key] = (ops["ff"] + sp.diags(diagonal, format="csr")).tocsr()
        solver = self.solvers.setdefault(key, AMGSolver(self.rtol))
        level = float(temp_c[self.fixed].mean())
        rise = temp_c - level
        base = ops["mass"] / dt_s * rise + ops["exchange_ref"] - ops["exchange"] * level
        columns = [base[self.free] - ops["fd"] @ rise[self.fixed]] + [self.geometry.node_weights(load)[self.free] for load in loads]
        out = []
        for i, rhs in enumerate(columns):
            history = self._history.setdefault((key, i), [])
            solved = solver.solve(matrix, rhs, extrapolated_guess(history))
            history[:] = [solved] + history[:1]
            out.append(solved)
        solution = np.array(temp_c, dtype=float)
        solution[self.free] = out[0] + level
        responses = []
        for solved in out[1:]:
            response = np.zeros_like(solution)
            response[self.free] = solved
            responses.append(response)
        return solution, responses

    def boundary_inflow_w(self, temp_c: np.ndarray, ops: dict, load_nodal: np.ndarray) -> float:
        """Heat entering through the fixed boundary (W): the residual of the full system there."""
        level = float(temp_c[self.fixed].mean())
        rise = temp_c - level
        local = ops["exchange"] * rise - (ops["exchange_ref"] - ops["exchange"] * level) - load_nodal
        return float((ops["boundary"] @ rise).sum() + local[self.fixed].sum())
