"""A patient's own anatomy: segmentations and images as users have them, names to tissues by
rules, target nerves placed from segmented landmarks (docs/models/anatomy.md, section 7).

- :mod:`.readers` reads label maps (NIfTI, NRRD, ``.seg.nrrd``, TotalSegmentator folders) and
  images (NIfTI, NRRD, DICOM series) with SimpleITK; :mod:`.volume` holds grids and frames;
- :mod:`.names` and :mod:`.rules` name the labels and map names to tissues;
- :mod:`.landmarks` places target nerves from landmarks; :mod:`.scene` builds the Scene.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from neurolysis.validation import ValidationError

from ..scene import Scene

SCENE_CACHE_SIZE = 8


def _fingerprint(path: Path) -> tuple:
    """What identifies a file's (or a folder's files') content cheaply: paths, sizes, modification times."""
    try:
        if path.is_dir():
            return (str(path.resolve()), tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.iterdir()) if p.is_file()))
        stat = path.stat()
        return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        return (str(path), None)


def _as_tuple(value) -> tuple:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def segmentation_scene(segmentation: str | Sequence[str], names: str | Sequence[str] | None, image: str | None, side: str | None, target: str | tuple[str, ...] | None,
                       tissues: Mapping[str, str] | None = None, base_dir: str | Path | None = None) -> Scene:  # fmt: skip
    """The scene of a plan on a segmentation (read, classified, its target or targets placed; module
    docstring), cached on the files' identity so that a cohort, a comparison or a search reads them once."""
    base = Path(base_dir) if base_dir is not None else Path(".")
    resolved = [str((base / p).absolute()) for p in _as_tuple(segmentation)]  # absolute: load_anatomy joins a relative path to base again
    image_path = None if image is None else str((base / image).absolute())
    key = (tuple(_fingerprint(Path(p)) for p in resolved), _as_tuple(names), None if image_path is None else _fingerprint(Path(image_path)),
           side, target, tuple(sorted((tissues or {}).items())), str(base.resolve()))  # fmt: skip
    return _cached_scene(key, tuple(resolved), _as_tuple(names), image_path, side, target, tuple(sorted((tissues or {}).items())), str(base))


@lru_cache(maxsize=SCENE_CACHE_SIZE)
def _cached_scene(key, segmentation, names, image, side, target, tissues, base) -> Scene:
    from .load import load_anatomy
    from .scene import scene_from_anatomy

    if not segmentation:
        raise ValidationError("anatomy.segmentation = None: a label map or a TotalSegmentator folder is required")
    anatomy = load_anatomy(list(segmentation), list(names) if names else None, image, dict(tissues), base)
    return scene_from_anatomy(anatomy, target, side, name=Path(segmentation[0]).name)


__all__ = ["segmentation_scene"]
