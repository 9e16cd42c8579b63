"""Pennes bioheat equation on the axisymmetric needle mesh, backward Euler in time.

    rho c dT/dt = div( k grad T ) + Q + h_x (T_ref - T)

``h_x`` is a volumetric heat-exchange coefficient (W/m^3/K) toward a reference
temperature: blood perfusion w_b rho_b c_b toward arterial blood (Pennes 1948) in
tissue, and the coolant channel of a cooled probe toward the water temperature.
The far boundary is held at the body-core (or ex vivo bath) temperature.

Each step solves  (M/dt + H + K) T1 = M/dt T0 + H T_ref + F  with lumped, r-weighted
mass M = L c, exchange H = L h_x and load F = L Q (L: see ``fem.ElementGeometry.load``).
Temperatures are solved as rises above the far-boundary temperature, so that the
solver's relative tolerance applies to the rise and not to the absolute level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from neurolysis.physics.fem import TWO_PI, ElementGeometry, PatternOperator
from neurolysis.physics.linear import LaggedFactorSolver, extrapolated_guess


def perfusion_exchange(perfusion_w_m3_k: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """Perfusion switched off as tissue coagulates: h_b exp(-Omega) (W/m^3/K)."""
    return perfusion_w_m3_k * np.exp(-omega)


@dataclass
class HeatOperators:
    """Assembled operators for one set of element coefficients (reused until they change)."""

    stiffness_ff: sp.csr_matrix
    stiffness_fd: sp.csr_matrix
    stiffness_boundary: sp.csr_matrix  # rows of the fixed nodes, all columns
    mass: np.ndarray  # nodal, J/K (without 2 pi)
    exchange: np.ndarray  # nodal, W/K
    exchange_ref: np.ndarray  # nodal, W (exchange * reference temperature)
    _matrices: dict = field(default_factory=dict)


class HeatProblem:
    """Assembles and solves implicit heat steps with the far boundary held fixed."""

    def __init__(self, n_nodes: int, geometry: ElementGeometry, stiffness_entries, fixed_nodes: np.ndarray):
        """``fixed_nodes`` keep their temperature (the far boundary)."""
        n = n_nodes
        self.geometry = geometry
        self.fixed = np.asarray(fixed_nodes)
        free = np.ones(n, bool)
        free[self.fixed] = False
        self.free = np.flatnonzero(free)
        rows, cols, values, element = stiffness_entries
        self._ff = PatternOperator(rows, cols, values, element, n, self.free, self.free)
        self._fd = PatternOperator(rows, cols, values, element, n, self.free, self.fixed)
        self._boundary = PatternOperator(rows, cols, values, element, n, self.fixed, np.arange(n))
        self._diagonal = self._ff.diagonal_slots()
        self.solvers: dict[float, LaggedFactorSolver] = {}
        self._history: dict[tuple, list[np.ndarray]] = {}

    def node_weights(self, element_values: np.ndarray) -> np.ndarray:
        """Lumped nodal integral of an element field: (L c)_i = sum_e c_e integral_e phi_i r dA."""
        return self.geometry.load @ element_values

    def operators(self, conductivity, heat_capacity, exchange, exchange_ref_c) -> HeatOperators:
        """Assemble for element conductivity (W/m/K), rho c (J/m^3/K), exchange (W/m^3/K) and its reference (C)."""
        return HeatOperators(
            self._ff.matrix(conductivity),
            self._fd.matrix(conductivity),
            self._boundary.matrix(conductivity),
            self.node_weights(heat_capacity),
            self.node_weights(exchange),
            self.node_weights(exchange * exchange_ref_c),
        )

    def step(self, temp_c: np.ndarray, dt_s: float, ops: HeatOperators, loads=()):
        """One backward-Euler step from ``temp_c``.

        Returns the temperatures without any of ``loads`` (element heat sources, W/m^3)
        and the temperature response to each load alone, so the caller can combine them
        linearly (to choose a generator voltage, for instance).
        """
        key = round(dt_s, 12)
        matrix = ops._matrices.get(key)
        if matrix is None:
            diagonal = (ops.mass / dt_s + ops.exchange)[self.free]
            matrix = ops._matrices[key] = ops.stiffness_ff.copy()
            matrix.data[self._diagonal] += diagonal
        solver = self.solvers.setdefault(key, LaggedFactorSolver())
        level = float(temp_c[self.fixed].mean()) if len(self.fixed) else 0.0
        rise = temp_c - level
        base = ops.mass / dt_s * rise + ops.exchange_ref - ops.exchange * level
        rhs = base[self.free] - ops.stiffness_fd @ rise[self.fixed]
        columns = np.column_stack([rhs] + [self.node_weights(load)[self.free] for load in loads])
        history = self._history.setdefault((key, columns.shape[1]), [])
        solved = solver.solve(matrix, columns, extrapolated_guess(history))
        history[:] = [solved] + history[:1]
        solution = np.array(temp_c, dtype=float)
        solution[self.free] = solved[:, 0] + level
        responses = []
        for i in range(len(loads)):
            response = np.zeros_like(solution)
            response[self.free] = solved[:, i + 1]
            responses.append(response)
        return solution, responses

    def boundary_inflow_w(self, temp_c: np.ndarray, ops: HeatOperators, load_nodal: np.ndarray) -> float:
        """Heat entering through the fixed boundary (W): the residual of the full system there.

        ``load_nodal`` is the nodal heat source (``node_weights`` of the element source).
        """
        level = float(temp_c[self.fixed].mean())
        rise = temp_c - level
        local = ops.exchange * rise - (ops.exchange_ref - ops.exchange * level) - load_nodal
        return TWO_PI * float((ops.stiffness_boundary @ rise).sum() + local[self.fixed].sum())


