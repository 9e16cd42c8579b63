"""Linear (P1) tetrahedra: fixed-pattern assembly, AMG-preconditioned CG, potential and heat.

Coefficients are constant per element, so every operator is  A(c) = sum_e c_e A_e  with
A_e[i, j] = V_e grad(phi_i) . grad(phi_j). The unit contributions form one sparse matrix
P (pattern slot x element), so a new coefficient field costs one sparse mat-vec
``P @ c``; sub-blocks (free x free, free x fixed) are fixed gathers of that data.

The systems are solved by conjugate gradients preconditioned with one V-cycle of a
classical (Ruge-Stueben) algebraic multigrid hierarchy (pyamg) built for the first
matrix and reused while the coefficients drift (rebuilt only when CG slows down), with
warm starts extrapolated from the last two solutions.

Equations (SI units):
  potential   div(sigma grad phi) = 0, phi fixed on the electrodes (and the pad)
  heat        rho c dT/dt = div(k grad T) + Q + h_x (T_ref - T), backward Euler,
              lumped mass M_i = sum_e c_e V_e / 4, far boundary held at its temperature.
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np
import pyamg
import scipy.sparse as sp

from neurolysis.physics.fem import extrapolated_guess

SOLVER_RTOL = 1e-6
"""Relative residual of every CG solve (temperature rises are solved, so 1e-6 of a 43 C
rise is < 1e-4 C; the lesion changes < 0.01 mm from 1e-8, tests/verification/test_rf3d.py)."""


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


@contextlib.contextmanager
def _native_stdout_silenced():
    """pyamg's compiled Ruge-Stueben splitting prints diagnostics ("Outer denominator was
    zero") straight to file descriptor 1, which would corrupt ``--json`` output: point fd 1
    at /dev/null for the duration (Python-level stdout is flushed first)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded use): nothing to protect
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _ruge_stuben(matrix: sp.csr_matrix):
    """Classical AMG; one forward Gauss-Seidel sweep before and one backward after (a
    symmetric V-cycle at half the cost of pyamg's default symmetric sweeps)."""
    import warnings

    with warnings.catch_warnings(), _native_stdout_silenced():
        warnings.simplefilter("ignore")
        return pyamg.ruge_stuben_solver(
            matrix,
            max_coarse=300,
            keep=False,
            presmoother=("gauss_seidel", {"sweep": "forward"}),
            postsmoother=("gauss_seidel", {"sweep": "backward"}),
        )


def _m_matrix(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Positive off-diagonal entries moved onto the diagonal (row sums kept)."""
    coo = matrix.tocoo()
    positive = (coo.row != coo.col) & (coo.data > 0)
    extra = np.bincount(coo.row[positive], weights=coo.data[positive], minlength=matrix.shape[0])
    data = np.where(positive, 0.0, coo.data)
    out = sp.csr_matrix((data, (coo.row, coo.col)), shape=matrix.shape) + sp.diags(extra)
    out.eliminate_zeros()
    return out.tocsr()


class AMGSolver:
    """CG preconditioned by a reused Ruge-Stueben hierarchy, rebuilt when CG needs > ``rebuild_after`` iterations."""

    def __init__(self, rtol: float = SOLVER_RTOL, rebuild_after: int = 25, max_iterations: int = 200):
        self.rtol = rtol
        self.rebuild_after = rebuild_after
        self.max_iterations = max_iterations
        self._ml = None
        self.builds = 0
        self.fallbacks = 0
        self.iterations = 0
        self.solves = 0

    def _build(self, matrix: sp.csr_matrix) -> None:
        pruned = matrix.copy()
        pruned.eliminate_zeros()  # entries of non-conducting elements are explicit zeros
        self._ml = _ruge_stuben(pruned)
        if not all(np.all(np.isfinite(level.A.data)) for level in self._ml.levels):
            # rows without negative couplings (obtuse tets) break classical interpolation:
            # build the hierarchy for the nearest M-matrix (positive couplings moved to the diagonal)
            self._ml = _ruge_stuben(_m_matrix(pruned))
            self.fallbacks += 1
        self._precond = self._ml.aspreconditioner(cycle="V")
        self.builds += 1

    def solve(self, matrix: sp.csr_matrix, rhs: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
        """x with ``matrix @ x = rhs`` (one column); ``guess`` warm-starts CG."""
        if self._ml is None:
            self._build(matrix)
        self.solves += 1
        x, iterations, converged = self._pcg(matrix, rhs, guess)
        if not converged:
            # the matrix moved far from the one the hierarchy was built for (e.g. vaporisation
            # near the tip): rebuild once and continue from where CG stopped
            self._build(matrix)
            x, iterations, converged = self._pcg(matrix, rhs, x)
            if not converged:
                raise RuntimeError(f"CG did not reach rtol {self.rtol:g} in {self.max_iterations} iterations, even with a rebuilt AMG hierarchy")
        if iterations > self.rebuild_after:
            self._build(matrix)
        return x

    def solve_nonsymmetric(self, operator, matrix: sp.csr_matrix, rhs: np.ndarray) -> np.ndarray:
        """x with ``operator(x) = rhs`` by right-preconditioned GMRES (no restart), the
        preconditioner being one V-cycle of the hierarchy of ``matrix`` (a symmetric
        approximation of the operator); rebuilt as in :meth:`solve`."""
        if self._ml is None:
            self._build(matrix)
        self.solves += 1
        x, iterations, converged = self._gmres(operator, rhs)
        if not converged:
            self._build(matrix)
            x2, iterations, converged = self._gmres(operator, rhs - operator(x))
            x = x + x2
            if not converged:
                raise RuntimeError(f"GMRES did not reach rtol {self.rtol:g} in {self.max_iterations} iterations, even with a rebuilt AMG hierarchy")
        if iterations > self.rebuild_after:
            self._build(matrix)
        return x

    def _gmres(self, operator, b):
        beta = float(np.linalg.norm(b))
        if beta == 0.0:
            return np.zeros_like(b), 0, True
        m = self.max_iterations
        basis, directions = [b / beta], []
        hess = np.zeros((m + 1, m))
        g = np.zeros(m + 1)
        g[0] = beta
        y = np.zeros(0)
        for j in range(m):
            z = self._precond @ basis[j]
            directions.append(z)
            w = operator(z)
            for i in range(j + 1):
                hess[i, j] = float(w @ basis[i])
                w -= hess[i, j] * basis[i]
            hess[j + 1, j] = float(np.linalg.norm(w))
            y, *_ = np.linalg.lstsq(hess[: j + 2, : j + 1], g[: j + 2], rcond=None)
            residual = float(np.linalg.norm(hess[: j + 2, : j + 1] @ y - g[: j + 2]))
            if residual <= self.rtol * beta or hess[j + 1, j] <= 1e-14 * beta:
                self.iterations += j + 1
                return np.array(directions).T @ y, j + 1, True
            basis.append(w / hess[j + 1, j])
        self.iterations += m
        return np.array(directions).T @ y, m, False

    def _pcg(self, matrix, b, guess):
        x, it, converged = preconditioned_cg(matrix, b, guess, lambda r: self._precond @ r, self.rtol, self.max_iterations)
        self.iterations += it
        return x, it, converged


def preconditioned_cg(matrix, b: np.ndarray, guess: np.ndarray | None, precondition, rtol: float, max_iterations: int):
    """(x, iterations, converged) of CG on ``matrix @ x = b`` (SPD) with ``precondition(r)``,
    stopping at ||r|| <= rtol ||b||. Hand-written rather than scipy's ``cg`` to count the
    iterations and to return the last iterate when it stalls (the caller rebuilds AMG)."""
    norm_b = float(np.linalg.norm(b))
    if norm_b == 0.0:
        return np.zeros_like(b), 0, True
    x = np.zeros_like(b) if guess is None else np.array(guess, dtype=float)
    r = b - matrix @ x
    target = rtol * norm_b
    if np.linalg.norm(r) <= target:
        return x, 0, True
    z = precondition(r)
    p = z.copy()
    rz = float(r @ z)
    for it in range(1, max_iterations + 1):
        ap = matrix @ p
        alpha = rz / float(p @ ap)
        x += alpha * p
        r -= alpha * ap
        if np.linalg.norm(r) <= target:
            return x, it, True
        z = precondition(r)
        rz_new = float(r @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, max_iterations, False


class JacobiCGSolver:
    """CG preconditioned by the diagonal: for mass-dominated systems (M/dt + A with the
    diffusion length sqrt(D dt) about one element or less, e.g. drug transport), where
    a few cheap iterations beat AMG V-cycles. Same interface and counters as
    :class:`AMGSolver` (``builds`` stays 0)."""

    def __init__(self, rtol: float = SOLVER_RTOL, max_iterations: int = 2000):
        self.rtol = rtol
        self.max_iterations = max_iterations
        self.builds = 0
        self.iterations = 0
        self.solves = 0
        self._key = None
        self._inverse_diagonal = None

    def solve(self, matrix: sp.csr_matrix, rhs: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
        """x with ``matrix @ x = rhs`` (symmetric positive definite); ``guess`` warm-starts CG."""
        if self._key is not matrix:
            diagonal = matrix.diagonal()
            if np.any(diagonal <= 0):
                raise ValueError("JacobiCGSolver: the matrix needs a positive diagonal")
            self._key, self._inverse_diagonal = matrix, 1.0 / diagonal
        self.solves += 1
        inverse = self._inverse_diagonal
        x, it, converged = preconditioned_cg(matrix, rhs, guess, lambda r: inverse * r, self.rtol, self.max_iterations)
        if not converged:
            raise RuntimeError(f"Jacobi-CG did not reach rtol {self.rtol:g} in {self.max_iterations} iterations")
        self.iterations += it
        return x


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

    def solve(self, sigma_element: np.ndarray) -> np.ndarray:
        data = self.pattern.data(sigma_element * self._mask)
        rhs = -(self._fd.matrix(data) @ self.fixed_value)
        solved = self.solver.solve(self._ff.matrix(data), rhs, extrapolated_guess(self._history))
        self._history[:] = [solved] + self._history[:1]
        self.phi[self.free] = solved
        self._data = data
        return self.phi

    def unit_joule(self, sigma_element: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Q = sigma |grad phi|^2 per element for 1 V (W/m^3/V^2)."""
        g = self.geometry.gradient(phi)
        return sigma_element * self._mask * np.einsum("ej,ej->e", g, g)

    def unit_power_w(self, unit_joule: np.ndarray) -> float:
        """Power for 1 V (W/V^2) = 1 / impedance."""
        return float(unit_joule @ self.geometry.volume)

    def terminal_power_w(self) -> float:
        """Power for 1 V from the discrete fluxes at the fixed nodes: sum_i phi_i (K phi)_i (W/V^2)."""
        return float(self.fixed_value @ (self._dn.matrix(self._data) @ self.phi))

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
