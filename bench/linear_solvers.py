"""Linear solvers (issue 9): the solvers of ``physics/linear.py`` against the former
hand-written Krylov loops and the other library candidates, on the systems the engines
really solve.

Each engine runs with every solver object it creates replaced by a *contest*: each system
it is handed (matrix or operator, right-hand side and warm start, exactly as the engine
passes them) is solved by every variant in turn, in the same process, the order rotating
from one system to the next; every variant keeps its own state (AMG hierarchy or LU
factors, their reuse and rebuilds) and the engine goes on with the answer of the
production variant (``physics/linear.py``). Per variant: time per solve (Krylov only:
hierarchy builds and LU factorizations are timed apart, in the set-up column), iterations
per solve, and the largest difference from the former hand-written solver,
max |x - x_old| / max |x_old| over all solves.

Cases:

* ``rf3d``: plan ``lumbar-medial-branch`` / ``rf`` (3D engine): potential and heat, AMG-CG;
* ``cryo``: plan ``lumbar-medial-branch`` / ``cryo``: Newton systems (exact Jacobian across
  tissues, so all nonsymmetric), AMG-preconditioned GMRES;
* ``chemical``: plan ``lumbar-medial-branch`` / ``chemical``: drug transport, Jacobi-CG;
* ``rf2d``: ``simulate_rf(conventional_rf())`` (axisymmetric default lesion): potential
  (one column) and heat (two columns), CG preconditioned by lagged LU factors (the
  hand-written block CG is kept: it is both the production code and the reference).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/linear_solvers.py [--cases rf3d cryo chemical rf2d] [--repeat N]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyamg  # noqa: E402
from pyamg.krylov import cg as pyamg_cg  # noqa: E402
from pyamg.krylov import fgmres  # noqa: E402
from scipy.sparse.linalg import LinearOperator, gmres  # noqa: E402

from neurolysis.physics.linear import AMGSolver, JacobiCGSolver, LaggedFactorSolver, krylov_cg, right_gmres  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from rf_lesion import machine as rf_lesion_machine  # noqa: E402


def machine() -> str:
    return f"{rf_lesion_machine()}, pyamg {pyamg.__version__}"


# ------------------------------------------------------ the former hand-written loops
# (git show <before issue 9>:src/neurolysis/physics/fem3d.py), kept here as the reference


def _reference_pcg(matrix, b, guess, precondition, rtol, max_iterations):
    """(x, iterations, converged) of CG stopping at ||r|| <= rtol ||b|| (the former
    ``fem3d.preconditioned_cg``)."""
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


class HandWrittenAMG(AMGSolver):
    """The former ``fem3d.AMGSolver``: hand-written PCG and right-preconditioned GMRES
    (no restart, least squares on the Hessenberg matrix each step); the hierarchy code
    (build, reuse, rebuild rules) is the shared one."""

    def solve(self, matrix, rhs, guess=None):
        if self._ml is None:
            self._build(matrix)
        self.solves += 1
        x, iterations, converged = self._pcg(matrix, rhs, guess)
        if not converged:
            self._build(matrix)
            x, iterations, converged = self._pcg(matrix, rhs, x)
            if not converged:
                raise RuntimeError("reference CG did not converge")
        if iterations > self.rebuild_after:
            self._build(matrix)
        return x

    def solve_nonsymmetric(self, operator, matrix, rhs):
        if self._ml is None:
            self._build(matrix)
        self.solves += 1
        x, iterations, converged = self._gmres(operator, rhs)
        if not converged:
            self._build(matrix)
            x2, iterations, converged = self._gmres(operator, rhs - operator(x))
            x = x + x2
            if not converged:
                raise RuntimeError("reference GMRES did not converge")
        if iterations > self.rebuild_after:
            self._build(matrix)
        return x

    def _gmres(self, operator, b):
        # the former loop is the one kept in physics/linear.py (right_gmres): the same code
        x, iterations, converged = right_gmres(operator, b, None, lambda r: self._precond @ r, self.rtol, self.max_iterations)
        self.iterations += iterations
        return x, iterations, converged

    def _pcg(self, matrix, b, guess):
        x, it, converged = _reference_pcg(matrix, b, guess, lambda r: self._precond @ r, self.rtol, self.max_iterations)
        self.iterations += it
        return x, it, converged


class PyamgKrylovAMG(AMGSolver):
    """Candidate: ``pyamg.krylov.cg`` with the same V-cycle (``ml.solve(accel="cg")`` cannot
    serve: it solves with the hierarchy's own matrix, not the drifted current one)."""

    def solve(self, matrix, rhs, guess=None):
        norm_b = float(np.linalg.norm(rhs))

        def krylov(start):
            residuals: list[float] = []
            x, _ = pyamg_cg(matrix, rhs, x0=start, tol=self.rtol, maxiter=self.max_iterations, M=self._precond, residuals=residuals)
            return x, len(residuals) - 1, residuals[-1] < self.rtol * max(norm_b, 1e-300)

        return self._solve(krylov, matrix, guess, "pyamg CG")


class ScipyGmresAMG(AMGSolver):
    """Candidate: ``scipy.sparse.linalg.gmres`` (no restart) on the right-preconditioned
    operator A M, x = M y (scipy's own ``M=`` preconditions from the left, which would make
    its inner stopping test the preconditioned residual). A warm start x0 enters as the
    right-hand side b - A x0 with the same absolute target rtol ||b||."""

    def solve_nonsymmetric(self, operator, matrix, rhs):
        n = len(rhs)
        target = self.rtol * float(np.linalg.norm(rhs))

        def krylov(start):
            count = 0

            def counted(_):
                nonlocal count
                count += 1

            right = LinearOperator((n, n), matvec=lambda y: operator(self._precond @ y), dtype=float)
            b = rhs if start is None else rhs - operator(start)
            y, info = gmres(right, b, rtol=0.0, atol=target, restart=self.max_iterations, maxiter=1, callback=counted, callback_type="pr_norm")
            x = self._precond @ y
            return (x if start is None else start + x), count, info == 0

        return self._solve(krylov, matrix, None, "scipy GMRES")


class HandWrittenJacobiCG(JacobiCGSolver):
    """The former ``fem3d.JacobiCGSolver`` (hand-written PCG, diagonal preconditioner)."""

    def solve(self, matrix, rhs, guess=None):
        if self._key is not matrix:
            self._key, self._inverse = matrix, 1.0 / matrix.diagonal()
        self.solves += 1
        inverse = self._inverse
        x, it, converged = _reference_pcg(matrix, rhs, guess, lambda r: inverse * r, self.rtol, self.max_iterations)
        if not converged:
            raise RuntimeError("reference Jacobi-CG did not converge")
        self.iterations += it
        return x


class ColumnwiseScipyLagged(LaggedFactorSolver):
    """Candidate: ``scipy.sparse.linalg.cg`` per column, preconditioned by the lagged LU
    factors; each column stops at its own tolerance (the kept block loop iterates until all
    have converged); iterations counted as the most any column needed, like the block loop's."""

    def _pcg(self, matrix, rhs, guess):
        b = rhs.reshape(len(rhs), -1)
        start = None if guess is None else np.asarray(guess, dtype=float).reshape(b.shape)
        precond = LinearOperator(matrix.shape, matvec=self._lu.solve, dtype=float)
        out, most = np.empty_like(b, dtype=float), 0
        for j in range(b.shape[1]):
            out[:, j], iterations, converged = krylov_cg(matrix, b[:, j], None if start is None else start[:, j], precond, self.rtol, self.max_iterations)
            most = max(most, iterations)
            if not converged:
                self.iterations += most
                return None
        self.iterations += most
        return out.reshape(rhs.shape)


class PyamgFgmresAMG(AMGSolver):
    """Candidate: ``pyamg.krylov.fgmres`` (right-preconditioned, no restart: ``maxiter`` =
    ``max_iterations``), stopping at the true residual < rtol ||rhs||, iterations counted
    from its residual history (initial, one per iteration but the last, final)."""

    restart = None

    def solve_nonsymmetric(self, operator, matrix, rhs):
        n = len(rhs)
        norm_b = float(np.linalg.norm(rhs))
        if self.restart:
            limits = {"restart": self.restart, "maxiter": -(-self.max_iterations // self.restart)}
        else:
            limits = {"maxiter": min(self.max_iterations, n)}

        def krylov(start):
            residuals: list[float] = []
            x, _ = fgmres(LinearOperator((n, n), matvec=operator, dtype=float), rhs, x0=start, tol=self.rtol, M=self._precond, residuals=residuals, **limits)
            return x, len(residuals) - 1, residuals[-1] < self.rtol * max(norm_b, 1e-300)

        return self._solve(krylov, matrix, None, "pyamg fgmres")


class PyamgFgmresRestartAMG(PyamgFgmresAMG):
    """Candidate: as :class:`PyamgFgmresAMG` but restarted every 30 iterations (the cryo
    engine's rebuild threshold), which shrinks its workspace; restarting changes the method
    for the rare solves that need more."""

    restart = 30


# ---------------------------------------------------------------------------- contests


NAMES = {
    # class -> {method: name in the table}; None: run (to keep its state like the others') but
    # not reported, being the production code path for that method
    AMGSolver: {"solve": "scipy cg (new)", "solve_nonsymmetric": "hand-written, kept in linear.py"},
    PyamgKrylovAMG: {"solve": "pyamg.krylov.cg", "solve_nonsymmetric": None},
    ScipyGmresAMG: {"solve": None, "solve_nonsymmetric": "scipy gmres on A M"},
    PyamgFgmresAMG: {"solve": None, "solve_nonsymmetric": "pyamg fgmres"},
    PyamgFgmresRestartAMG: {"solve": None, "solve_nonsymmetric": "pyamg fgmres, restart 30"},
    HandWrittenAMG: {"solve": "hand-written (old)", "solve_nonsymmetric": "hand-written (old)"},
    JacobiCGSolver: {"solve": "scipy cg (new)"},
    HandWrittenJacobiCG: {"solve": "hand-written (old)"},
    LaggedFactorSolver: {"solve": "hand-written block CG (old, kept)"},
    ColumnwiseScipyLagged: {"solve": "scipy cg per column"},
}
REFERENCE = (HandWrittenAMG, HandWrittenJacobiCG, LaggedFactorSolver)


class Stats:
    def __init__(self):
        self.solves = 0
        self.seconds = 0.0
        self.setup_seconds = 0.0
        self.iterations = 0
        self.diff = 0.0


STATS: dict[str, dict[str, Stats]] = defaultdict(lambda: defaultdict(Stats))
ROUND = [0]


class Contest:
    """Stands in for one solver object: every call is made on all variants (each with its own
    state), in rotating order; the production variant's (the first's) answer is returned and
    its counters are the ones the engine reads."""

    def __init__(self, label, variants, args, kwargs):
        solvers = [cls(*args, **kwargs) for cls in variants]
        for solver in solvers:
            for method in ("_build", "_factor"):  # time set-up apart from the Krylov work
                if hasattr(solver, method):
                    setattr(solver, method, self._timed(getattr(solver, method), solver))
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_solvers", solvers)
        object.__setattr__(self, "_current", {})

    def _timed(self, method, solver):
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return method(*a, **k)
            finally:
                self._current[id(solver)].setup_seconds += time.perf_counter() - t0

        return timed

    def __getattr__(self, name):
        return getattr(self._solvers[0], name)

    def __setattr__(self, name, value):  # e.g. the cryo engine sets ``rtol`` per call
        for solver in self._solvers:
            setattr(solver, name, value)

    def _run(self, method, *args):
        label = self._label if method == "solve" else f"{self._label} (nonsymmetric)"
        solvers = self._solvers
        k = ROUND[0] % len(solvers)
        ROUND[0] += 1
        answers = {}
        for solver in solvers[k:] + solvers[:k]:
            name = NAMES[type(solver)][method] or f"(unreported {type(solver).__name__})"
            stats = self._current[id(solver)] = STATS[label][name]
            setup, iterations = stats.setup_seconds, solver.iterations
            call_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            t0 = time.perf_counter()
            answers[name] = getattr(solver, method)(*call_args)
            stats.seconds += time.perf_counter() - t0 - (stats.setup_seconds - setup)
            stats.iterations += solver.iterations - iterations
            stats.solves += 1
        reference = next(answers[NAMES[type(s)][method]] for s in solvers if type(s) in REFERENCE)
        scale = max(float(np.max(np.abs(reference))), 1e-300)
        for name, answer in answers.items():
            STATS[label][name].diff = max(STATS[label][name].diff, float(np.max(np.abs(answer - reference))) / scale)
        return answers[NAMES[type(solvers[0])][method] or f"(unreported {type(solvers[0]).__name__})"]

    def solve(self, matrix, rhs, guess=None):
        return self._run("solve", matrix, rhs, guess)

    def solve_nonsymmetric(self, operator, matrix, rhs):
        return self._run("solve_nonsymmetric", operator, matrix, rhs)


def patch(module, name, label, variants):
    """Make ``module.name`` build contests; ``label`` may be a function of the calling object."""

    def factory(*args, **kwargs):
        caller = sys._getframe(1).f_locals.get("self")
        return Contest(label(caller) if callable(label) else label, variants, args, kwargs)

    setattr(module, name, factory)


def engine_module(*names):
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(names)


def run_plan(template, method):
    from neurolysis.planning.plan import new_plan
    from neurolysis.planning.simulate import simulate

    t0 = time.perf_counter()
    simulate(new_plan(template, method=method))
    return time.perf_counter() - t0


def case_rf3d():
    fem3d = importlib.import_module("neurolysis.physics.fem3d")
    patch(fem3d, "AMGSolver", lambda caller: f"3D RF {type(caller).__name__}", (AMGSolver, PyamgKrylovAMG, HandWrittenAMG))
    return run_plan("lumbar-medial-branch", "rf")


def case_cryo():
    cryo = engine_module("neurolysis.engines.cryo", "neurolysis.modalities.cryo")
    patch(cryo, "AMGSolver", "cryo Newton", (AMGSolver, PyamgFgmresAMG, PyamgFgmresRestartAMG, ScipyGmresAMG, HandWrittenAMG))
    return run_plan("lumbar-medial-branch", "cryo")


def case_chemical():
    chemical = engine_module("neurolysis.engines.chemical", "neurolysis.modalities.chemical")
    patch(chemical, "JacobiCGSolver", "chemical transport Jacobi-CG", (JacobiCGSolver, HandWrittenJacobiCG))
    return run_plan("lumbar-medial-branch", "chemical")


def case_rf2d():
    from neurolysis.examples import conventional_rf
    from neurolysis.physics import bioheat, electric

    variants = (LaggedFactorSolver, ColumnwiseScipyLagged)
    patch(electric, "LaggedFactorSolver", "2D RF potential, lagged LU", variants)
    patch(bioheat, "LaggedFactorSolver", "2D RF heat, lagged LU", variants)
    engine = engine_module("neurolysis.engines.rf.engine2d", "neurolysis.modalities.rf")
    t0 = time.perf_counter()
    engine.simulate_rf(conventional_rf())
    return time.perf_counter() - t0


CASES = {"rf3d": case_rf3d, "cryo": case_cryo, "chemical": case_chemical, "rf2d": case_rf2d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--repeat", type=int, default=1, help="engine runs per case (the figures are totals over them)")
    args = parser.parse_args()
    print("machine:", machine())
    for case in args.cases:
        for _ in range(args.repeat):
            wall = CASES[case]()
            print(f"{case}: engine run with all variants {wall:.1f} s", flush=True)
    print()
    print("| system | solver | solves | time per solve (ms) | iterations per solve | set-up (s) | max rel. diff. from old |")
    print("|---|---|---|---|---|---|---|")
    for label, by_variant in STATS.items():
        for name, st in by_variant.items():
            if st.solves and not name.startswith("(unreported"):
                print(f"| {label} | {name} | {st.solves} | {1e3 * st.seconds / st.solves:.2f} | {st.iterations / st.solves:.2f} | {st.setup_seconds:.2f} | {st.diff:.1e} |")


if __name__ == "__main__":
    main()
