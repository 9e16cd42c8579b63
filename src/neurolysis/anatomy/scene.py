"""The anatomy a plan is simulated in: tissue regions, nerves and critical structures.

Coordinates are metres in the anatomy frame (documented per template in
``docs/models/anatomy.md``); users give millimetres at the edge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..fields import NeedlePose

APPROACHES = ("parallel", "perpendicular")
SPINAL_LEVEL = re.compile(r"^(?:C|T|L|S)\d{1,2} ")
"""A leading spinal level ("L3 ", "T10 ") in a nerve's name: a plan on a patient's scan names the
level (``L3 medial branch``, ``T10 intercostal nerve``) where the catalogs name the nerve once."""


def without_level(nerve_name: str) -> str:
    """``nerve_name`` without a leading spinal level (``T10 intercostal nerve`` -> ``intercostal nerve``)."""
    return SPINAL_LEVEL.sub("", nerve_name)
FIBRE_ROLES = ("motor", "touch", "pain")


@dataclass(frozen=True)
class FibreClass:
    """One class of axons in a nerve: A-alpha (motor), A-beta (touch), A-delta and C (pain)."""

    name: str
    role: str  # one of FIBRE_ROLES
    diameter_um: float
    fraction: float  # share of the nerve's axon count, 0..1
    myelinated: bool


@dataclass(frozen=True, eq=False)
class Nerve:
    """A nerve as a centerline (m, proximal -> distal) with a round cross-section.

    ``end_organ_m`` is the path length from the distal end of the centerline to the
    structure the nerve serves (facet capsule, joint capsule, skin): regrowth has to
    cover it before pain returns.
    """

    name: str
    centerline_m: np.ndarray  # (n, 3)
    radius_m: float
    fibres: tuple[FibreClass, ...]
    end_organ_m: float
    kind: str = "sensory"  # sensory | mixed | motor | plexus
    source: str = ""

    def __post_init__(self) -> None:
        line = np.asarray(self.centerline_m, dtype=float)
        if line.ndim != 2 or line.shape[1] != 3 or line.shape[0] < 2:
            raise ValueError(f"nerve {self.name!r}: centerline must be at least 2 points of (x, y, z)")
        object.__setattr__(self, "centerline_m", line)

    @property
    def length_m(self) -> float:
        return float(np.linalg.norm(np.diff(self.centerline_m, axis=0), axis=1).sum())


@dataclass(frozen=True)
class CriticalStructure:
    """A structure whose injury is a complication.

    It is either a set of scene regions (``regions``) or a nerve of the scene (``nerve``).
    ``kind`` selects the injury thresholds (``data/risk.toml``): spinal-cord, motor-nerve,
    artery, skin, pleura, dura, ...
    """

    name: str
    kind: str
    regions: tuple[str, ...] = ()
    nerve: str | None = None


@dataclass(frozen=True, eq=False)
class Scene:
    """Labelled anatomy.

    ``label_at(points_m) -> int array`` gives the region index of each point (index into
    ``region_names`` / ``region_tissue``); points outside ``bounds_m`` get the
    ``background`` region. ``placements[(nerve, approach)]`` is the recommended needle
    pose for that target; ``targets`` lists every nerve with placements (the default
    ``target`` first) and ``frame`` says what the axes and origin are.
    """

    name: str
    description: str
    bounds_m: tuple[np.ndarray, np.ndarray]
    region_names: tuple[str, ...]
    region_tissue: tuple[str, ...]
    label_at: Callable[[np.ndarray], np.ndarray]
    nerves: tuple[Nerve, ...]
    critical: tuple[CriticalStructure, ...]
    target: str
    placements: Mapping[tuple[str, str], NeedlePose] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    targets: tuple[str, ...] = ()  # every nerve the anatomy is meant to treat; () -> (target,)
    frame: str = ""  # the anatomy frame: axes and origin
    convention: str | None = None  # "RAS" | "LPS": a scan's scanner coordinates (None: a template's own frame)
    image_at: Callable[[np.ndarray], np.ndarray] | None = None  # the scan's intensity (HU for CT) at points (n, 3) m
    image_modality: str | None = None
    landmarks: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)  # points a landmark rule used (mm)
    procedure_template: str | None = None  # the template of the same procedure (method defaults, compare, indications)
    landmark_rule: str | None = None
    files_sha256: Mapping[str, str] = field(default_factory=dict)  # a scan's files: path -> sha256
    warnings: tuple[str, ...] = ()  # what reading the anatomy found (unmapped names, a region cut out of a large scan)

    def __post_init__(self) -> None:
        if not self.targets:
            object.__setattr__(self, "targets", (self.target,))

    def region_index(self, name: str) -> int:
        """Index of region ``name`` in ``region_names`` (KeyError if absent)."""
        try:
            return self.region_names.index(name)
        except ValueError:
            raise KeyError(name) from None

    def regions_of_tissue(self, tissue_id: str) -> tuple[int, ...]:
        """Indices of the regions made of ``tissue_id``."""
        return tuple(i for i, t in enumerate(self.region_tissue) if t == tissue_id)

    def nerve(self, name: str) -> Nerve:
        for n in self.nerves:
            if n.name == name:
                return n
        raise KeyError(name)
