"""The ``[uncertainty]`` section of a plan: the Monte Carlo cohort over needle placement."""

from __future__ import annotations

from dataclasses import dataclass

from neurolysis.outcome.spread import check_uncertainty
from neurolysis.validation import ValidationError, check_range


@dataclass(frozen=True)
class UncertaintySpec:
    """The Monte Carlo cohort over needle placement (``neurolysis.outcome.uncertainty``):
    ``samples`` poses (left out: no cohort; ``simulate --monte-carlo N`` sets it), drawn with ``seed``
    (default: ``simulation.seed``) from the target's published accuracy scaled by the
    ``operator`` preset, unless ``offset_sd_mm`` (one SD or [x, y, z], mm), ``angle_sd_deg``
    or ``gross_miss_fraction`` are given (``data/uncertainty.toml`` says where each comes from).
    ``full_solves``: that many samples are solved in full (slow) and compared with the shortcut.
    ``conductivity_sd_ln``, ``perfusion_sd_ln``: SD of the log of factors on every tissue's
    electrical conductivity and perfusion (RF methods), solved at ``property_solves`` strata.
    ``anchors``: up to that many poses among the samples whose verdict could change (inexact,
    and flipped by the verdict band) are solved in full as well, and each of those samples is
    moved from the nearest solved pose (near bone, where one rigid move from the plan is inexact)."""

    samples: int | None = None
    seed: int | None = None
    operator: str = "experienced"
    offset_sd_mm: float | tuple[float, float, float] | None = None
    angle_sd_deg: float | None = None
    gross_miss_fraction: float | None = None
    full_solves: int = 0
    conductivity_sd_ln: float = 0.0
    perfusion_sd_ln: float = 0.0
    property_solves: int = 4
    anchors: int = 0

    def __post_init__(self) -> None:
        for name, high in (("full_solves", 1000), ("property_solves", 16), ("anchors", 32)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(f"uncertainty.{name} = {value!r}: must be a whole number in [{int(name == 'property_solves')}, {high}]")
            check_range(f"uncertainty.{name}", value, int(name == "property_solves"), high)
        check_range("uncertainty.conductivity_sd_ln", self.conductivity_sd_ln, 0.0, 1.0)
        check_range("uncertainty.perfusion_sd_ln", self.perfusion_sd_ln, 0.0, 1.0)
        if self.anchors and (self.conductivity_sd_ln or self.perfusion_sd_ln):
            raise ValidationError(f"uncertainty.anchors = {self.anchors}: not combined with a property spread (conductivity_sd_ln, perfusion_sd_ln); use one or the other")
        if isinstance(self.offset_sd_mm, list):
            object.__setattr__(self, "offset_sd_mm", tuple(self.offset_sd_mm))
        check_uncertainty(self.samples, self.seed, self.operator, self.offset_sd_mm, self.angle_sd_deg, self.gross_miss_fraction)
