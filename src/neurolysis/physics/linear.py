"""The linear solvers of the finite-element engines, in one place.

* :class:`AMGSolver` (3D engines): CG (``scipy.sparse.linalg.cg``) preconditioned by one
  V-cycle of a classical (Ruge-Stueben) algebraic multigrid hierarchy (pyamg) built for an
  earlier matrix and reused while the coefficients drift; right-preconditioned GMRES
  without restart with the same V-cycle for a nonsymmetric operator (the cryo engine's
  exact Newton Jacobian): :func:`right_gmres`, hand-written because it is faster than
  pyamg's or scipy's GMRES on those systems (see its docstring).
* :class:`JacobiCGSolver` (drug transport): scipy's CG preconditioned by the diagonal.
* :class:`LaggedFactorSolver` (2D axisymmetric engine): block CG preconditioned by the
  sparse LU factors of an earlier matrix, hand-written (see its docstring).
* :func:`extrapolated_guess`: a warm start from the last two solutions.

Every Krylov solve stops at the relative residual ||b - A x|| <= rtol ||b|| (the residual
CG updates; GMRES its least-squares estimate), counts its iterations (scipy's CG through
its callback), and keeps its last iterate when it stops short, so that the caller can
rebuild the preconditioner and go on from there. The engines report the counters
(``builds``, ``iterations``, ``solves``, ``factorizations``) in their ``mesh`` sections.
Benchmarks against the former hand-written Krylov loops and the other library candidates:
``bench/linear_solvers.py`` and ``docs/benchmarks.md`` (Linear solvers, issue 9).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

import numpy as np
import pyamg
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, cg, splu

SOLVER_RTOL = 1e-6
"""Relative residual of every CG solve of the 3D RF engine (temperature rises are solved,
so 1e-6 of a 43 C rise is < 1e-4 C; the lesion changes < 0.01 mm from 1e-8,
tests/verification/test_rf3d.py)."""


def extrapolated_guess(history: list[np.ndarray]) -> np.ndarray | None:
    """Linear extrapolation of the last two solutions (newest first): a close start for CG."""
    if not history:
        return None
    if len(history) == 1:
        return history[0]
    return 2.0 * history[0] - history[1]


def krylov_cg(matrix, rhs: np.ndarray, guess: np.ndarray | None, preconditioner, rtol: float, max_iterations: int):
    """(x, iterations, converged) of ``scipy.sparse.linalg.cg`` on ``matrix @ x = rhs`` (SPD)
    from ``guess`` with ``preconditioner`` (an operator approximating the inverse), stopping
    at ||r|| < rtol ||rhs||; its callback counts the iterations. Not converged within
    ``max_iterations`` updates: x is the iterate after the last of them (scipy tests the
    residual before each update, so it is allowed one more, whose result is dropped)."""
    if not np.any(rhs):
        return np.zeros_like(rhs, dtype=float), 0, True
    count, last = 0, None

    def counted(x):
        nonlocal count, last
        count += 1
        if count == max_iterations:
            last = x.copy()

    x, info = cg(matrix, rhs, x0=guess, rtol=rtol, maxiter=max_iterations + 1, M=preconditioner, callback=counted)
    if info == 0:
        return x, count, True
    return (x if last is None else last), max_iterations, False


def right_gmres(operator, rhs: np.ndarray, guess: np.ndarray | None, precondition, rtol: float, max_iterations: int):
    """(x, iterations, converged) of right-preconditioned GMRES without restart on
    ``operator(x) = rhs``, stopping when the least-squares residual is <= rtol ||b|| (or the
    Krylov space is exhausted), b = rhs, or with a ``guess`` the residual rhs - operator(guess)
    for which a correction is solved; not converged: x is the last iterate.

    Hand-written (modified Gram-Schmidt, the small least-squares problem solved afresh each
    step) because it is faster than the library on the cryo engine's Newton systems
    (``bench/linear_solvers.py``, docs/benchmarks.md, issue 9; 6.6 iterations per solve,
    two runs): 13.3 / 13.9 ms per solve against 19.2 / 19.7 ms for ``pyamg.krylov.fgmres``,
    15.0 / 15.6 ms for fgmres restarted every 30 iterations and 17.5 / 18.5 ms for
    ``scipy.sparse.linalg.gmres`` on the right-preconditioned operator. fgmres allocates
    and touches an n x ``max_iterations`` workspace per solve (and checks the true residual
    at the end); scipy's needs two more V-cycles per solve (x = M y, and its final true
    residual).
    """
    b = rhs if guess is None else rhs - operator(guess)
    beta = float(np.linalg.norm(b))
    if beta == 0.0:
        return (np.zeros_like(rhs, dtype=float) if guess is None else np.array(guess, dtype=float)), 0, True
    m = max_iterations
    basis, directions = [b / beta], []
    hess = np.zeros((m + 1, m))
    g = np.zeros(m + 1)
    g[0] = beta
    y = np.zeros(0)
    iterations, converged = m, False
    for j in range(m):
        z = precondition(basis[j])
        directions.append(z)
        w = operator(z)
        for i in range(j + 1):
            hess[i, j] = float(w @ basis[i])
            w -= hess[i, j] * basis[i]
        hess[j + 1, j] = float(np.linalg.norm(w))
        y, *_ = np.linalg.lstsq(hess[: j + 2, : j + 1], g[: j + 2], rcond=None)
        residual = float(np.linalg.norm(hess[: j + 2, : j + 1] @ y - g[: j + 2]))
        if residual <= rtol * beta or hess[j + 1, j] <= 1e-14 * beta:
            iterations, converged = j + 1, True
            break
        basis.append(w / hess[j + 1, j])
    x = np.array(directions).T @ y
    return (x if guess is None else guess + x), iterations, converged


# ------------------------------------------------------------------- algebraic multigrid


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


REBUILD_DIAGONAL_FACTOR = 10.0
"""A hierarchy is rebuilt before a solve whose matrix's diagonal moved by more than this factor
anywhere since it was built (heating alone moves conductivity by about 2x between 37 and 90 C)."""


def _ruge_stuben(matrix: sp.csr_matrix):
    """Classical AMG; one forward Gauss-Seidel sweep before and one backward after (a
    symmetric V-cycle at half the cost of pyamg's default symmetric sweeps)."""
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
    """Krylov solves preconditioned by a reused Ruge-Stueben hierarchy, rebuilt when a solve
    needs > ``rebuild_after`` iterations, before a solve whose matrix moved far (:meth:`_moved_far`),
    and once more, continuing from the last iterate, when a solve does not converge in
    ``max_iterations`` (then once for the nearest M-matrix)."""

    def __init__(self, rtol: float = SOLVER_RTOL, rebuild_after: int = 25, max_iterations: int = 200):
        self.rtol = rtol
        self.rebuild_after = rebuild_after
        self.max_iterations = max_iterations
        self._ml = None
        self._nearest_m_matrix = False
        self.builds = 0
        self.fallbacks = 0
        self.iterations = 0
        self.solves = 0

    def _build(self, matrix: sp.csr_matrix) -> None:
        pruned = matrix.copy()
        pruned.eliminate_zeros()  # entries of non-conducting elements are explicit zeros
        self._ml = _ruge_stuben(_m_matrix(pruned) if self._nearest_m_matrix else pruned)
        if not self._nearest_m_matrix and not all(np.all(np.isfinite(level.A.data)) for level in self._ml.levels):
            # rows without negative couplings (obtuse tets) break classical interpolation:
            # build the hierarchy for the nearest M-matrix (positive couplings moved to the diagonal)
            self._ml = _ruge_stuben(_m_matrix(pruned))
            self.fallbacks += 1
        self._precond = self._ml.aspreconditioner(cycle="V")
        self._built_diagonal = matrix.diagonal()
        self.builds += 1

    def solve(self, matrix: sp.csr_matrix, rhs: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
        """x with ``matrix @ x = rhs`` (one column, SPD) by CG; ``guess`` warm-starts it."""
        return self._solve(lambda start: krylov_cg(matrix, rhs, start, self._precond, self.rtol, self.max_iterations), matrix, guess, "CG")

    def solve_nonsymmetric(self, operator, matrix: sp.csr_matrix, rhs: np.ndarray) -> np.ndarray:
        """x with ``operator(x) = rhs`` by right-preconditioned GMRES (no restart) from zero,
        the preconditioner being one V-cycle of the hierarchy of ``matrix`` (a symmetric
        approximation of the operator); rebuilt as in :meth:`solve`."""
        return self._solve(lambda start: right_gmres(operator, rhs, start, self._precond.matvec, self.rtol, self.max_iterations), matrix, None, "GMRES")

    def _moved_far(self, matrix: sp.csr_matrix) -> bool:
        """Whether a diagonal entry moved by more than ``REBUILD_DIAGONAL_FACTOR`` since the build:
        tissue at the vaporisation temperature switching its conductivity by 1e4 from one step to
        the next (a cooled tip against the aorta) leaves the old hierarchy useless (200 CG
        iterations without converging, against 10 with a new one)."""
        if matrix.shape[0] != self._built_diagonal.shape[0]:
            return True
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = matrix.diagonal() / self._built_diagonal
        return bool(np.any((ratio > REBUILD_DIAGONAL_FACTOR) | (ratio < 1.0 / REBUILD_DIAGONAL_FACTOR)))

    def _solve(self, krylov, matrix, guess, name: str) -> np.ndarray:
        if self._ml is None or self._moved_far(matrix):
            self._build(matrix)
        self.solves += 1
        x, iterations, converged = krylov(guess)
        self.iterations += iterations
        if not converged:
            # the matrix moved far from the one the hierarchy was built for (e.g. vaporisation
            # near the tip): rebuild once and continue from where the solve stopped
            self._build(matrix)
            x, iterations, converged = krylov(x)
            self.iterations += iterations
            if not converged:
                # a hierarchy of the matrix itself can fail to precondition when many tets are
                # obtuse (a bipolar pair's mesh at some spacings): the nearest M-matrix's does
                self._nearest_m_matrix = True  # and for every later rebuild of this solver
                self._build(matrix)
                self.fallbacks += 1
                x, iterations, converged = krylov(x)
                self.iterations += iterations
            if not converged:
                raise RuntimeError(f"{name} did not reach rtol {self.rtol:g} in {self.max_iterations} iterations, even with a rebuilt AMG hierarchy")
        if iterations > self.rebuild_after:
            self._build(matrix)
        return x


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
        self._precond = None

    def solve(self, matrix: sp.csr_matrix, rhs: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
        """x with ``matrix @ x = rhs`` (symmetric positive definite); ``guess`` warm-starts CG."""
        if self._key is not matrix:
            diagonal = matrix.diagonal()
            if np.any(diagonal <= 0):
                raise ValueError("JacobiCGSolver: the matrix needs a positive diagonal")
            inverse = 1.0 / diagonal
            self._key = matrix
            self._precond = LinearOperator(matrix.shape, matvec=lambda r: inverse * r, dtype=float)
        self.solves += 1
        x, iterations, converged = krylov_cg(matrix, rhs, guess, self._precond, self.rtol, self.max_iterations)
        if not converged:
            raise RuntimeError(f"Jacobi-CG did not reach rtol {self.rtol:g} in {self.max_iterations} iterations")
        self.iterations += iterations
        return x


# ---------------------------------------------------------------- lagged sparse factors


class LaggedFactorSolver:
    """Solve a slowly changing symmetric positive definite system ``A X = B``.

    Conjugate gradients (one independent CG per column of B, advanced together)
    preconditioned by the sparse LU factors of an earlier matrix. Across time steps
    with slowly varying coefficients the old factors are a near-exact inverse and CG
    converges in a few back-substitutions; when it needs more than ``max_iterations``
    the factors are renewed from the current matrix.

    Hand-written, and kept so, for the results it gives rather than for speed
    (``bench/linear_solvers.py``, docs/benchmarks.md, issue 9, two runs):
    ``scipy.sparse.linalg.cg`` per column is as fast on the 2D engine's one-column potential
    systems (2.25 / 2.70 against 2.29 / 2.74 ms per solve) and faster on its two-column heat
    systems (2.77 / 3.30 against 3.49 / 3.91 ms), but stops each column at its own
    tolerance where this loop iterates until every column has converged. The solutions
    then differ at the tolerance (1.8e-8 relative), which changes printed digits of the 2D
    engine (the energy balance error, e.g. 7.9e-09 -> 1.2e-09 for the default lesion) and,
    through the pulsed generator's on/off decisions, its pulsed-mode traces (mean pulse
    voltage 37.37 -> 37.98 V); worth about 0.06 s of a 1.6 s default lesion.
    """

    def __init__(self, rtol: float = 1e-8, max_iterations: int = 8):
        self.rtol = rtol
        self.max_iterations = max_iterations
        self._lu = None
        self.factorizations = 0
        self.iterations = 0

    def _factor(self, matrix: sp.csr_matrix) -> None:
        # minimum degree on A^T + A suits these symmetric 2D stencils best (fill ~2/3 of COLAMD's)
        self._lu = splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A")
        self.factorizations += 1

    def solve(self, matrix: sp.csr_matrix, rhs: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
        """X with ``matrix @ X = rhs`` (rhs of shape (n,) or (n, k)); ``guess`` warm-starts CG."""
        if self._lu is None:
            self._factor(matrix)
            return self._lu.solve(rhs)
        x = self._pcg(matrix, rhs, guess)
        if x is None:
            self._factor(matrix)
            return self._lu.solve(rhs)
        return x

    def _pcg(self, matrix, rhs, guess):
        columns = rhs.shape[1] if rhs.ndim == 2 else None
        b = rhs if columns is not None else rhs[:, None]
        x = np.zeros_like(b) if guess is None else np.array(guess, dtype=float).reshape(b.shape)
        flat = columns is None  # one column: 1-D mat-vecs (scipy's multi-vector product is slower)
        times = (lambda v: (matrix @ v[:, 0])[:, None]) if flat else (lambda v: matrix @ v)
        r = b - times(x)
        target_squared = self.rtol**2 * np.einsum("ij,ij->j", b, b)
        if np.all(np.einsum("ij,ij->j", r, r) <= target_squared):
            return x.reshape(rhs.shape)
        z = self._lu.solve(r)
        p = z.copy()
        rz = np.einsum("ij,ij->j", r, z)
        for _ in range(self.max_iterations):
            self.iterations += 1
            ap = times(p)
            pap = np.einsum("ij,ij->j", p, ap)
            alpha = np.divide(rz, pap, out=np.zeros_like(rz), where=pap != 0)
            x += alpha * p
            r -= alpha * ap
            if np.all(np.einsum("ij,ij->j", r, r) <= target_squared):
                return x.reshape(rhs.shape)
            z = self._lu.solve(r)
            rz_new = np.einsum("ij,ij->j", r, z)
            beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz != 0)
            p = z + beta * p
            rz = rz_new
        return None
