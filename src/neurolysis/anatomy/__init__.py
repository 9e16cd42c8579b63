"""Anatomy: scenes (tissue regions, nerves, critical structures), templates and label-map import.

``load_template(name)`` gives a built-in parametric scene (``template_names()``);
``load_label_map(labels, labels_map, nerves)`` imports a segmented NIfTI volume;
``recommended_pose`` derives the parallel / perpendicular needle pose from a nerve.
"""

from .placement import recommended_pose
from .scene import APPROACHES, CriticalStructure, FibreClass, Nerve, Scene
from .templates import load_template, template_names, template_summary


def __getattr__(name: str):
    """``load_label_map`` is imported on first use: it needs nibabel, which a template does not."""
    if name == "load_label_map":
        from .labelmap import load_label_map

        return load_label_map
    raise AttributeError(f"module 'neurolysis.anatomy' has no attribute {name!r}")


__all__ = [
    "APPROACHES",
    "CriticalStructure",
    "FibreClass",
    "Nerve",
    "Scene",
    "load_label_map",
    "load_template",
    "recommended_pose",
    "template_names",
    "template_summary",
]
