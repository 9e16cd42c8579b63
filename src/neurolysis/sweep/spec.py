"""The sweep file: a base plan and the plan fields to vary, expanded into validated points.

```toml
base = "plan.toml"                  # relative to the sweep file, or absolute
monte_carlo = 0                     # optional: placement Monte Carlo samples per point (uncertainty.samples)
[vary]                              # the grid of every combination (first field slowest)
"procedure.volume_ml" = [2, 4, 6]
"placement.offset_mm" = [[0, 0, 0], [2, 0, 0]]
[random]                            # optional: `count` draws with `seed`, uniform in each [low, high]
seed = 1
count = 8
"procedure.concentration_pct" = [0.25, 0.75]
```

With both tables every grid point is crossed with every random draw (grid size x count
points, the draw index fastest). Fields are plan fields ``section.field``, applied to the base
plan exactly as ``simulate --set section.field=value``. Every point's plan is loaded and
prepared (anatomy, target, placement, bone check: no solve) before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from neurolysis.about import __version__
from neurolysis.planning.plan import NEEDLE_KEY, SEED_MAX, load_plan, parse_override, plan_toml, toml_problem, toml_value
from neurolysis.planning.simulate import prepare
from neurolysis.validation import ValidationError, check_range, check_toml_integers, shown

SWEEP_KEYS = ("base", "monte_carlo", "vary", "random")
RANDOM_SETTINGS = ("seed", "count")
MAX_POINTS = 100_000
"""Most points one sweep file may expand to (each is validated before any runs)."""
RANDOM_DIGITS = 6
"""Random draws are rounded to this many significant digits (readable plans and columns)."""
RANDOM_BOUND = 1e12
"""Largest magnitude of a ``[random]`` bound (no plan field comes near it; NumPy's draws stay exact)."""
_FIELD_NAME = re.compile(rf"(?:[A-Za-z_][A-Za-z_0-9]*|{NEEDLE_KEY.pattern})\.[A-Za-z_][A-Za-z_0-9]*")
"""A plan field as `simulate --set` names it: section.field, or needles[k].field for one needle of several."""


@dataclass(frozen=True)
class SweepPoint:
    """One plan of a sweep: the base plan with ``overrides`` ((field, value) pairs in the sweep
    file's order) and the sweep's Monte Carlo setting.

    ``key`` is the first 16 hex digits of the SHA-256 of the base plan's text, the overrides and
    the package version: the name of the point's result file, by which a rerun finds it done.
    ``plan_text`` is the point's validated plan as TOML (``plan_toml``), what a worker solves.
    """

    index: int
    overrides: tuple[tuple[str, object], ...]
    key: str
    plan_text: str

    def values(self) -> dict:
        """The varied fields and their values (vectors as lists), as in the results row."""
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.overrides}

    def describe(self) -> str:
        """``procedure.volume_ml = 4, placement.offset_mm = [2, 0, 0]`` (for messages)."""
        return ", ".join(f"{name} = {json.dumps(value, default=str)}" for name, value in self.values().items()) or "the base plan"


@dataclass(frozen=True)
class RandomRange:
    """One ``[random]`` field: values drawn uniformly in [low, high] (per component for a vector);
    whole numbers when both bounds are whole numbers."""

    field: str
    low: float | tuple[float, ...]
    high: float | tuple[float, ...]

    @property
    def whole(self) -> bool:
        return all(isinstance(v, int) for v in _components(self.low) + _components(self.high))

    def draw(self, rng: np.random.Generator):
        low, high = np.asarray(_components(self.low)), np.asarray(_components(self.high))
        if self.whole:
            values = [int(v) for v in rng.integers(low, high, endpoint=True)]
        else:
            values = [float(f"{v:.{RANDOM_DIGITS}g}") for v in rng.uniform(low, high)]
        return tuple(values) if isinstance(self.low, tuple) else values[0]


def _components(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file: the base plan, the grid, the random draws, and every point."""

    path: Path
    base: Path
    base_text: str
    grid: tuple[tuple[str, tuple], ...]
    random_ranges: tuple[RandomRange, ...]
    random_seed: int | None
    random_count: int
    monte_carlo: int
    points: tuple[SweepPoint, ...]

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def fields(self) -> tuple[str, ...]:
        """The varied plan fields: the grid's, then the random ones (one results column each)."""
        return tuple(name for name, _ in self.grid) + tuple(r.field for r in self.random_ranges)

    @property
    def default_out_dir(self) -> Path:
        """``<sweep file stem>-results`` beside the sweep file."""
        return self.path.with_name(f"{self.stem}-results")

    @property
    def fixed_overrides(self) -> tuple[str, ...]:
        """``--set`` texts every point shares (the Monte Carlo samples)."""
        return (f"uncertainty.samples={self.monte_carlo}",) if self.monte_carlo else ()

    def set_args(self, overrides: tuple[tuple[str, object], ...]) -> list[str]:
        """A point's overrides (and the Monte Carlo setting) as ``simulate --set`` takes them."""
        return [f"{name}={toml_value(value)}" for name, value in overrides] + list(self.fixed_overrides)


def point_key(base_text: str, set_args: list[str], version: str = __version__) -> str:
    """The first 16 hex digits of SHA-256 over the base plan text, the overrides and the version."""
    canonical = json.dumps({"base": base_text, "set": set_args, "version": version}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def load_sweep(path: str | Path) -> Sweep:
    """Read, expand and validate a sweep file: every point's plan is loaded and prepared (raises
    one-line ValidationErrors naming the key, or the point and its field)."""
    path = Path(path).absolute()
    data = _read_toml(path)
    check_toml_integers(data, "sweep")
    unknown = [k for k in data if k not in SWEEP_KEYS]
    if unknown:
        raise ValidationError(f"sweep file key {shown(unknown[0])}: unknown; allowed keys are {', '.join(SWEEP_KEYS)} (plan fields go in [vary] or [random])")
    base = _base_path(path, data.get("base"))
    monte_carlo = _whole_number("monte_carlo", data.get("monte_carlo", 0), 0, None)
    grid = _grid(data.get("vary", {}))
    random_ranges, seed, count = _random(data.get("random"))
    names = [name for name, _ in grid] + [r.field for r in random_ranges]
    if not names:
        raise ValidationError(f"sweep file = {str(path)!r}: nothing to vary; give [vary] (a list of values per plan field) or [random] (seed, count and [low, high] per field)")
    for name in names:
        if names.count(name) > 1:
            raise ValidationError(f"random.{_quoted(name)}: also in [vary]; vary a field in one table only")
        if name == "uncertainty.samples" and monte_carlo:
            raise ValidationError(f"monte_carlo = {monte_carlo}: sets uncertainty.samples, which the sweep also varies; use one or the other")
    size = math.prod(len(values) for _, values in grid) * (count if random_ranges else 1)
    if size > MAX_POINTS:
        raise ValidationError(f"sweep points = {size}: allowed at most {MAX_POINTS} (the grid's combinations times random.count)")
    base_text = base.read_text(encoding="utf-8")
    sweep = Sweep(path, base, base_text, grid, random_ranges, seed, count, monte_carlo, points=())
    return replace(sweep, points=_points(sweep))


def _read_toml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"sweep file = {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(f"sweep file = {str(path)!r}: cannot be read ({error.__class__.__name__})") from None
    try:
        return tomllib.loads(text)
    except (ValueError, RecursionError) as error:
        raise ValidationError(f"sweep file = {str(path)!r}: malformed TOML ({toml_problem(error)})") from None


def _base_path(sweep_path: Path, base) -> Path:
    if base is None:
        raise ValidationError(f"base = None: required; the base plan file, relative to the sweep file's folder ({str(sweep_path.parent)!r}) or absolute")
    if not isinstance(base, str) or not base:
        raise ValidationError(f'base = {base!r}: must be a plan file path (text), e.g. "plan.toml"')
    p = Path(base) if Path(base).is_absolute() else sweep_path.parent / base
    if not p.is_file():
        raise ValidationError(f"base = {base!r}: no such file {str(p)!r} (relative paths start at the sweep file's folder)")
    load_plan(p)  # the base plan itself must be valid
    return p


def _whole_number(name: str, value, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} = {value!r}: must be a whole number >= {low}" + (f" and <= {high}" if high is not None else ""))
    check_range(name, value, low, high)
    return value


def _quoted(name) -> str:
    return json.dumps(name) if isinstance(name, str) else repr(name)


def _check_field(table: str, name) -> None:
    """A plan field ``section.field`` (the names ``simulate --set`` accepts)."""
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
        raise ValidationError(f'{table}.{_quoted(name)}: must be a plan field section.field or needles[k].field, e.g. "procedure.volume_ml" (see `neurolysis methods`)')
    try:
        parse_override(f"{name}=0")
    except ValidationError as error:
        raise ValidationError(f"{table}.{_quoted(name)}: {str(error).split(': ', 1)[1]}") from None


def _grid(vary) -> tuple[tuple[str, tuple], ...]:
    if not isinstance(vary, dict):
        raise ValidationError(f"vary = {vary!r}: must be a table [vary] of plan fields, each with a list of values")
    grid = []
    for name, values in vary.items():
        _check_field("vary", name)
        where = f"vary.{_quoted(name)}"
        if not isinstance(values, list) or not values:
            raise ValidationError(f"{where} = {values!r}: must be a non-empty list of values, e.g. [2, 4, 6]")
        if len(values) > MAX_POINTS:
            raise ValidationError(f"{where}: {len(values)} values; allowed at most {MAX_POINTS}")
        seen = set()
        for value in values:
            if _has_table(value):
                raise ValidationError(f"{where} = {value!r}: each value must be a number, text, true/false or a list, not a table")
            canonical = json.dumps(value, default=str)  # TOML dates too (no plan field takes one: the point check says so)
            if canonical in seen:
                raise ValidationError(f"{where}: value {canonical} is listed twice; each value once")
            seen.add(canonical)
        grid.append((name, tuple(tuple(v) if isinstance(v, list) else v for v in values)))
    return tuple(grid)


def _has_table(value) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and any(_has_table(v) for v in value))


def _random(table) -> tuple[tuple[RandomRange, ...], int | None, int]:
    if table is None:
        return (), None, 0
    if not isinstance(table, dict):
        raise ValidationError(f"random = {table!r}: must be a table [random] with seed, count and [low, high] per plan field")
    for name in RANDOM_SETTINGS:
        if name not in table:
            raise ValidationError(f"random.{name} = None: required in [random] (seed: a whole number; count: how many draws)")
    seed = _whole_number("random.seed", table["seed"], 0, SEED_MAX)
    count = _whole_number("random.count", table["count"], 1, MAX_POINTS)
    ranges = tuple(_range(name, bounds) for name, bounds in table.items() if name not in RANDOM_SETTINGS)
    if not ranges:
        raise ValidationError('random: no field to draw; add "section.field" = [low, high], e.g. "procedure.concentration_pct" = [0.25, 0.75]')
    return ranges, seed, count


def _range(name, bounds) -> RandomRange:
    _check_field("random", name)
    where = f"random.{_quoted(name)}"
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ValidationError(f"{where} = {bounds!r}: must be [low, high] (numbers, or two lists of numbers for a vector field)")
    low, high = bounds
    vector = isinstance(low, list)
    lows, highs = (low, high) if vector else ([low], [high])
    if isinstance(high, list) != vector or len(lows) != len(highs) or not lows:
        raise ValidationError(f"{where} = {bounds!r}: low and high must both be numbers or lists of equal length")
    for i, (lo, hi) in enumerate(zip(lows, highs, strict=True)):
        part = f"{where}[{i}]" if vector else where
        check_range(f"{part} low", lo, -RANDOM_BOUND, RANDOM_BOUND)
        check_range(f"{part} high", hi, -RANDOM_BOUND, RANDOM_BOUND)
        if lo > hi or (lo == hi and not vector):
            raise ValidationError(f"{part} = [{lo}, {hi}]: low must be below high")
    return RandomRange(name, tuple(low), tuple(high)) if vector else RandomRange(name, low, high)


def _points(sweep: Sweep) -> tuple[SweepPoint, ...]:
    """Every point, validated: the grid (first field slowest), each crossed with every draw."""
    grid = [()]
    for name, values in sweep.grid:
        grid = [(*combo, (name, value)) for combo in grid for value in values]
    rng = np.random.default_rng(sweep.random_seed)
    draws = [tuple((r.field, r.draw(rng)) for r in sweep.random_ranges) for _ in range(sweep.random_count)] or [()]
    points = []
    for index, overrides in enumerate((*combo, *draw) for combo in grid for draw in draws):
        set_args = sweep.set_args(overrides)
        point = SweepPoint(index, overrides, point_key(sweep.base_text, set_args), plan_text="")
        try:
            plan = load_plan(sweep.base, set_args)
            prepare(plan)  # anatomy, target, placement and bone checked now, not on a worker
        except ValidationError as error:
            raise ValidationError(f"sweep point {index} ({point.describe()}): {error}") from None
        points.append(replace(point, plan_text=plan_toml(plan)))
    return tuple(points)
