"""Several needles in one plan: ``[[needles]]``, one table per lesion.

```toml
[[needles]]
target = "superomedial genicular nerve"
approach = "parallel"            # parallel | perpendicular | explicit (then tip_mm, direction)
offset_mm = [0, 0, 0]
time_s = 120                     # any [procedure] field of the plan's method: this lesion only
```

``tip_mm`` in a needle's table is where its tip goes (explicit placement, as in ``[placement]``);
the RF electrode's active tip length is ``[procedure] tip_mm`` for every needle.

The single ``[target]`` + ``[placement]`` form stays valid: it is a plan with one needle. With
``[[needles]]`` the ``[placement]`` section is left out and ``[target] nerve``, if given, is the
first needle's target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from neurolysis.validation import ValidationError, shown

MAX_NEEDLES = 12
"""Most lesions in one plan (an extended genicular protocol treats 5-6 nerves; a sacroiliac strip
of bipolar pairs 6-8 lesions)."""
PLACEMENT_KEYS = ("approach", "offset_mm", "tip_mm", "direction")


@dataclass(frozen=True)
class NeedleSpec:
    """One lesion: its ``target`` nerve, the needle's placement (as ``[placement]``) and the
    ``[procedure]`` ``settings`` it overrides for this lesion (user units)."""

    target: str
    placement: object  # PlacementSpec
    settings: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    def as_dict(self) -> dict:
        p = {k: (list(v) if isinstance(v, tuple) else v) for k in PLACEMENT_KEYS if (v := getattr(self.placement, k)) is not None}
        return {"target": self.target} | p | {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.settings.items()}


def needles_from_list(value, procedure, placement_cls, procedure_fields: tuple[str, ...]) -> tuple[NeedleSpec, ...]:
    """``[[needles]]`` tables as :class:`NeedleSpec` (each placement and override checked, one-line errors)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise ValidationError(f"needles = {shown(str(value)[:60])}: must be one or more [[needles]] tables")
    if len(value) > MAX_NEEDLES:
        raise ValidationError(f"needles: {len(value)} tables; at most {MAX_NEEDLES} needles in one plan")
    out = []
    for i, table in enumerate(value):
        where = f"needles[{i}]"
        target = table.get("target")
        if not isinstance(target, str) or not target.strip():
            raise ValidationError(f"{where}.target = {target!r}: must name the nerve this needle treats")
        own = set(procedure_fields) - {"method"}
        for key in table:
            if key != "target" and key not in PLACEMENT_KEYS and key not in own:
                raise ValidationError(f"{where}.{shown(key)}: unknown field; allowed are target, {', '.join(PLACEMENT_KEYS)} and the [procedure] fields of the plan's method")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items() if k in PLACEMENT_KEYS}
        try:
            placement = placement_cls(**kwargs)
        except ValidationError as error:
            raise ValidationError(f"{where}.{str(error).removeprefix('placement.')}") from None
        settings = {k: v for k, v in table.items() if k in own and k not in PLACEMENT_KEYS}
        if settings:
            try:
                replace(procedure, **{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
            except ValidationError as error:
                raise ValidationError(f"{where}.{str(error).removeprefix('procedure.')}") from None
        out.append(NeedleSpec(target, placement, MappingProxyType(settings)))
    return tuple(out)


__all__ = ["MAX_NEEDLES", "NeedleSpec", "needles_from_list"]
