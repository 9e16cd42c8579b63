"""Neurolysis Planner: simulation of nerve ablation for pain (research and education only).

A short public API::

    from neurolysis import RFSettings, simulate_rf
    result = simulate_rf(RFSettings(gauge=18, tip_mm=10, set_temp_c=80, time_s=90))
    print(result.lesion.width_mm, result.lesion.length_mm)

Not a medical device: results are not for clinical decisions.
"""

import logging

from neurolysis.devices import Device, all_devices, generator
from neurolysis.lesion import LesionShape
from neurolysis.modalities.rf import DISCLAIMER, RFResult, RFSettings, simulate_rf
from neurolysis.tissue import Tissue, load_tissue, tissue_ids
from neurolysis.validation import ValidationError

__version__ = "0.1.0"
__all__ = [
    "DISCLAIMER",
    "Device",
    "LesionShape",
    "RFResult",
    "RFSettings",
    "Tissue",
    "ValidationError",
    "all_devices",
    "generator",
    "load_tissue",
    "simulate_rf",
    "tissue_ids",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
