"""Value types shared by the physics engines, the anatomy and the outcome models.

A method's engine turns a plan into fields over space; the nerve and risk models only
see them through a :class:`FieldSampler`: a function from points (metres, anatomy
frame) to a :class:`FieldSample`. This keeps nerve outcome and risk independent of how
(and on which mesh) a method was solved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .validation import ValidationError

BODY_TEMP_C = 37.0
"""The undisturbed tissue temperature (C): what every sampler reports where its method did nothing."""


@dataclass(frozen=True, eq=False)
class NeedlePose:
    """A needle in the anatomy frame: tip position (m) and unit direction hub -> tip."""

    tip_m: np.ndarray
    direction: np.ndarray

    def __post_init__(self) -> None:
        tip = np.asarray(self.tip_m, dtype=float).reshape(3)
        d = np.asarray(self.direction, dtype=float).reshape(3)
        if not np.all(np.isfinite(tip)):
            raise ValidationError(f"placement.tip_mm = {list(tip * 1e3)}: must be three finite numbers")
        norm = float(np.linalg.norm(d))
        if not np.isfinite(norm) or norm < 1e-12:
            raise ValidationError(f"placement.direction = {list(d)}: must be a finite non-zero vector")
        object.__setattr__(self, "tip_m", tip)
        object.__setattr__(self, "direction", d / norm)

    def shifted(self, offset_m) -> NeedlePose:
        return NeedlePose(self.tip_m + np.asarray(offset_m, dtype=float), self.direction)


@dataclass(frozen=True, eq=False)
class FieldSample:
    """Fields at a set of points (arrays of equal length).

    ``lethal`` is the method's own kill criterion (RF: Arrhenius Omega >= 1 with the
    lesion parameter set; pulsed RF: never). Points outside the solved domain carry the
    undisturbed state (body temperature, no damage). ``agent_fraction`` (injected methods
    only, else None) is the peak concentration reached as a fraction of the injected one
    (0..1): how much of the agent got there. ``min_temp_c`` (cold methods only, else None) is
    the minimum temperature reached (C). ``tubes_destroyed`` (bool, or None) marks where
    the dose also destroys the endoneurial tubes (Sunderland grade >= 3: an axon killed there
    regrows through scar); None means the method's catalogued grade applies to every killed
    axon (``data/nerve_model.toml [method]``).
    """

    peak_temp_c: np.ndarray
    omega: np.ndarray
    cem43_min: np.ndarray
    lethal: np.ndarray
    agent_fraction: np.ndarray | None = None
    tubes_destroyed: np.ndarray | None = None
    min_temp_c: np.ndarray | None = None  # cold methods: the minimum temperature reached (C)
    agent_mmol_l: np.ndarray | None = None  # injected neurolytics: the peak tissue concentration (mmol/L)
    agent_solute: str | None = None  # its solute (ethanol | phenol): the injury thresholds are per solute


def unharmed(points_m: np.ndarray) -> FieldSample:
    """The undisturbed state at ``points_m`` (n, 3): a FieldSampler of a method that heats,
    freezes and kills nothing (a nerve block)."""
    n = np.asarray(points_m).reshape(-1, 3).shape[0]
    return FieldSample(np.full(n, BODY_TEMP_C), np.zeros(n), np.zeros(n), np.zeros(n, bool))


class FieldSampler(Protocol):
    def __call__(self, points_m: np.ndarray) -> FieldSample: ...


def lesions_in_turn(samplers: tuple[FieldSampler, ...]) -> FieldSampler:
    """The fields after several lesions made one after another, each starting from body temperature.

    Peak temperature: the highest of them; Arrhenius Omega and CEM43: their sums (both integrate
    over time, and the tissue is back at 37 C between lesions: the minutes spent moving a needle
    are several perfusion time constants, docs/planning.md); lethal where any lesion is lethal or
    the summed Omega reaches 1; agent: the highest fraction; tubes destroyed where any says so."""

    def sample(points_m: np.ndarray) -> FieldSample:
        parts = [s(points_m) for s in samplers]
        omega = np.sum([p.omega for p in parts], axis=0)
        lethal = np.any([p.lethal for p in parts], axis=0) | (omega >= 1.0)
        agents = [p.agent_fraction for p in parts if p.agent_fraction is not None]
        tubes = [p.tubes_destroyed for p in parts if p.tubes_destroyed is not None]
        colds = [p.min_temp_c for p in parts if p.min_temp_c is not None]
        molar = [p.agent_mmol_l for p in parts if p.agent_mmol_l is not None]
        return FieldSample(
            peak_temp_c=np.max([p.peak_temp_c for p in parts], axis=0),
            omega=omega,
            cem43_min=np.sum([p.cem43_min for p in parts], axis=0),
            lethal=lethal,
            agent_fraction=np.max(agents, axis=0) if agents else None,
            tubes_destroyed=np.any(tubes, axis=0) if tubes else None,
            agent_mmol_l=np.max(molar, axis=0) if molar else None,
            agent_solute=next((p.agent_solute for p in parts if p.agent_solute is not None), None),
            min_temp_c=np.min(colds, axis=0) if colds else None,
        )

    return sample
