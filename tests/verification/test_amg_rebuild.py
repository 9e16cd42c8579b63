"""The AMG-preconditioned CG of the RF engines (issue 20): a hierarchy is reused while the matrix
drifts (heating), and rebuilt before a solve whose matrix moved far (vaporising tissue switching
its conductivity by 1e4), instead of spending the iteration limit on a useless preconditioner."""

import numpy as np
import scipy.sparse as sp

from neurolysis.physics.linear import AMGSolver


def conduction_matrix(sigma: np.ndarray) -> sp.csr_matrix:
    """The 5-point finite-volume matrix of -div(sigma grad u) on an n x n grid, u = 0 outside
    (harmonic means of the cell conductivities on the faces): SPD, like the RF potential's."""
    n = sigma.shape[0]
    index = np.arange(n * n).reshape(n, n)
    rows, cols, vals = [], [], []
    diag = np.zeros(n * n)
    for di, dj in ((1, 0), (0, 1)):
        a, b = index[: n - di, : n - dj].ravel(), index[di:, dj:].ravel()
        sa, sb = sigma[: n - di, : n - dj].ravel(), sigma[di:, dj:].ravel()
        face = 2 * sa * sb / (sa + sb)
        rows += [a, b]
        cols += [b, a]
        vals += [-face, -face]
        np.add.at(diag, a, face)
        np.add.at(diag, b, face)
    diag += 2 * sigma.ravel() * ((index % (n - 1) == 0) | (index // n % (n - 1) == 0)).ravel()  # boundary faces
    matrix = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n, n * n)) + sp.diags(diag)
    return matrix.tocsr()


def test_a_drifting_matrix_reuses_the_hierarchy_and_a_switched_one_is_rebuilt_first():
    n = 80
    rng = np.random.default_rng(3)
    sigma = 0.5 + 0.1 * rng.random((n, n))
    rhs = rng.standard_normal(n * n)
    solver = AMGSolver()
    first = solver.solve(conduction_matrix(sigma), rhs)
    assert solver.builds == 1

    warmed = sigma * (1 + 0.02 * 40 * rng.random((n, n)))  # heating: conductivity up to 1.8x, as 37 -> 77 C at 2 %/K
    x = solver.solve(conduction_matrix(warmed), rhs, first)
    assert solver.builds == 1, "a drift of less than 10x keeps the hierarchy"
    assert np.linalg.norm(conduction_matrix(warmed) @ x - rhs) <= 1e-5 * np.linalg.norm(rhs)

    vapour = warmed.copy()
    vapour[30:50, 30:50] *= 1e-4  # a patch at the vaporisation temperature
    before = solver.iterations
    x = solver.solve(conduction_matrix(vapour), rhs, first)
    assert solver.builds == 2, "rebuilt before the solve, for the switched matrix"
    assert solver.iterations - before <= 25, "the new hierarchy converges as a fresh one does"
    assert np.linalg.norm(conduction_matrix(vapour) @ x - rhs) <= 1e-5 * np.linalg.norm(rhs)
