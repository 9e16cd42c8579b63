"""What a placement cohort draws: needle poses around the plan and tissue-property strata.

The spread of needle placement comes from published accuracy per target, scaled by an
operator preset (``data/uncertainty.toml``); poses get a tip offset (Gaussian per axis), a
tilt about the tip (2D Gaussian) and, for a share of needles, a gross misplacement. The
tissue-property spread multiplies every tissue's conductivity and perfusion by log-normal
factors at stratified quantiles. The cohort's evaluation is :mod:`neurolysis.outcome.uncertainty`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from neurolysis._catalog import load_catalog
from neurolysis.fields import NeedlePose
from neurolysis.validation import ValidationError, check_choice, check_range


def operators() -> tuple[str, ...]:
    """The operator presets (``data/uncertainty.toml [operator]``)."""
    return tuple(load_catalog("uncertainty")["operator"])


@dataclass(frozen=True)
class PlacementSpread:
    """How far a needle lands from the plan: tip offset SD per anatomy axis (m), tilt SD
    (degrees), share of gross misplacements and their distance range (m); ``sources`` says
    where each number comes from."""

    offset_sd_m: tuple[float, float, float]
    angle_sd_deg: float
    gross_miss_fraction: float
    gross_miss_m: tuple[float, float]
    operator: str
    sources: Mapping[str, str]

    def as_dict(self) -> dict:
        return {
            "operator": self.operator,
            "offset_sd_mm": [round(1e3 * v, 6) for v in self.offset_sd_m],
            "angle_sd_deg": self.angle_sd_deg,
            "gross_miss_fraction": self.gross_miss_fraction,
            "gross_miss_mm": [1e3 * v for v in self.gross_miss_m],
            "sources": dict(self.sources),
        }


@dataclass(frozen=True)
class PropertySpread:
    """A spread of tissue properties over the cohort: every tissue's electrical conductivity
    and perfusion multiplied by log-normal factors (SD of the natural log), solved at
    ``strata`` stratified quantiles (the fields change with the properties, so each stratum
    is a full solve; samples are dealt to the strata evenly)."""

    conductivity_sd_ln: float
    perfusion_sd_ln: float
    strata: int
    seed: int

    @property
    def factors(self) -> list[dict[str, float]]:
        z = ndtri((np.arange(self.strata) + 0.5) / self.strata)
        rng = np.random.default_rng([int(self.seed), 5])
        sigma, perfusion = np.exp(self.conductivity_sd_ln * rng.permutation(z)), np.exp(self.perfusion_sd_ln * rng.permutation(z))
        return [{"electrical_conductivity_s_m": float(a), "perfusion_w_m3_k": float(b)} for a, b in zip(sigma, perfusion, strict=True)]

    def as_dict(self) -> dict:
        return {"conductivity_sd_ln": self.conductivity_sd_ln, "perfusion_sd_ln": self.perfusion_sd_ln, "strata": self.strata,
                "factors": [[round(f["electrical_conductivity_s_m"], 4), round(f["perfusion_w_m3_k"], 4)] for f in self.factors]}  # fmt: skip


def placement_spread(target: str, operator: str = "experienced", *, offset_sd_mm=None, angle_sd_deg=None, gross_miss_fraction=None) -> PlacementSpread:
    """The spread for ``target`` (a nerve name; ``[default]`` where no study measured it),
    scaled by the ``operator`` preset; explicit values replace the catalogued ones (unscaled)."""
    cat = load_catalog("uncertainty")
    check_choice("uncertainty.operator", operator, operators())
    entry = dict(cat["default"]) | dict(cat["target"].get(target, {}))
    sources = dict(cat["default"]["sources"]) | dict(cat["target"].get(target, {}).get("sources", {}))
    preset = cat["operator"][operator]
    sources["operator"] = preset["source"]
    if offset_sd_mm is None:
        offset = (float(entry["offset_sd_mm"]) * preset["offset_factor"],) * 3
    else:
        offset = tuple(offset_sd_mm) if isinstance(offset_sd_mm, list | tuple) else (offset_sd_mm,) * 3
        sources["offset_sd_mm"] = "given in the plan"
    angle = float(entry["angle_sd_deg"]) * preset["angle_factor"] if angle_sd_deg is None else float(angle_sd_deg)
    gross = min(1.0, float(entry["gross_miss_fraction"]) * preset["gross_miss_factor"]) if gross_miss_fraction is None else float(gross_miss_fraction)
    lo, hi = entry["gross_miss_mm"]
    return PlacementSpread(tuple(1e-3 * float(v) for v in offset), angle, gross, (1e-3 * lo, 1e-3 * hi), operator, sources)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b`` (Rodrigues)."""
    v = np.cross(a, b)
    c = float(a @ b)
    s = float(np.linalg.norm(v))
    if s < 1e-15:
        return np.eye(3)
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]]) / s
    return np.eye(3) + s * k + (1.0 - c) * k @ k


def draw_poses(pose: NeedlePose, spread: PlacementSpread, n: int, seed: int, stream: int = 0) -> list[NeedlePose]:
    """``n`` seeded needle poses around ``pose``: offset, tilt about the tip, gross misses.
    ``stream`` > 0 draws an independent set with the same seed (the k-th needle of a plan)."""
    rng = np.random.default_rng([int(seed), 3] + ([int(stream)] if stream else []))
    offsets = rng.standard_normal((n, 3)) * np.asarray(spread.offset_sd_m)
    gross = rng.random(n) < spread.gross_miss_fraction
    away = rng.standard_normal((n, 3))
    away /= np.linalg.norm(away, axis=1)[:, None]
    offsets += (gross * rng.uniform(*spread.gross_miss_m, n))[:, None] * away
    d = pose.direction
    helper = np.eye(3)[int(np.argmin(abs(d)))]
    e1 = np.cross(d, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    tilt = np.radians(spread.angle_sd_deg) * rng.standard_normal((n, 2))
    angle = np.hypot(tilt[:, 0], tilt[:, 1])
    axis = tilt[:, :1] * e1 + tilt[:, 1:] * e2
    unit = np.divide(axis, angle[:, None], out=np.zeros_like(axis), where=angle[:, None] > 0)
    directions = np.cos(angle)[:, None] * d + np.sin(angle)[:, None] * unit
    return [NeedlePose(pose.tip_m + o, v) for o, v in zip(offsets, directions, strict=True)]


def check_uncertainty(samples, seed, operator, offset_sd_mm, angle_sd_deg, gross_miss_fraction) -> None:
    """One-line errors for bad ``[uncertainty]`` input, before any solve."""
    limits = load_catalog("uncertainty")["limits"]
    if samples is not None:
        if isinstance(samples, bool) or not isinstance(samples, int):
            raise ValidationError(f"uncertainty.samples = {samples!r}: must be a whole number in [1, {limits['max_samples']}]")
        check_range("uncertainty.samples", samples, 1, int(limits["max_samples"]))
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1):
        raise ValidationError(f"uncertainty.seed = {seed!r}: must be a whole number in [0, {2**32 - 1}]")
    check_choice("uncertainty.operator", operator, operators())
    if offset_sd_mm is not None:
        values = offset_sd_mm if isinstance(offset_sd_mm, list | tuple) else [offset_sd_mm]
        if len(values) not in (1, 3):
            raise ValidationError(f"uncertainty.offset_sd_mm = {offset_sd_mm!r}: must be a number or three numbers [x, y, z] (mm)")
        for i, v in enumerate(values):
            check_range(f"uncertainty.offset_sd_mm{'' if len(values) == 1 else f'[{i}]'}", v, 0.0, float(limits["max_offset_sd_mm"]), unit="mm")
    if angle_sd_deg is not None:
        check_range("uncertainty.angle_sd_deg", angle_sd_deg, 0.0, float(limits["max_angle_sd_deg"]), unit="deg")
    if gross_miss_fraction is not None:
        check_range("uncertainty.gross_miss_fraction", gross_miss_fraction, 0.0, 1.0)
