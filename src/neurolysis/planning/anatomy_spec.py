"""The ``[anatomy]`` section of a plan: a template, a label map, or a patient's segmentation."""

from __future__ import annotations

from dataclasses import dataclass

from neurolysis.anatomy.templates import template_names
from neurolysis.tissue import tissue_ids
from neurolysis.validation import ValidationError, check_choice, shown

ANATOMY_SIDES = ("left", "right")


def _paths(name: str, value) -> str | tuple[str, ...] | None:
    """A path, or a list of paths (several label layers), as text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return value[0] if len(value) == 1 else tuple(value)
    raise ValidationError(f"anatomy.{name} = {value!r}: must be a file path (text) or a list of them, e.g. \"seg.nii.gz\"")


@dataclass(frozen=True)
class AnatomySpec:
    """A built-in template; a label map with its labels-to-tissue map and nerves file; or a
    patient's segmentation (``segmentation``: a label map or a TotalSegmentator folder, or a list
    of label layers), the ``names`` of its labels, an optional ``image`` (CT or MR: NIfTI, NRRD or
    a DICOM folder), the ``side`` of the target where it matters, and ``tissues`` (structure name ->
    tissue id) overriding the name rules. Plans on a segmentation are in its scanner coordinates."""

    template: str | None = "lumbar-medial-branch"
    labels: str | None = None
    labels_map: str | None = None
    nerves: str | None = None
    segmentation: str | tuple[str, ...] | None = None
    names: str | tuple[str, ...] | None = None
    image: str | None = None
    side: str | None = None
    tissues: dict | None = None

    def __post_init__(self) -> None:
        for name in ("labels", "labels_map", "nerves", "image"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"anatomy.{name} = {value!r}: must be a file path (text), e.g. \"case.nii.gz\"")
        object.__setattr__(self, "segmentation", _paths("segmentation", self.segmentation))
        object.__setattr__(self, "names", _paths("names", self.names))
        if self.side is not None:
            check_choice("anatomy.side", self.side, ANATOMY_SIDES)
        if self.tissues is not None:
            if not isinstance(self.tissues, dict):
                raise ValidationError(f"anatomy.tissues = {self.tissues!r}: must be a table of structure name = tissue id")
            for key, value in self.tissues.items():
                check_choice(f"anatomy.tissues.{shown(key)}", value, tissue_ids())
        if self.segmentation is not None:
            if self.labels is not None:
                raise ValidationError("anatomy.segmentation: give a segmentation or anatomy.labels (a label map with its labels_map), not both")
            object.__setattr__(self, "template", None)
        else:
            for name in ("names", "image", "side", "tissues"):
                if getattr(self, name) is not None:
                    raise ValidationError(f"anatomy.{name}: only used with anatomy.segmentation")
            if self.labels is not None:
                if self.labels_map is None:
                    raise ValidationError(f"anatomy.labels_map = None: required with anatomy.labels = {self.labels!r}")
                object.__setattr__(self, "template", None)
            elif self.template is None:
                raise ValidationError("anatomy.template = None: give a template (see `neurolysis templates`), anatomy.segmentation or anatomy.labels")
            else:
                check_choice("anatomy.template", self.template, template_names())
