"""Heat conduction with freezing and thawing: the enthalpy method, backward Euler, Newton.

    dH/dt = div( k grad T ) + (1 - f) w_b (T_b - T)                         [W/m^3]

H (J/m^3) is the primary unknown; T(H), the frozen fraction f(H), k(H) and the Kirchhoff
transform Phi(H) = int k dT (div(k grad T) = lap Phi) are those of
:class:`neurolysis.physics.freezing.EnthalpyCurve`, which also holds the materials, the
mesh, properties, boundary and state types. Each backward-Euler step solves for H at the
free nodes

    R(H) = V (H - H_old) / dt + sum_m K_m Phi_m(H) - V w_b (1 - f) (T_b - T) - G (T_g - T) - Q = 0

(V lumped nodal volumes, K_m: unit-conductivity stiffness of conductivity group m, G and
T_g the exchange, Q the prescribed inflows) by Newton's method. Its Jacobian
V/dt + W D + K_1 diag(k D), D = dT/dH (floored at a tiny positive value where the phase
change is isothermal), W the exchange coefficients, is solved as the symmetric M-matrix
system in y = k D dH. A node whose update crosses a kink of T(H) stops just past it (so
the next iteration uses its new slope); other steps backtrack on ||R||. The frozen
factor of perfusion is lagged inside the iteration but the residual is evaluated in
full, so the converged step is fully implicit and conserves energy (the sum of the
free-node residuals is the only error). A step that does not converge is split in two.

SI units; temperatures in degrees Celsius.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from neurolysis.physics.freezing import ConductionMesh, FreezingProperties, FreezingState, HeatBoundary, StepReport, frozen_array, time_below
from neurolysis.validation import ValidationError, check_choice, check_range

RAMP_STEPS_PER_TAU = 2
"""Probe cool-down: piecewise-constant probe temperatures per time constant (each tau / 2
long at its mid-step value; the 90 s default freeze then takes 10 ramp steps and 25 of 3 s)."""
RAMP_SPAN = 5.0
"""Probe cool-down: time constants stepped before the probe is held at its tip temperature
(exp(-5) = 0.7 % of the drop left)."""
_SLOPE_FLOOR = 1e-9
"""D = dT/dH is floored at this fraction of the smallest phase slope 1 / C (isothermal
phase change has D = 0 there); the Newton step is then exact to ~1e-9 relative."""


# ------------------------------------------------------------------------- the solver


def _default_linear_solve(matrix: sp.spmatrix, rhs: np.ndarray, rtol: float | None = None) -> np.ndarray:
    return splu(sp.csc_matrix(matrix)).solve(rhs)


class NewtonFailure(RuntimeError):
    """The enthalpy step did not converge even after repeated step splitting."""


class FreezingSolver:
    """Backward-Euler enthalpy steps on a ``ConductionMesh`` (see the module docstring).

    ``linear_solve(matrix, rhs)`` solves the symmetric M-matrix Newton systems (default:
    sparse LU); ``rtol`` bounds the 1-norm of the free-node residual relative to the
    1-norm of the terms of the equation; ``thresholds_c`` are the temperatures whose
    time-below is accumulated per node.

    ``linear_forcing`` (inexact Newton; it changes the work, not the converged step, whose
    residual test is unchanged): if set, each Newton system is solved only to the relative
    residual rtol = max(linear_forcing, 0.1 x Newton target / ||R||_1) (capped at 0.5) by
    calling ``linear_solve(matrix, rhs, rtol)``. The Newton iteration is linearly
    convergent wherever the Jacobian is approximate (tissue interfaces), so solving its
    systems far below its own contraction buys nothing.

    ``exact_jacobian`` (several conductivity groups only): the Newton direction solves the
    exact conduction Jacobian sum_m K_m diag(k_m D) at group interfaces instead of the
    nodal-mean one (Newton then stays quadratic across tissue interfaces); it is not
    symmetric, so ``linear_solve(matrix, rhs, rtol, operator)`` is called with ``operator``
    the exact system (a function y -> J y in the variable y = k D dH) and ``matrix`` its
    symmetric nodal-mean approximation (for a preconditioner); ``rtol`` is None unless
    ``linear_forcing`` is set. A ``linear_solve`` must then be given.
    """

    def __init__(
        self,
        mesh: ConductionMesh,
        properties: FreezingProperties,
        thresholds_c: Sequence[float] = (),
        linear_solve: Callable[[sp.spmatrix, np.ndarray], np.ndarray] | None = None,
        rtol: float = 1e-10,
        max_iterations: int = 25,
        max_splits: int = 6,
        linear_forcing: float | None = None,
        exact_jacobian: bool = False,
    ):
        self.mesh = mesh
        self.properties = properties
        self.thresholds_c = tuple(check_range("threshold_c", t, -273.15, 100.0, unit="C") for t in thresholds_c)
        self.linear_solve = linear_solve or _default_linear_solve
        self.rtol = check_range("rtol", rtol, 1e-15, 1e-2)
        self.max_iterations = int(max_iterations)
        self.max_splits = int(max_splits)
        self.linear_forcing = None if linear_forcing is None else check_range("linear_forcing", linear_forcing, 1e-12, 0.5)
        self.exact_jacobian = bool(exact_jacobian)
        if self.exact_jacobian and linear_solve is None:
            raise ValidationError("exact_jacobian: needs a linear_solve(matrix, rhs, rtol, operator) for the nonsymmetric system")
        self._group_cache: tuple | None = None
        curve = properties.curve
        self._slope_floor = _SLOPE_FLOOR / float(np.max(np.maximum(curve.capacity_frozen, curve.capacity_unfrozen)))
        # conduction = sum_m K_m Phi_m(H): K_m is the unit-conductivity stiffness of group m
        self._groups, group_of_element = properties.conductivity_groups()
        self._unit_stiffness = [sp.csr_matrix(mesh.stiffness((group_of_element == m).astype(float)), copy=True) for m in range(len(self._groups))]
        for unit in self._unit_stiffness:  # (copies: a fixed-pattern assembly may share its index arrays)
            unit.eliminate_zeros()  # such an assembly carries the other groups' slots as zeros
        self._unit_total = sum(self._unit_stiffness[1:], self._unit_stiffness[0]).tocsr()
        diagonals = np.array([k.diagonal() for k in self._unit_stiffness])
        self._group_weight = diagonals / np.maximum(diagonals.sum(axis=0), np.finfo(float).tiny)
        self._free_cache: tuple[bytes, np.ndarray, sp.csr_matrix] | None = None

    # -- states

    def initial_state(self, temp_c: np.ndarray | float) -> FreezingState:
        """State at t = 0 from nodal temperatures (C)."""
        temp = np.broadcast_to(np.asarray(temp_c, float), (self.mesh.n_nodes,))
        return self.state_from_enthalpy(0.0, self.properties.curve.enthalpy(temp))

    def state_from_enthalpy(self, time_s: float, enthalpy_j_m3: np.ndarray) -> FreezingState:
        """State at ``time_s`` from nodal enthalpy (J/m^3), e.g. to start inside the mushy range."""
        curve = self.properties.curve
        h = frozen_array(enthalpy_j_m3, "enthalpy_j_m3", self.mesh.n_nodes)
        temp = curve.temperature(h)
        return FreezingState(
            float(time_s),
            h,
            frozen_array(temp, "temp_c"),
            frozen_array(curve.frozen_fraction(h), "frozen_fraction"),
            frozen_array(temp, "min_temp_c"),
            self.thresholds_c,
            np.zeros((len(self.thresholds_c), self.mesh.n_nodes)),
        )

    # -- one step

    def step(self, state: FreezingState, dt_s: float, boundary: HeatBoundary) -> tuple[FreezingState, StepReport]:
        """Advance ``state`` by ``dt_s`` (s) under ``boundary``; split the step if Newton stalls."""
        check_range("dt_s", dt_s, 0.0, low_inclusive=False, unit="s")
        if len(boundary.fixed_nodes) and boundary.fixed_nodes.max() >= self.mesh.n_nodes:
            raise ValidationError(f"fixed_nodes: indices must be < {self.mesh.n_nodes}")
        return self._step_split(state, dt_s, boundary, depth=0)

    def _step_split(self, state, dt_s, boundary, depth):
        try:
            enthalpy, report = self._solve(state.enthalpy_j_m3, dt_s, boundary)
            return self._advance(state, enthalpy, dt_s), _shifted(report, state.time_s + dt_s)
        except NewtonFailure:
            if depth >= self.max_splits:
                raise
        first, a = self._step_split(state, 0.5 * dt_s, boundary, depth + 1)
        second, b = self._step_split(first, 0.5 * dt_s, boundary, depth + 1)
        return second, _combined(a, b)

    def _advance(self, state: FreezingState, enthalpy: np.ndarray, dt_s: float) -> FreezingState:
        curve = self.properties.curve
        temp = curve.temperature(enthalpy)
        below = state.time_below_s + np.array([time_below(state.temp_c, temp, t, dt_s) for t in self.thresholds_c]).reshape(state.time_below_s.shape)
        below.flags.writeable = False
        return FreezingState(
            state.time_s + dt_s,
            frozen_array(enthalpy, "enthalpy_j_m3"),
            frozen_array(temp, "temp_c"),
            frozen_array(curve.frozen_fraction(enthalpy), "frozen_fraction"),
            frozen_array(np.minimum(state.min_temp_c, temp), "min_temp_c"),
            self.thresholds_c,
            below,
        )

    def _terms(self, enthalpy: np.ndarray, enthalpy_old: np.ndarray, dt_s: float, boundary: HeatBoundary):
        """All nodal terms of R at ``enthalpy``: storage, conduction, perfusion, exchange, inflow (W)."""
        props, curve, volume = self.properties, self.properties.curve, self.mesh.node_volume_m3
        temp = curve.temperature(enthalpy)
        frozen = curve.frozen_fraction(enthalpy)
        conduction = np.zeros_like(temp)
        effective_k = np.zeros_like(temp)
        for (k_f, k_u), unit, weight in zip(self._groups, self._unit_stiffness, self._group_weight, strict=True):
            conduction += unit @ curve.kirchhoff(enthalpy, k_f, k_u)
            effective_k += weight * curve.conductivity(enthalpy, k_f, k_u)
        perfusion_w_k = volume * props.perfusion_w_m3_k * (1.0 - frozen)
        exchange_w_k = np.zeros(self.mesh.n_nodes) if boundary.exchange_conductance_w_k is None else np.asarray(boundary.exchange_conductance_w_k, float)
        inflow = np.zeros(self.mesh.n_nodes) if boundary.inflow_w is None else np.asarray(boundary.inflow_w, float)
        return {
            "storage": volume * (enthalpy - enthalpy_old) / dt_s,
            "conduction": conduction,
            "perfusion": perfusion_w_k * (props.blood_temp_c - temp),
            "exchange": exchange_w_k * (boundary.exchange_temp_c - temp),
            "inflow": inflow,
            "effective_k": effective_k,  # W/m/K, nodal: dPhi/dT of the nodes' groups
            "coefficient": perfusion_w_k + exchange_w_k,  # W/K, d(outflow)/dT
        }

    @staticmethod
    def _residual(terms) -> np.ndarray:
        return terms["storage"] + terms["conduction"] - terms["perfusion"] - terms["exchange"] - terms["inflow"]

    def _free(self, fixed: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
        """Free-node mask and the unit stiffness restricted to free nodes (cached per fixed set)."""
        key = fixed.tobytes()
        if self._free_cache is None or self._free_cache[0] != key:
            free = np.ones(self.mesh.n_nodes, bool)
            free[fixed] = False
            self._free_cache = (key, free, self._unit_total[free][:, free].tocsr())
        return self._free_cache[1], self._free_cache[2]

    def _group_blocks(self, free: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray, list[np.ndarray]]:
        """[K_1,ff[:, S_1] ... K_m,ff[:, S_m]] (S_m: free nodes touched by group m), the node of
        each of its columns and each group's column positions: sum_m K_m,ff diag(r_m) v is
        then one product with r_m[S_m] v[S_m] stacked (cached per fixed set)."""
        key = free.tobytes()
        if self._group_cache is None or self._group_cache[0] != key:
            blocks, nodes, spans, start = [], [], [], 0
            for unit in self._unit_stiffness:
                block = unit[free][:, free].tocsc()
                block.eliminate_zeros()  # a group's stiffness may carry the whole pattern
                touched = np.flatnonzero(np.diff(block.indptr) > 0)
                blocks.append(block[:, touched])
                nodes.append(touched)
                spans.append(slice(start, start + len(touched)))
                start += len(touched)
            self._group_cache = (key, sp.hstack(blocks, format="csr"), np.concatenate(nodes), nodes, spans)
        return self._group_cache[1:]

    def _linear(self, matrix, rhs, residual_1: float, target_1: float, operator=None) -> np.ndarray:
        """Newton direction (in y) of ``matrix`` y = rhs, or ``operator`` y = rhs if given."""
        if self.linear_forcing is None:
            return self.linear_solve(matrix, rhs) if operator is None else self.linear_solve(matrix, rhs, None, operator)
        # inexact Newton: the linear residual need only be a fraction of the Newton residual,
        # and never much below the Newton target (the convergence test is unchanged)
        eta = min(0.5, max(self.linear_forcing, 0.1 * target_1 / max(residual_1, 1e-300)))
        return self.linear_solve(matrix, rhs, eta) if operator is None else self.linear_solve(matrix, rhs, eta, operator)

    def _solve(self, enthalpy_old: np.ndarray, dt_s: float, boundary: HeatBoundary):
        """Newton on R(H) = 0 at the free nodes.

        Jacobian V/dt + W D + K_1 diag(k D) (exact for one conductivity group; k is a
        stiffness-weighted nodal mean at group interfaces), solved as the symmetric
        system (K_1 + diag((V/dt) / (k D) + W / k)) y = -R with dH = y / (k D).
        With ``exact_jacobian``: (sum_m K_m diag(k_m / k) + diag((V/dt) / (k D) + W / k)) y = -R,
        k_m = k_m(H) of group m (exact conduction part; perfusion's frozen factor stays lagged).
        """
        curve, volume = self.properties.curve, self.mesh.node_volume_m3
        fixed = boundary.fixed_nodes
        free, unit_ff = self._free(fixed)
        h = np.array(enthalpy_old, float)
        fixed_temp = curve.temperature(h)
        fixed_temp[fixed] = boundary.fixed_temp_c
        h[fixed] = curve.enthalpy(fixed_temp)[fixed]
        terms = self._terms(h, enthalpy_old, dt_s, boundary)
        residual = self._residual(terms)[free]
        for iteration in range(1, self.max_iterations + 1):
            scale = sum(np.abs(terms[k][free]).sum() for k in ("storage", "conduction", "perfusion", "exchange", "inflow"))
            residual_1 = np.abs(residual).sum()
            if residual_1 <= self.rtol * scale:
                return h, self._report(terms, free, dt_s, iteration - 1)
            k = terms["effective_k"][free]
            kd = k * np.maximum(curve.slope(h)[free], self._slope_floor)
            diagonal = volume[free] / (dt_s * kd) + terms["coefficient"][free] / k
            direction = np.zeros_like(h)
            operator = None
            if self.exact_jacobian and len(self._groups) > 1:
                stacked, column_node, nodes, spans = self._group_blocks(free)
                frozen = curve.frozen_fraction(h)[free]
                ratio = np.empty(len(column_node))
                for (k_f, k_u), touched, span in zip(self._groups, nodes, spans, strict=True):
                    ratio[span] = (k_u + (k_f - k_u) * frozen[touched]) / k[touched]  # k_m(H) / k

                def operator(v, stacked=stacked, column_node=column_node, ratio=ratio, diagonal=diagonal):
                    return diagonal * v + stacked @ (ratio * v[column_node])

            direction[free] = self._linear((unit_ff + sp.diags(diagonal)).tocsr(), -residual, residual_1, self.rtol * scale, operator) / kd
            trial = _stop_at_breakpoint(h, h + direction, curve.liquidus_enthalpy)
            if np.array_equal(trial, h + direction):
                h, terms, residual = self._line_search(h, direction, residual, enthalpy_old, dt_s, boundary, free)
            else:  # some node changed piece: take the truncated step, re-linearise on the new piece
                h, terms = trial, self._terms(trial, enthalpy_old, dt_s, boundary)
                residual = self._residual(terms)[free]
        raise NewtonFailure(f"enthalpy step of {dt_s:g} s did not converge in {self.max_iterations} Newton iterations")

    def _line_search(self, h, direction, residual, enthalpy_old, dt_s, boundary, free):
        """Backtrack on ||R||_2 (halving, at most 6 times); a step that never decreases it is a failure."""
        norm = np.linalg.norm(residual)
        for k in range(7):
            alpha = 0.5**k
            trial = h + alpha * direction
            terms = self._terms(trial, enthalpy_old, dt_s, boundary)
            trial_residual = self._residual(terms)[free]
            if np.linalg.norm(trial_residual) <= (1.0 - 1e-4 * alpha) * norm:
                return trial, terms, trial_residual
        raise NewtonFailure("line search found no decrease of the enthalpy residual")

    def _report(self, terms, free, dt_s, iterations) -> StepReport:
        fixed = ~free
        full = self._residual(terms)
        return StepReport(
            time_s=0.0,
            dt_s=dt_s,
            newton_iterations=iterations,
            substeps=1,
            fixed_nodes_j=dt_s * float(full[fixed].sum()),
            exchange_j=dt_s * float(terms["exchange"].sum()),
            inflow_j=dt_s * float(terms["inflow"].sum()),
            perfusion_j=dt_s * float(terms["perfusion"].sum()),
            energy_error_j=dt_s * float(full[free].sum()),
        )

    # -- protocols

    def run(
        self,
        state: FreezingState,
        phases: Sequence[Phase],
        dt_s: float,
        observe: Callable[[FreezingState], object] | None = None,
    ) -> tuple[FreezingState, list[StepReport], list]:
        """Run ``phases`` in order with steps of at most ``dt_s``.

        Returns the final state, one report per step and ``observe(state)`` after each step
        (for ice-ball dimensions over time, say) if given.
        """
        check_range("dt_s", dt_s, 0.0, low_inclusive=False, unit="s")
        reports, observations = [], []
        for phase in phases:
            n_steps = max(1, int(np.ceil(phase.duration_s / dt_s - 1e-9)))
            for _ in range(n_steps):
                state, report = self.step(state, phase.duration_s / n_steps, phase.boundary)
                reports.append(report)
                if observe is not None:
                    observations.append(observe(state))
        return state, reports, observations


@dataclass(frozen=True)
class Phase:
    """``boundary`` held for ``duration_s`` seconds (one freeze or thaw of a protocol)."""

    duration_s: float
    boundary: HeatBoundary
    label: str = ""

    def __post_init__(self) -> None:
        check_range("duration_s", self.duration_s, 0.0, low_inclusive=False, unit="s")


def freeze_thaw_phases(probe_nodes: np.ndarray, tip_temp_c: float, cycles: Sequence[tuple[str, float]], *, cooldown_s: float = 0.0,
                       start_temp_c: float = 37.0, held_nodes: np.ndarray | None = None, held_temp_c: float = 37.0) -> list[Phase]:  # fmt: skip
    """Phases for a cycle list such as (("freeze", 90), ("thaw", 30), ("freeze", 90)).

    Freeze: the probe surface follows T(t) = T_s + (T_tip - T_s)(1 - exp(-t / tau)) from the
    start of each freeze (tau = ``cooldown_s``, T_s = ``start_temp_c``; tau = 0: held at the
    tip temperature at once), as piecewise-constant phases of tau / RAMP_STEPS_PER_TAU at the
    mid-step value over the first RAMP_SPAN time constants, then at ``tip_temp_c``. Thaw: passive
    (probe insulated, tissue rewarms by conduction and perfusion); active thaw is not
    modelled. ``held_nodes`` (a vessel lumen's flowing blood) stay at ``held_temp_c`` in
    every phase.
    """
    check_range("tip_temp_c", tip_temp_c, -200.0, 0.0, unit="C")
    check_range("cooldown_s", cooldown_s, 0.0, 60.0, unit="s")
    held = np.zeros(0, dtype=np.int64) if held_nodes is None else np.asarray(held_nodes, dtype=np.int64)

    probe = np.asarray(probe_nodes, dtype=np.int64).reshape(-1)

    def boundary(probe_c: float | None) -> HeatBoundary:
        """The probe at ``probe_c`` (None: insulated) and the held nodes at ``held_temp_c``."""
        on = probe if probe_c is not None else probe[:0]
        return HeatBoundary(np.concatenate([on, held]), np.concatenate([np.full(on.size, probe_c or 0.0), np.full(held.size, float(held_temp_c))]))

    phases = []
    for i, (kind, duration_s) in enumerate(cycles):
        check_choice(f"cycles[{i}] kind", kind, ("freeze", "thaw"))
        if kind == "thaw":
            phases.append(Phase(duration_s, boundary(None), kind))
            continue
        t = 0.0
        ramp_end = min(duration_s, RAMP_SPAN * cooldown_s)
        while t < ramp_end - 1e-9:
            step = min(cooldown_s / RAMP_STEPS_PER_TAU, ramp_end - t)
            probe_c = start_temp_c + (tip_temp_c - start_temp_c) * (1.0 - math.exp(-(t + 0.5 * step) / cooldown_s))
            phases.append(Phase(step, boundary(probe_c), kind))
            t += step
        if duration_s - t > 1e-9:
            phases.append(Phase(duration_s - t, boundary(tip_temp_c), kind))
    return phases


def _stop_at_breakpoint(h: np.ndarray, trial: np.ndarray, liquidus_enthalpy: np.ndarray) -> np.ndarray:
    """Move each node at most just past the next kink of T(H) (H = 0 or H = H_l) on its way.

    Newton on a piecewise-linear T(H) overshoots when a node crosses a kink on a slope
    that is not its own (e.g. it freezes on the unfrozen slope); stopping it just past
    the kink lets the next iteration use the right slope.
    """
    nudge = 1e-9 * liquidus_enthalpy
    out = np.array(trial)
    for kink in (np.zeros_like(h), liquidus_enthalpy):
        down = (h > kink) & (out < kink)
        up = (h < kink) & (out > kink)
        out = np.where(down, np.maximum(out, kink - nudge), np.where(up, np.minimum(out, kink + nudge), out))
    return out


def _shifted(report: StepReport, time_s: float) -> StepReport:
    return replace(report, time_s=time_s)


def _combined(a: StepReport, b: StepReport) -> StepReport:
    return StepReport(
        time_s=b.time_s,
        dt_s=a.dt_s + b.dt_s,
        newton_iterations=a.newton_iterations + b.newton_iterations,
        substeps=a.substeps + b.substeps,
        fixed_nodes_j=a.fixed_nodes_j + b.fixed_nodes_j,
        exchange_j=a.exchange_j + b.exchange_j,
        inflow_j=a.inflow_j + b.inflow_j,
        perfusion_j=a.perfusion_j + b.perfusion_j,
        energy_error_j=a.energy_error_j + b.energy_error_j,
    )
