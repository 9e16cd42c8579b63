"""Drug transport: diffusion with first-order clearance, implicit in time, mesh-agnostic.

    phi dc/dt = div( D_eff grad c ) - k_clear phi c            (c in any concentration unit)

``c`` is the concentration in the space the solute can enter (interstitial fluid), ``phi``
that space's volume fraction, ``D_eff = phi D / lambda^2`` the tissue-averaged diffusive
conductance (m^2/s) -- constant per element, so a thin layer of low ``D_eff`` (the nerve
sheath) is a barrier -- and ``k_clear`` (1/s) the removal to blood, per node.

The caller discretises space: it supplies the assembled stiffness
``K_ij = sum_e D_e integral_e grad phi_i . grad phi_j dV`` (m^3/s; e.g. ``fem.PatternOperator``
or ``fem3d.StiffnessPattern`` with the element ``D_eff``) and lumped nodal capacities
``m_i = sum_e phi_e V_e / n_vertices`` (m^3). With a theta scheme (1 = backward Euler,
1/2 = Crank-Nicolson) each step solves

    (M/dt + theta A) c1 = (M/dt - (1 - theta) A) c0,     A = K + diag(m k_clear).

Boundaries are zero-flux unless nodes are listed as ``sink_nodes`` (held at c = 0). Because
K has zero row sums, the solute amount  S = sum m_i c_i  then obeys exactly
(S1 - S0)/dt = -sum m k (theta c1 + (1 - theta) c0), which the tests check.

The injected bolus (:func:`bolus_radius_m`, :func:`bolus_field`): the volume V fills the
accessible fraction phi of a sphere around the needle tip, displacing the resident fluid,

    r_b = (3 V / (4 pi phi))^(1/3),   c = c_inj inside r_b,

so the amount in the bolus equals V c_inj. Spread is then by diffusion only (see
docs/models/chemical.md for assumptions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from neurolysis.validation import ValidationError, check_range

ML_TO_M3 = 1e-6


def effective_diffusivity(diffusivity_m2_s: float, volume_fraction: float, tortuosity: float, factor: float = 1.0) -> float:
    """Tissue-averaged diffusive conductance D_eff = phi D f / lambda^2 (m^2/s)."""
    return volume_fraction * diffusivity_m2_s * factor / tortuosity**2


def bolus_radius_m(volume_ml: float, volume_fraction: float) -> float:
    """Radius of the sphere whose accessible space holds the injectate: (3 V / (4 pi phi))^(1/3)."""
    volume_m3 = check_range("volume_ml", volume_ml, 0.0, low_inclusive=False, unit="mL") * ML_TO_M3
    phi = check_range("volume_fraction", volume_fraction, 0.0, 1.0, low_inclusive=False)
    return (3.0 * volume_m3 / (4.0 * np.pi * phi)) ** (1.0 / 3.0)


def bolus_field(
    distance_m: np.ndarray, capacity_m3: np.ndarray, volume_ml: float, concentration: float, volume_fraction: float
) -> np.ndarray:
    """Nodal concentration of a freshly injected bolus, conserving the injected amount.

    Nodes with ``distance_m`` (from the needle tip) <= r_b get ``concentration``; the field is
    then rescaled so that sum m_i c_i = V c_inj exactly (the discrete sphere is not the
    exact one). If no node lies inside, the whole amount goes to the nearest node.
    ``capacity_m3`` are the lumped nodal capacities m_i (for an axisymmetric mesh: the
    true volumes, i.e. with the 2 pi).
    """
    distance = np.asarray(distance_m, float)
    capacity = np.asarray(capacity_m3, float)
    radius = bolus_radius_m(volume_ml, volume_fraction)
    inside = distance <= radius
    if not inside.any():
        inside = distance == distance.min()
    field_ = np.where(inside, float(concentration), 0.0)
    held = float(capacity @ field_)
    amount = volume_ml * ML_TO_M3 * float(concentration)
    return field_ * (amount / held) if held > 0 else field_


@dataclass(frozen=True)
class TransportOperators:
    """Assembled transport operators of one mesh and one set of coefficients.

    stiffness   (n, n) sparse, K_ij (m^3/s), zero row sums (natural boundaries)
    capacity_m3 (n,)   lumped nodal capacity m_i = integral phi phi_i dV (m^3)
    clearance_per_s (n,) first-order removal rate k_clear at each node (1/s)
    sink_nodes  indices held at c = 0 (a far boundary that drains), default none
    """

    stiffness: sp.spmatrix
    capacity_m3: np.ndarray
    clearance_per_s: np.ndarray
    sink_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    def __post_init__(self) -> None:
        n = len(self.capacity_m3)
        if self.stiffness.shape != (n, n) or len(self.clearance_per_s) != n:
            raise ValidationError(f"transport operators: stiffness {self.stiffness.shape}, capacity {n}, clearance {len(self.clearance_per_s)}: shapes must agree")
        if not (np.all(np.isfinite(self.capacity_m3)) and np.all(self.capacity_m3 > 0)):
            raise ValidationError("capacity_m3: every nodal capacity must be finite and > 0")
        if not (np.all(np.isfinite(self.clearance_per_s)) and np.all(self.clearance_per_s >= 0)):
            raise ValidationError("clearance_per_s: every clearance must be finite and >= 0")

    def amount(self, concentration: np.ndarray) -> float:
        """Solute held, S = sum m_i c_i (concentration unit x m^3)."""
        return float(self.capacity_m3 @ concentration)

    def clearance_rate(self, concentration: np.ndarray) -> float:
        """Instantaneous removal to blood, sum m_i k_i c_i (per s)."""
        return float((self.capacity_m3 * self.clearance_per_s) @ concentration)


def cylinder_operators(radii_m: np.ndarray, diffusivity_m2_s: np.ndarray, capacity_fraction: np.ndarray, sink_nodes=()) -> TransportOperators:
    """P1 operators on a cylinder cross-section 0 <= r <= R, per metre of length (exact for P1):
    K_e = D_e 2 pi r_mid / h, lumped m = 2 pi h theta_e (2 r_a + r_b) / 6 to the inner node, (r_a + 2 r_b) / 6 to the outer."""
    r = np.asarray(radii_m, float)
    a, b = r[:-1], r[1:]
    h = b - a
    k = np.asarray(diffusivity_m2_s, float) * 2.0 * np.pi * 0.5 * (a + b) / h
    n, i = len(r), np.arange(len(r) - 1)
    stiffness = sp.csr_matrix((np.concatenate([k, k, -k, -k]), (np.concatenate([i, i + 1, i, i + 1]), np.concatenate([i, i + 1, i + 1, i]))), shape=(n, n))
    theta = np.asarray(capacity_fraction, float)
    capacity = np.bincount(i, 2 * np.pi * h * theta * (2 * a + b) / 6, n) + np.bincount(i + 1, 2 * np.pi * h * theta * (a + 2 * b) / 6, n)
    return TransportOperators(stiffness, capacity, np.zeros(n), np.asarray(sink_nodes, int))


def _splu_solver(matrix: sp.csr_matrix) -> Callable[[np.ndarray], np.ndarray]:
    return splu(matrix.tocsc()).solve


class TransportSolver:
    """Theta-scheme stepping of phi dc/dt = div(D grad c) - k phi c with a fixed step.

    ``theta`` = 1 (backward Euler, first order, monotone) or 1/2 (Crank-Nicolson, second
    order; may ring on a discontinuous bolus -- start it with a few backward-Euler steps).
    ``linear_solver(matrix) -> solve(rhs)`` factorises once (default sparse LU; pass an
    AMG/CG factory for large 3D meshes).
    """

    def __init__(self, ops: TransportOperators, dt_s: float, theta: float = 1.0, linear_solver=None):
        self.ops = ops
        self.dt_s = check_range("dt_s", dt_s, 0.0, low_inclusive=False, unit="s")
        self.theta = check_range("theta", theta, 0.5, 1.0)
        n = len(ops.capacity_m3)
        free = np.ones(n, bool)
        free[np.asarray(ops.sink_nodes, int)] = False
        self.free = np.flatnonzero(free)
        a = (sp.csr_matrix(ops.stiffness) + sp.diags(ops.capacity_m3 * ops.clearance_per_s)).tocsr()
        mass = sp.diags(ops.capacity_m3 / self.dt_s)
        self._explicit = (mass - (1.0 - self.theta) * a).tocsr()
        implicit = (mass + self.theta * a).tocsr()[self.free][:, self.free]
        self._solve = (linear_solver or _splu_solver)(implicit.tocsr())

    def step(self, concentration: np.ndarray) -> np.ndarray:
        """One step of length ``dt_s``; sink nodes stay at zero."""
        rhs = self._explicit @ concentration
        out = np.zeros_like(concentration, dtype=float)
        out[self.free] = self._solve(rhs[self.free])
        return out


def m_matrix_stiffness(stiffness: sp.spmatrix) -> tuple[sp.csr_matrix, float]:
    """K made an M-matrix by discrete upwinding (Kuzmin & Turek 2002, "algebraic flux correction"):
    every positive off-diagonal K_ij (an obtuse dihedral angle of a P1 tet) is removed and
    added to the diagonal, K' = K - P + diag(P 1) with P = max(K_offdiag, 0).

    K' stays symmetric with zero row sums (conservative: the amount S = sum m c is unchanged
    by diffusion), its off-diagonals are <= 0, and K' - K = diag(P 1) - P is a graph Laplacian
    with nonnegative weights: an added diffusion, only on the obtuse edges. Returns K' and the
    size of the change, max_i (P 1)_i / K_ii (0 on a non-obtuse mesh).
    """
    k = sp.csr_matrix(stiffness, dtype=float)
    coo = k.tocoo()
    positive = (coo.row != coo.col) & (coo.data > 0.0)
    p = sp.csr_matrix((coo.data[positive], (coo.row[positive], coo.col[positive])), shape=k.shape)
    added = np.asarray(p.sum(axis=1)).ravel()
    diagonal = k.diagonal()
    change = float(np.max(added / np.where(diagonal > 0, diagonal, np.inf))) if len(added) else 0.0
    out = (k - p + sp.diags(added)).tocsr()
    out.eliminate_zeros()
    return out, change


class PositiveTransportSolver:
    """Nonnegative, conservative stepping of phi dc/dt = div(D grad c) - k phi c with a fixed step.

    Strang splitting: clearance for dt/2 solved exactly (c_i e^(-k_i dt/2)), diffusion for dt
    by backward Euler on the M-matrix stiffness K' (:func:`m_matrix_stiffness`), clearance
    for dt/2 exactly. Discrete maximum principle: M/dt + K' (lumped M > 0, off-diagonals
    <= 0, rows strictly diagonally dominant) is a nonsingular M-matrix, so its inverse is
    >= 0 and c1 = (M/dt + K')^-1 (M/dt) c0 satisfies 0 <= c1 <= max c0; the exponential
    factors lie in (0, 1]. Hence c >= 0 for every step size (up to the linear solver's
    tolerance). Mass: diffusion keeps S = sum m c (zero row and column sums), the removal
    sum m_i c_i (1 - e^(-k_i dt/2)) of each half step is returned by :meth:`step`, so
    S0 - S1 = cleared exactly. First order in time for diffusion (the early steps are short),
    exact for uniform clearance, so a large clearance (a vessel lumen, k ~ 10 /s) needs no short step.
    """

    def __init__(self, ops: TransportOperators, dt_s: float, linear_solver=None):
        if len(ops.sink_nodes):
            raise ValidationError("PositiveTransportSolver: sink_nodes are not supported (use a large clearance_per_s instead)")
        self.ops = ops
        self.dt_s = check_range("dt_s", dt_s, 0.0, low_inclusive=False, unit="s")
        self.stiffness, self.upwinding = m_matrix_stiffness(ops.stiffness)
        self._mass = ops.capacity_m3 / self.dt_s
        self._half = np.exp(-0.5 * self.dt_s * ops.clearance_per_s)
        self._solve = (linear_solver or _splu_solver)((sp.diags(self._mass) + self.stiffness).tocsr())

    def step(self, concentration: np.ndarray) -> tuple[np.ndarray, float]:
        """One step of length ``dt_s``: (new concentration, amount cleared during the step)."""
        m = self.ops.capacity_m3
        c = np.asarray(concentration, float)
        half = c * self._half
        cleared = float(m @ (c - half))
        diffused = self._solve(self._mass * half)
        out = diffused * self._half
        return out, cleared + float(m @ (diffused - out))


class ExposureAccumulator:
    """Running per-node exposure: peak c, integral c dt, and named dose integrals.

    ``dose_rates`` maps a name to rate(c) (1/s), e.g. an axon lethal-index rate; each is
    integrated by the trapezoid rule over every step (exact for piecewise-linear c only
    when rate is linear, so keep steps short against the decay of c).
    """

    def __init__(self, concentration: np.ndarray, dose_rates: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None):
        c = np.asarray(concentration, float)
        self.peak = c.copy()
        self.integral_s = np.zeros_like(c)
        self.time_s = 0.0
        self._rates = dict(dose_rates or {})
        self.doses = {name: np.zeros_like(c) for name in self._rates}
        self._c = c.copy()
        self._r = {name: np.asarray(rate(c), float) for name, rate in self._rates.items()}

    def restart(self, concentration: np.ndarray) -> None:
        """Continue from a field changed outside a step (a new bolus added): no time passes."""
        c = np.asarray(concentration, float)
        np.maximum(self.peak, c, out=self.peak)
        self._c = c.copy()
        self._r = {name: np.asarray(rate(c), float) for name, rate in self._rates.items()}

    def advance(self, concentration: np.ndarray, dt_s: float) -> None:
        """Add a step of length ``dt_s`` ending at ``concentration``."""
        c = np.asarray(concentration, float)
        self.integral_s += 0.5 * dt_s * (self._c + c)
        for name, rate in self._rates.items():
            r = np.asarray(rate(c), float)
            self.doses[name] += 0.5 * dt_s * (self._r[name] + r)
            self._r[name] = r
        np.maximum(self.peak, c, out=self.peak)
        self._c = c.copy()
        self.time_s += dt_s


@dataclass(frozen=True)
class TransportResult:
    """Fields at the end of a run and the solute amount after every step."""

    concentration: np.ndarray
    peak: np.ndarray
    integral_s: np.ndarray  # integral c dt (concentration unit x s)
    doses: Mapping[str, np.ndarray]
    times_s: np.ndarray  # (n_steps + 1,)
    amount: np.ndarray  # S(t) at times_s


def run_transport(
    solver: TransportSolver,
    concentration: np.ndarray,
    duration_s: float,
    accumulator: ExposureAccumulator | None = None,
    start_s: float = 0.0,
) -> TransportResult:
    """Step ``solver`` from ``concentration`` for ``duration_s`` (rounded up to whole steps).

    Pass the same ``accumulator`` across repeated injections so exposures add up
    (call ``accumulator.restart(c + new_bolus)`` before the next run).
    """
    check_range("duration_s", duration_s, 0.0, unit="s")
    n_steps = int(np.ceil(duration_s / solver.dt_s - 1e-9))
    c = np.asarray(concentration, float).copy()
    acc = accumulator or ExposureAccumulator(c)
    amounts = [solver.ops.amount(c)]
    for _ in range(n_steps):
        c = solver.step(c)
        acc.advance(c, solver.dt_s)
        amounts.append(solver.ops.amount(c))
    times = start_s + solver.dt_s * np.arange(n_steps + 1)
    return TransportResult(c, acc.peak.copy(), acc.integral_s.copy(), {k: v.copy() for k, v in acc.doses.items()}, times, np.array(amounts))
