"""A myelinated axon of our own, for an independent check of the stimulation thresholds.

McNeal (1976) cable with the node membrane of Sweeney, Mortimer & Durand (1987): the
mammalian (rabbit, 37 C) fast-sodium and leak kinetics of Chiu, Ritchie, Rogart & Stagg.
The myelin is a perfect insulator, so only the nodes of Ranvier carry membrane current:

    C_m A dV_n/dt = G_a (V_{n-1} - 2 V_n + V_{n+1} + Ve_{n-1} - 2 Ve_n + Ve_{n+1}) - A (i_Na + i_L)

with V_n the transmembrane potential of node n, Ve the extracellular potential, A = pi d l the
node's area (axon diameter d = 0.6 D for fibre diameter D, node length l = 1.5 um) and
G_a = pi d^2 / (4 rho_i L) the axoplasm's conductance over an internode L = 100 D. Sealed ends.
The gates advance exactly for the voltage of the step (as NEURON's ``cnexp``), then the
voltages by backward Euler: one tridiagonal solve per step.

Parameters are Sweeney 1987's as published: g_Na 1445 mS/cm^2, g_L 128 mS/cm^2, E_Na 35.64 mV,
E_L -80.01 mV, rest -80 mV, C_m 2.5 uF/cm^2, rho_i 54.7 Ohm cm. This is the SWEENEY model
PyFibers also implements, so the two must agree on the same field (tests/verification);
it is not the MRG model the planner's table uses, which has a double-cable myelin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_banded

REST_V = -80e-3
E_NA_V = 35.64e-3
E_LEAK_V = -80.01e-3
G_NA_S_M2 = 14450.0  # 1445 mS/cm^2
G_LEAK_S_M2 = 1280.0  # 128 mS/cm^2
C_M_F_M2 = 0.025  # 2.5 uF/cm^2
RHO_I_OHM_M = 0.547  # 54.7 Ohm cm
NODE_LENGTH_M = 1.5e-6
AP_LEVEL_V = -30e-3  # an action potential: the detection node above -30 mV


@dataclass(frozen=True)
class SweeneyAxon:
    """Geometry of a McNeal-Sweeney axon of fibre diameter ``diameter_m`` and ``n_nodes`` nodes."""

    diameter_m: float
    n_nodes: int

    @property
    def internode_m(self) -> float:
        return 100.0 * self.diameter_m

    @property
    def node_positions_m(self) -> np.ndarray:
        """Arc length of each node from the first (m)."""
        return np.arange(self.n_nodes) * self.internode_m


def _rates_per_ms(v_mv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steady states and time constants (ms) of m and h; ``v_mv`` absolute (Sweeney 1987)."""
    alpha_m = (126.0 + 0.363 * v_mv) / (1.0 + np.exp(-(49.0 + v_mv) / 5.3))
    beta_m = alpha_m / np.exp((v_mv + 56.2) / 4.17)
    beta_h = 15.6 / (1.0 + np.exp(-(v_mv + 56.0) / 10.0))
    alpha_h = beta_h / np.exp((v_mv + 74.5) / 5.0)
    return (alpha_m / (alpha_m + beta_m), 1.0 / (alpha_m + beta_m),
            alpha_h / (alpha_h + beta_h), 1.0 / (alpha_h + beta_h))


def fires(axon: SweeneyAxon, ve_v: np.ndarray, pulse_s: float, *, dt_s: float = 5e-6, t_stop_s: float = 5e-3,
          detect_at: float = 0.9) -> bool:
    """Whether a square pulse of extracellular potentials ``ve_v`` (V at each node) starts an action potential.

    The pulse runs from 0.1 ms for ``pulse_s``; an action potential is the node at ``detect_at`` of the
    fibre's length rising above -30 mV.
    """
    n = axon.n_nodes
    d = 0.6 * axon.diameter_m
    area = math.pi * d * NODE_LENGTH_M
    g_axial = math.pi * d * d / (4.0 * RHO_I_OHM_M * axon.internode_m)
    c = C_M_F_M2 * area / dt_s
    coupling = np.full(n, 2.0 * g_axial)
    coupling[[0, -1]] = g_axial  # sealed ends
    second_diff = np.zeros(n)
    second_diff[1:-1] = ve_v[:-2] - 2 * ve_v[1:-1] + ve_v[2:]
    second_diff[0], second_diff[-1] = ve_v[1] - ve_v[0], ve_v[-2] - ve_v[-1]
    v = np.full(n, REST_V)
    m_inf, _, h_inf, _ = _rates_per_ms(v * 1e3)
    m, h = m_inf.copy(), h_inf.copy()
    band = np.zeros((3, n))
    band[0, 1:] = -g_axial
    band[2, :-1] = -g_axial
    detect = round(detect_at * (n - 1))
    start_s = 1e-4
    for step in range(round(t_stop_s / dt_s)):
        t = (step + 0.5) * dt_s
        drive = g_axial * second_diff if start_s <= t < start_s + pulse_s else 0.0
        m_inf, m_tau, h_inf, h_tau = _rates_per_ms(v * 1e3)
        m = m_inf + (m - m_inf) * np.exp(-dt_s * 1e3 / m_tau)
        h = h_inf + (h - h_inf) * np.exp(-dt_s * 1e3 / h_tau)
        g_na = G_NA_S_M2 * area * m * m * h
        g_leak = G_LEAK_S_M2 * area
        band[1] = c + coupling + g_na + g_leak
        rhs = c * v + g_na * E_NA_V + g_leak * E_LEAK_V + drive
        v = solve_banded((1, 1), band, rhs)
        if v[detect] > AP_LEVEL_V:
            return True
    return False


def threshold_scale(axon: SweeneyAxon, ve_unit_v: np.ndarray, pulse_s: float, *, tolerance: float = 0.01,
                    **kwargs) -> float:
    """Smallest factor k for which ``k * ve_unit_v`` fires the axon, by bisection to ``tolerance`` (relative).

    The upper bound is searched upward from below, so a virtual-anode block window at high amplitude
    is never bracketed.
    """
    low = 1e-6 / max(float(np.max(np.abs(ve_unit_v))), 1e-30)
    while fires(axon, low * ve_unit_v, pulse_s, **kwargs):
        low /= 2.0
    high = low * 1.5
    while not fires(axon, high * ve_unit_v, pulse_s, **kwargs):
        low, high = high, high * 1.5
        if high * np.max(np.abs(ve_unit_v)) > 10.0:
            raise ValueError("the axon does not fire below 10 V of extracellular potential")
    while high / low - 1.0 > tolerance:
        middle = 0.5 * (low + high)
        low, high = (low, middle) if fires(axon, middle * ve_unit_v, pulse_s, **kwargs) else (middle, high)
    return high


def point_source_potential_v(axon: SweeneyAxon, current_a: float, distance_m: float, sigma_s_m: float) -> np.ndarray:
    """Ve at each node from a point source ``distance_m`` from the middle node: I / (4 pi sigma r)."""
    z = axon.node_positions_m - axon.node_positions_m[axon.n_nodes // 2]
    return current_a / (4.0 * math.pi * sigma_s_m * np.sqrt(distance_m**2 + z**2))
