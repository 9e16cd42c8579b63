"""Parametric anatomy templates, read from ``data/templates/<name>.toml``.

A template lists regions (name -> tissue id), shapes painted into them in priority order
(a later shape wins), nerves (centerline, radius, fibre composition, end organ), critical
structures and placement hints. Nerves are painted last, each as its own region of
tissue ``nerve``. Points outside the bounds get region 0, ``background``.
See ``docs/models/anatomy.md`` for the frames, dimensions and their sources.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from types import MappingProxyType

import numpy as np

from neurolysis.validation import ValidationError, check_choice

from ._build import MM, build_placements, check_tissue, critical_from_spec, nerve_from_spec, paint_nerve_regions, resolve_targets
from .primitives import in_box, paint, shape_from_spec
from .scene import APPROACHES, Scene

BACKGROUND = "background"


def _template_dir():
    return files("neurolysis").joinpath("data", "templates")


def template_names() -> tuple[str, ...]:
    """Names of the packaged templates (``data/templates/*.toml``), sorted."""
    return tuple(sorted(p.name[: -len(".toml")] for p in _template_dir().iterdir() if p.name.endswith(".toml")))


@cache
def _raw(name: str) -> dict:
    check_choice("anatomy.template", name, template_names())
    return tomllib.loads(_template_dir().joinpath(f"{name}.toml").read_text(encoding="utf-8"))


def _bounds(raw: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(raw.get("bounds_mm"), dtype=float)
    if b.shape != (2, 3) or not np.all(np.isfinite(b)) or np.any(b[1] <= b[0]):
        raise ValidationError(f"{where}.bounds_mm = {raw.get('bounds_mm')!r}: must be [[xmin, ymin, zmin], [xmax, ymax, zmax]] mm")
    return b[0] * MM, b[1] * MM


def scene_from_table(raw: dict, where: str) -> Scene:
    """A scene from a parsed template table (the format of ``data/templates/*.toml``)."""
    lo, hi = _bounds(raw, where)
    regions = raw.get("regions", {})
    names = [BACKGROUND] + list(regions)
    tissues = [check_tissue(f"{where}.background_tissue", raw.get("background_tissue", "muscle"))]
    tissues += [check_tissue(f"{where}.regions.{r}.tissue", spec.get("tissue")) for r, spec in regions.items()]
    fill = raw.get("fill")
    check_choice(f"{where}.fill", fill, list(regions))
    layers = []
    sources = {f"region {r}": spec["source"] for r, spec in regions.items() if spec.get("source")}
    for i, p in enumerate(raw.get("paint", ())):
        w = f"{where}.paint[{i}]"
        check_choice(f"{w}.region", p.get("region"), list(regions))
        layers.append((names.index(p["region"]), shape_from_spec(p, w)))
        if p.get("source"):
            sources[f"{p['region']} #{i}"] = p["source"]
    nerves = tuple(nerve_from_spec(n, f"{where}.nerve[{i}]") for i, n in enumerate(raw.get("nerve", ())))
    paint_nerve_regions(nerves, names, tissues, layers, lambda name: f"{where}.nerve ({name}): the name is already a region")
    sources.update({f"nerve {n.name}": n.source for n in nerves if n.source})
    nerve_names = [n.name for n in nerves]
    critical = tuple(critical_from_spec(c, f"{where}.critical[{i}]", names, nerve_names) for i, c in enumerate(raw.get("critical", ())))
    targets, target = resolve_targets(raw, nerve_names, where)
    sources.update(raw.get("sources", {}))
    fill_index = names.index(fill)
    layers = tuple(layers)

    def label_at(points_m: np.ndarray) -> np.ndarray:
        """Region index of each point (n, 3) m; 0 (background) outside the bounds."""
        pts = np.asarray(points_m, dtype=float).reshape(-1, 3)
        inside = in_box(pts, lo, hi)
        out = np.zeros(len(pts), dtype=np.int32)
        if inside.all():
            return paint(pts, fill_index, layers)
        idx = np.flatnonzero(inside)
        out[idx] = paint(pts[idx], fill_index, layers)
        return out

    blocked = [i for i, t in enumerate(tissues) if t == "bone"]
    avoid = sorted({names.index(r) for c in critical for r in c.regions})
    placements = build_placements(raw.get("placement", ()), nerves, targets, label_at, (lo, hi), blocked, avoid, f"{where}.placement")
    return Scene(
        name=str(raw.get("name", where)),
        description=str(raw.get("description", "")),
        bounds_m=(lo, hi),
        region_names=tuple(names),
        region_tissue=tuple(tissues),
        label_at=label_at,
        nerves=nerves,
        critical=critical,
        target=target,
        placements=placements,
        sources=MappingProxyType(sources),
        targets=targets,
        frame=str(raw.get("frame", "")),
    )


@cache
def template_procedure_defaults(name: str, method: str) -> dict:
    """``[procedure_defaults.<method>]`` of a template: settings that suit its target better
    than the generic defaults (written by ``plan new``; its ``source`` is dropped)."""
    entry = _raw(name).get("procedure_defaults", {}).get(method, {})
    return {k: v for k, v in entry.items() if k != "source"}


def template_session_targets(name: str) -> tuple[str, ...]:
    """``session_targets`` of a template: the nerves one session treats, which ``plan new`` writes
    when no ``--target`` is given (default: every target; the cervical template holds five targets,
    a session treats the two nerves of one joint)."""
    scene = load_template(name)
    chosen = tuple(_raw(name).get("session_targets", ())) or scene.targets
    for nerve in chosen:
        check_choice(f"template {name!r}.session_targets", nerve, scene.targets)
    return chosen


def load_template(name: str) -> Scene:
    """The packaged template ``name`` as a scene (see ``neurolysis templates``)."""
    return scene_from_table(_raw(name), f"template {name!r}")


def template_summary(name: str) -> dict:
    """What ``neurolysis templates --json`` shows for one template."""
    scene = load_template(name)
    lo, hi = scene.bounds_m
    return {
        "name": name,
        "description": scene.description,
        "targets": list(scene.targets),
        "default_target": scene.target,
        "critical": [{"name": c.name, "kind": c.kind} for c in scene.critical],
        "approaches": [a for a in APPROACHES if any((t, a) in scene.placements for t in scene.targets)],
        "bounds_mm": [[round(float(v) * 1e3, 3) for v in lo], [round(float(v) * 1e3, 3) for v in hi]],
        "frame": scene.frame,
    }
