"""Stimulation thresholds against published threshold-distance data (``data/stimulation.toml
[[validation]]``, held out: nothing is fitted to them).

Each case puts the catalogued needle (``[validation_setup]``) in homogeneous tissue, pointing at a
straight nerve with its tip ``distance_mm`` from the nerve's surface, solves the stimulation field
with the RF engine and reads the motor threshold (mA) of the nerve's A-alpha fibres through the
sheath and the PyFibers table, as a plan does. A case passes when the published current lies
within ``band_factor`` (x or /) of the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.scene import FibreClass, Nerve
from neurolysis.engines.rf.engine3d import stimulation_field
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.engines.stimulation import nerve_threshold
from neurolysis.fields import NeedlePose
from neurolysis.validation import check_choice


@dataclass(frozen=True)
class ThresholdCase:
    id: str
    species: str
    distance_mm: float
    pulse_ms: float
    published_ma: float
    model_ma: float
    band_factor: float
    source: str

    @property
    def ratio(self) -> float:
        """Published over model."""
        return self.published_ma / self.model_ma

    @property
    def passed(self) -> bool:
        return 1.0 / self.band_factor <= self.ratio <= self.band_factor


def _setup() -> dict:
    return dict(load_catalog("stimulation")["validation_setup"])


def validation_nerve() -> Nerve:
    """A straight nerve along x through the origin, of the setup's radius, all A-alpha."""
    s = _setup()
    fibre = FibreClass(s["fibre_class"], "motor", float(s["fibre_diameter_um"]), 1.0, True)
    return Nerve("validation nerve", np.array([[-0.04, 0.0, 0.0], [0.04, 0.0, 0.0]]), float(s["nerve_radius_mm"]) * 1e-3, (fibre,), 0.0, kind="motor")


@cache
def motor_threshold_ma(distance_mm: float, pulse_ms: float) -> float:
    """The model's motor threshold (mA) with the tip ``distance_mm`` from the nerve's surface, the needle
    coming down perpendicular to it."""
    s = _setup()
    nerve = validation_nerve()
    tip = np.array([0.0, 0.0, nerve.radius_m + distance_mm * 1e-3 + 1e-5])
    pose = NeedlePose(tip, np.array([0.0, 0.0, -1.0]))
    settings = RFSettings(tissue=s["tissue"], gauge=int(s["gauge"]), tip_mm=float(s["tip_mm"]))
    field = stimulation_field(settings, pose)
    return nerve_threshold(field.potential, field.conductance_s, nerve, tip, "motor", pulse_ms).threshold_ma


def case_ids() -> list[str]:
    return [c["id"] for c in load_catalog("stimulation")["validation"]]


def threshold_case(case_id: str) -> ThresholdCase:
    check_choice("case", case_id, case_ids())
    c = next(c for c in load_catalog("stimulation")["validation"] if c["id"] == case_id)
    model = motor_threshold_ma(float(c["distance_mm"]), float(c["pulse_ms"]))
    return ThresholdCase(case_id, c["species"], float(c["distance_mm"]), float(c["pulse_ms"]), float(c["threshold_ma"]), model, float(c["band_factor"]), c["source"])


__all__ = ["ThresholdCase", "case_ids", "motor_threshold_ma", "threshold_case", "validation_nerve"]
