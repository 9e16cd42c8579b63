"""Heat conduction with freezing and thawing: the enthalpy method, backward Euler, Newton.

    dH/dt = div( k grad T ) + (1 - f) w_b (T_b - T)                         [W/m^3]

H is the volumetric enthalpy (J/m^3), zero for fully frozen tissue at the solidus T_s;
latent heat L (J/m^3) is released linearly in H across the mushy range [T_s, T_l]:

    H(T) = C_f (T - T_s)                                    T <= T_s   (frozen)
    H(T) = (C_m + L / (T_l - T_s)) (T - T_s)                T_s < T < T_l,  C_m = (C_f + C_u) / 2
    H(T) = H_l + C_u (T - T_l),  H_l = C_m (T_l - T_s) + L   T >= T_l   (unfrozen)

T_s = T_l is allowed (isothermal phase change: H jumps by L at T_s). The inverse T(H) is
a function (piecewise linear, monotone, Lipschitz), so H is the primary unknown and the
frozen fraction is f = 1 - H / H_l clipped to [0, 1]. Conductivity follows the phase,
k(H) = k_u + (k_f - k_u) f(H), through the Kirchhoff transform Phi(H) = int k dT, so that
div(k grad T) = lap Phi; elements sharing (k_f, k_u) form one group (one per tissue).
Perfusion w_b (W/m^3/K, Pennes) stops as tissue freezes.

Discretisation is the caller's (any mesh): lumped nodal volumes V (m^3), a function
returning the stiffness matrix K(k_e) (W/K, all nodes, no boundary conditions applied:
its columns sum to zero), prescribed-temperature nodes, a Robin exchange and prescribed
nodal heat inflows (W). Each backward-Euler step solves for H at the free nodes

    R(H) = V (H - H_old) / dt + sum_m K_m Phi_m(H) - V w_b (1 - f) (T_b - T) - G (T_g - T) - Q = 0

(K_m: unit-conductivity stiffness of group m) by Newton's method. Its Jacobian
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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from neurolysis._catalog import load_catalog
from neurolysis.validation import ValidationError, check_choice, check_range

_SLOPE_FLOOR = 1e-9
"""D = dT/dH is floored at this fraction of the smallest phase slope 1 / C (isothermal
phase change has D = 0 there); the Newton step is then exact to ~1e-9 relative."""


def _frozen_array(values, name: str, size: int | None = None, dtype=float) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    if array.ndim == 0 and size is not None:
        array = np.full(size, array.item(), dtype=dtype)
    if size is not None and array.shape != (size,):
        raise ValidationError(f"{name} has shape {array.shape}: must have shape ({size},)")
    if dtype is float and not np.all(np.isfinite(array)):
        raise ValidationError(f"{name} = {array[~np.isfinite(array)][0]}: must be finite")
    array.flags.writeable = False
    return array


# ---------------------------------------------------------------------------- material


@dataclass(frozen=True)
class FreezingMaterial:
    """One tissue's properties for freezing (SI; temperatures in C).

    Volumetric heat capacities C = rho c (J/m^3/K) frozen and unfrozen, latent heat per
    unit volume L = rho x_water L_water (J/m^3), conductivities (W/m/K), the mushy range
    [solidus_c, liquidus_c] and the Pennes perfusion coefficient w_b rho_b c_b (W/m^3/K).
    """

    solidus_c: float
    liquidus_c: float
    latent_heat_j_m3: float
    heat_capacity_frozen_j_m3_k: float
    heat_capacity_unfrozen_j_m3_k: float
    conductivity_frozen_w_m_k: float
    conductivity_unfrozen_w_m_k: float
    perfusion_w_m3_k: float = 0.0
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), compare=False)

    def __post_init__(self) -> None:
        check_range("solidus_c", self.solidus_c, -100.0, 0.0, unit="C")
        check_range("liquidus_c", self.liquidus_c, self.solidus_c, 0.0, unit="C")
        check_range("latent_heat_j_m3", self.latent_heat_j_m3, 0.0, 1e9, unit="J/m^3")
        for name in ("heat_capacity_frozen_j_m3_k", "heat_capacity_unfrozen_j_m3_k"):
            check_range(name, getattr(self, name), 1e4, 1e8, unit="J/m^3/K")
        for name in ("conductivity_frozen_w_m_k", "conductivity_unfrozen_w_m_k"):
            check_range(name, getattr(self, name), 1e-3, 1e3, unit="W/m/K")
        check_range("perfusion_w_m3_k", self.perfusion_w_m3_k, 0.0, 1e6, unit="W/m^3/K")

    @property
    def diffusivity_frozen_m2_s(self) -> float:
        return self.conductivity_frozen_w_m_k / self.heat_capacity_frozen_j_m3_k

    @property
    def diffusivity_unfrozen_m2_s(self) -> float:
        return self.conductivity_unfrozen_w_m_k / self.heat_capacity_unfrozen_j_m3_k


def freezing_tissue_ids() -> list[str]:
    """Tissues with freezing properties in ``data/freezing.toml``."""
    return list(load_catalog("freezing")["tissue"])


def freezing_material(tissue_id: str, *, perfused: bool = True) -> FreezingMaterial:
    """Freezing properties of a catalogued tissue.

    Unfrozen rho, c, k and perfusion come from ``data/tissues.toml`` (at 37 C); the water
    fraction, frozen c and k and the mushy range from ``data/freezing.toml``:
    L = rho x_water L_water, C_f = rho c_f.
    """
    from neurolysis.tissue import load_tissue

    check_choice("freezing tissue", tissue_id, freezing_tissue_ids())
    catalog = load_catalog("freezing")
    entry, mushy = catalog["tissue"][tissue_id], catalog["phase_change"]
    tissue = load_tissue(tissue_id)
    rho = tissue.density_kg_m3
    return FreezingMaterial(
        solidus_c=float(mushy["solidus_c"]),
        liquidus_c=float(mushy["liquidus_c"]),
        latent_heat_j_m3=rho * float(entry["water_mass_fraction"]) * float(catalog["water"]["latent_heat_fusion_j_kg"]),
        heat_capacity_frozen_j_m3_k=rho * float(entry["heat_capacity_frozen_j_kg_k"]),
        heat_capacity_unfrozen_j_m3_k=tissue.volumetric_heat_capacity_j_m3_k,
        conductivity_frozen_w_m_k=float(entry["thermal_conductivity_frozen_w_m_k"]),
        conductivity_unfrozen_w_m_k=tissue.thermal_conductivity_w_m_k,
        perfusion_w_m3_k=tissue.perfusion_w_m3_k if perfused else 0.0,
        sources=MappingProxyType(dict(entry.get("sources", {}))),
    )


def lethal_isotherms_c() -> dict[str, float]:
    """Catalogued cold-injury thresholds (C) by name, from ``data/freezing.toml``."""
    table = load_catalog("freezing")["lethal_isotherm"]
    return {name: float(value) for name, value in table.items() if name != "sources"}


# ---------------------------------------------------------------------- enthalpy curve


@dataclass(frozen=True)
class EnthalpyCurve:
    """Nodal H(T) and its inverse (see the module docstring), arrays of shape (n,)."""

    solidus_c: float
    liquidus_c: float
    capacity_frozen: np.ndarray  # C_f, J/m^3/K
    capacity_unfrozen: np.ndarray  # C_u, J/m^3/K
    latent: np.ndarray  # L, J/m^3

    @property
    def mushy_capacity(self) -> np.ndarray:
        """C_m = (C_f + C_u) / 2, the sensible part inside the mushy range."""
        return 0.5 * (self.capacity_frozen + self.capacity_unfrozen)

    @property
    def liquidus_enthalpy(self) -> np.ndarray:
        """H_l = C_m (T_l - T_s) + L: enthalpy of just-unfrozen tissue (J/m^3)."""
        return self.mushy_capacity * (self.liquidus_c - self.solidus_c) + self.latent

    def enthalpy(self, temp_c: np.ndarray) -> np.ndarray:
        """H(T) in J/m^3 (at T = T_s exactly: frozen, H = 0)."""
        t = np.asarray(temp_c, float) - self.solidus_c
        width = self.liquidus_c - self.solidus_c
        h_l = self.liquidus_enthalpy
        mushy = h_l * t / width if width > 0 else np.zeros_like(t)
        return np.where(t <= 0, self.capacity_frozen * t, np.where(t < width, mushy, h_l + self.capacity_unfrozen * (t - width)))

    def temperature(self, enthalpy_j_m3: np.ndarray) -> np.ndarray:
        """T(H) in C: the inverse of ``enthalpy``, constant T_s across H in [0, L] if isothermal."""
        h = np.asarray(enthalpy_j_m3, float)
        h_l = self.liquidus_enthalpy
        width = self.liquidus_c - self.solidus_c
        mushy = self.solidus_c + width * np.clip(h, 0.0, h_l) / h_l
        frozen = self.solidus_c + np.minimum(h, 0.0) / self.capacity_frozen
        unfrozen = self.liquidus_c + np.maximum(h - h_l, 0.0) / self.capacity_unfrozen
        return np.where(h < 0, frozen, np.where(h > h_l, unfrozen, mushy))

    def frozen_fraction(self, enthalpy_j_m3: np.ndarray) -> np.ndarray:
        """f = 1 - H / H_l clipped to [0, 1]: the fraction of latent heat removed."""
        return np.clip(1.0 - np.asarray(enthalpy_j_m3, float) / self.liquidus_enthalpy, 0.0, 1.0)

    def conductivity(self, enthalpy_j_m3: np.ndarray, frozen_w_m_k: float, unfrozen_w_m_k: float) -> np.ndarray:
        """k(H) = k_u + (k_f - k_u) f(H) (W/m/K): linear in H across the mushy range."""
        return unfrozen_w_m_k + (frozen_w_m_k - unfrozen_w_m_k) * self.frozen_fraction(enthalpy_j_m3)

    def kirchhoff(self, enthalpy_j_m3: np.ndarray, frozen_w_m_k: float, unfrozen_w_m_k: float) -> np.ndarray:
        """Phi(H) = integral_{T_s}^{T(H)} k dT (W/m) along the enthalpy path:

            k_f (T - T_s)                                       frozen
            (T_l - T_s) / H_l (k_f H + (k_u - k_f) H^2 / (2 H_l))   mushy (k, T linear in H)
            (T_l - T_s) (k_f + k_u) / 2 + k_u (T - T_l)          unfrozen
        so that div(k grad T) = lap Phi, and dPhi/dH = k(H) dT/dH.
        """
        h = np.asarray(enthalpy_j_m3, float)
        h_l, width = self.liquidus_enthalpy, self.liquidus_c - self.solidus_c
        temp = self.temperature(h)
        hm = np.clip(h, 0.0, h_l)
        mushy = width / h_l * (frozen_w_m_k * hm + (unfrozen_w_m_k - frozen_w_m_k) * hm**2 / (2 * h_l))
        return np.where(
            h < 0,
            frozen_w_m_k * (temp - self.solidus_c),
            np.where(h > h_l, 0.5 * width * (frozen_w_m_k + unfrozen_w_m_k) + unfrozen_w_m_k * (temp - self.liquidus_c), mushy),
        )

    def slope(self, enthalpy_j_m3: np.ndarray) -> np.ndarray:
        """dT/dH (m^3 K/J) on the piece that contains H (frozen side at H = 0)."""
        h = np.asarray(enthalpy_j_m3, float)
        h_l = self.liquidus_enthalpy
        mushy = (self.liquidus_c - self.solidus_c) / h_l
        return np.where(h < 0, 1.0 / self.capacity_frozen, np.where(h > h_l, 1.0 / self.capacity_unfrozen, mushy))


# ---------------------------------------------------------------- mesh and properties


@dataclass(frozen=True)
class ConductionMesh:
    """What the kernel needs of a mesh.

    ``node_volume_m3``: lumped nodal volumes (for an axisymmetric mesh include 2 pi r).
    ``element_nodes``: (n_elements, nodes per element) connectivity.
    ``stiffness``: element conductivities (W/m/K, shape (n_elements,)) -> sparse K (W/K)
    over all nodes with no boundary condition applied (columns sum to zero), consistent
    with the volumes (same 2 pi convention).
    """

    node_volume_m3: np.ndarray
    element_nodes: np.ndarray
    stiffness: Callable[[np.ndarray], sp.spmatrix]

    def __post_init__(self) -> None:
        volume = _frozen_array(self.node_volume_m3, "node_volume_m3")
        if volume.ndim != 1 or np.any(volume <= 0):
            raise ValidationError("node_volume_m3: must be a 1D array of volumes > 0 m^3")
        elements = _frozen_array(self.element_nodes, "element_nodes", dtype=np.int64)
        if elements.ndim != 2 or elements.min() < 0 or elements.max() >= len(volume):
            raise ValidationError(f"element_nodes: must be (n_elements, k) indices in [0, {len(volume) - 1}]")
        object.__setattr__(self, "node_volume_m3", volume)
        object.__setattr__(self, "element_nodes", elements)

    @property
    def n_nodes(self) -> int:
        return len(self.node_volume_m3)

    @property
    def n_elements(self) -> int:
        return len(self.element_nodes)


@dataclass(frozen=True)
class FreezingProperties:
    """Properties laid on a mesh: nodal enthalpy curve and perfusion, element conductivity."""

    curve: EnthalpyCurve
    conductivity_frozen_w_m_k: np.ndarray  # (n_elements,)
    conductivity_unfrozen_w_m_k: np.ndarray  # (n_elements,)
    perfusion_w_m3_k: np.ndarray  # (n_nodes,)
    blood_temp_c: float = 37.0

    def conductivity_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (k_f, k_u) pairs (shape (m, 2)) and each element's group index."""
        pairs = np.column_stack([self.conductivity_frozen_w_m_k, self.conductivity_unfrozen_w_m_k])
        groups, index = np.unique(pairs, axis=0, return_inverse=True)
        return groups, index.reshape(-1)


def uniform_properties(material: FreezingMaterial, mesh: ConductionMesh, blood_temp_c: float = 37.0) -> FreezingProperties:
    """One material everywhere on ``mesh``."""
    check_range("blood_temp_c", blood_temp_c, 0.0, 45.0, unit="C")
    n, n_el = mesh.n_nodes, mesh.n_elements
    curve = EnthalpyCurve(
        material.solidus_c,
        material.liquidus_c,
        _frozen_array(material.heat_capacity_frozen_j_m3_k, "capacity_frozen", n),
        _frozen_array(material.heat_capacity_unfrozen_j_m3_k, "capacity_unfrozen", n),
        _frozen_array(material.latent_heat_j_m3, "latent", n),
    )
    return FreezingProperties(
        curve,
        _frozen_array(material.conductivity_frozen_w_m_k, "conductivity_frozen", n_el),
        _frozen_array(material.conductivity_unfrozen_w_m_k, "conductivity_unfrozen", n_el),
        _frozen_array(material.perfusion_w_m3_k, "perfusion", n),
        float(blood_temp_c),
    )


def line_mesh(nodes_m: np.ndarray, geometry: str = "planar") -> ConductionMesh:
    """P1 elements on a 1D grid: a slab of unit area (``planar``) or a cylinder of unit
    length about r = 0 (``cylindrical``, x = r, weight 2 pi r).

    Element stiffness k_e W_e / h_e [[1, -1], [-1, 1]] with W_e = 1 (planar) or
    2 pi r_mid (exact for P1); lumped volumes are the row sums of the consistent mass:
    h / 2 (planar) or 2 pi h (2 r_i + r_j) / 6 (cylindrical).
    """
    check_choice("geometry", geometry, ("planar", "cylindrical"))
    x = _frozen_array(nodes_m, "nodes_m")
    h = np.diff(x)
    if x.ndim != 1 or len(x) < 2 or np.any(h <= 0) or (geometry == "cylindrical" and x[0] < 0):
        raise ValidationError("nodes_m: must be increasing (and >= 0 for cylindrical)")
    left, right = np.arange(len(h)), np.arange(1, len(x))
    if geometry == "planar":
        weight, vol_left, vol_right = np.ones_like(h), 0.5 * h, 0.5 * h
    else:
        weight = np.pi * (x[:-1] + x[1:])
        vol_left, vol_right = 2 * np.pi * h * (2 * x[:-1] + x[1:]) / 6, 2 * np.pi * h * (x[:-1] + 2 * x[1:]) / 6
    volume = np.bincount(left, vol_left, len(x)) + np.bincount(right, vol_right, len(x))
    rows = np.concatenate([left, right, left, right])
    cols = np.concatenate([left, right, right, left])
    unit = weight / h

    def stiffness(conductivity: np.ndarray) -> sp.csr_matrix:
        g = conductivity * unit
        return sp.csr_matrix((np.concatenate([g, g, -g, -g]), (rows, cols)), shape=(len(x), len(x)))

    return ConductionMesh(volume, np.column_stack([left, right]), stiffness)


# ------------------------------------------------------------------------- boundary


@dataclass(frozen=True)
class HeatBoundary:
    """Boundary conditions held during one phase.

    ``fixed_nodes`` at ``fixed_temp_c`` (a probe surface at its tip temperature);
    ``exchange_conductance_w_k`` (nodal G, W/K) toward ``exchange_temp_c``: inflow
    G (T_g - T) (a heat-transfer coefficient times the nodal surface area);
    ``inflow_w``: prescribed nodal heat inflow (W, positive into the tissue).
    Unlisted boundaries are insulated.
    """

    fixed_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    fixed_temp_c: np.ndarray | float = 0.0
    exchange_conductance_w_k: np.ndarray | None = None
    exchange_temp_c: np.ndarray | float = 0.0
    inflow_w: np.ndarray | None = None

    def __post_init__(self) -> None:
        nodes = _frozen_array(self.fixed_nodes, "fixed_nodes", dtype=np.int64).reshape(-1)
        object.__setattr__(self, "fixed_nodes", nodes)
        temps = np.broadcast_to(np.asarray(self.fixed_temp_c, float), nodes.shape)
        object.__setattr__(self, "fixed_temp_c", _frozen_array(temps, "fixed_temp_c"))
        if np.any(self.fixed_temp_c < -273.15):
            raise ValidationError(f"fixed_temp_c = {self.fixed_temp_c.min():g} C: must be >= -273.15 C")
        check_range("exchange_temp_c", float(np.min(self.exchange_temp_c)), -273.15, unit="C")
        if self.exchange_conductance_w_k is not None and np.any(np.asarray(self.exchange_conductance_w_k) < 0):
            raise ValidationError("exchange_conductance_w_k: must be >= 0 W/K")


def probe_boundary(probe_nodes: np.ndarray, tip_temp_c: float | None) -> HeatBoundary:
    """Probe surface held at ``tip_temp_c`` (freeze), or passive and insulated if None (thaw)."""
    if tip_temp_c is None:
        return HeatBoundary()
    check_range("tip_temp_c", tip_temp_c, -200.0, 0.0, unit="C")
    return HeatBoundary(np.asarray(probe_nodes), float(tip_temp_c))


# ------------------------------------------------------------------- state and report


@dataclass(frozen=True)
class FreezingState:
    """Nodal fields at ``time_s``, with running minimum temperature and time below thresholds."""

    time_s: float
    enthalpy_j_m3: np.ndarray
    temp_c: np.ndarray
    frozen_fraction: np.ndarray
    min_temp_c: np.ndarray
    thresholds_c: tuple[float, ...]
    time_below_s: np.ndarray  # (len(thresholds_c), n_nodes)

    def energy_j(self, mesh: ConductionMesh) -> float:
        """Total enthalpy sum_i V_i H_i (J, relative to frozen tissue at the solidus)."""
        return float(mesh.node_volume_m3 @ self.enthalpy_j_m3)

    def frozen_volume_m3(self, mesh: ConductionMesh) -> float:
        """Ice volume sum_i V_i f_i (m^3)."""
        return float(mesh.node_volume_m3 @ self.frozen_fraction)


@dataclass(frozen=True)
class StepReport:
    """Energy (J) that entered the tissue during one step, by route, and solver effort.

    ``energy_error_j`` = dt x sum of free-node residuals: stored-energy change minus all
    inflows (zero for an exactly solved step).
    """

    time_s: float
    dt_s: float
    newton_iterations: int
    substeps: int
    fixed_nodes_j: float
    exchange_j: float
    inflow_j: float
    perfusion_j: float
    energy_error_j: float


def time_below(temp_start_c: np.ndarray, temp_end_c: np.ndarray, threshold_c: float, dt_s: float) -> np.ndarray:
    """Time (s) within a step that T, linear in time from start to end, spends below the threshold."""
    low, high = np.minimum(temp_start_c, temp_end_c), np.maximum(temp_start_c, temp_end_c)
    span = high - low
    fraction = np.where(span > 0, (threshold_c - low) / np.where(span > 0, span, 1.0), (low < threshold_c).astype(float))
    return dt_s * np.clip(fraction, 0.0, 1.0)


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
        h = _frozen_array(enthalpy_j_m3, "enthalpy_j_m3", self.mesh.n_nodes)
        temp = curve.temperature(h)
        return FreezingState(
            float(time_s),
            h,
            _frozen_array(temp, "temp_c"),
            _frozen_array(curve.frozen_fraction(h), "frozen_fraction"),
            _frozen_array(temp, "min_temp_c"),
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
            _frozen_array(enthalpy, "enthalpy_j_m3"),
            _frozen_array(temp, "temp_c"),
            _frozen_array(curve.frozen_fraction(enthalpy), "frozen_fraction"),
            _frozen_array(np.minimum(state.min_temp_c, temp), "min_temp_c"),
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


def freeze_thaw_phases(probe_nodes: np.ndarray, tip_temp_c: float, cycles: Sequence[tuple[str, float]]) -> list[Phase]:
    """Phases for a cycle list such as (("freeze", 90), ("thaw", 30), ("freeze", 90)).

    Freeze: probe surface held at the tip temperature. Thaw: passive (probe insulated,
    tissue rewarms by conduction and perfusion); active thaw is not modelled.
    """
    phases = []
    for i, (kind, duration_s) in enumerate(cycles):
        check_choice(f"cycles[{i}] kind", kind, ("freeze", "thaw"))
        phases.append(Phase(duration_s, probe_boundary(probe_nodes, tip_temp_c if kind == "freeze" else None), kind))
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
    from dataclasses import replace

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
