"""Pre-injected fluid against published lesion sizes (``data/fluids.toml [validation]``, held out).

Each case compares the lesion's face area (pi / 4 x width x length: the "surface area" an ex vivo
study measures on the cut face) after ``fluid`` with the one after ``reference`` (another fluid
or none) in the one-tissue axisymmetric engine at the catalogued settings, and passes when the
ratio lies in the published band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from neurolysis._catalog import load_catalog
from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.validation import check_choice


@dataclass(frozen=True)
class FluidCase:
    id: str
    claim: str
    source: str
    area_ratio: float
    band: tuple[float, float]
    passed: bool
    lesions: dict  # fluid -> {width_mm, length_mm, area_mm2, mean_power_w, impedance_ohm_start}


@cache
def lesion_with(fluid: str | None) -> dict:
    """The catalogued validation lesion after ``fluid`` (None: no fluid)."""
    v = load_catalog("fluids")["validation"]["settings"]
    extra = {} if fluid is None else {"pre_injection": fluid, "pre_injection_ml": float(v["volume_ml"])}
    r = simulate_rf(RFSettings(tissue=v["tissue"], ex_vivo=True, gauge=int(v["gauge"]), tip_mm=float(v["tip_mm"]), set_temp_c=float(v["set_temp_c"]), time_s=float(v["time_s"]), **extra))
    w, length = r.lesion.width_mm, r.lesion.length_mm
    return {"width_mm": w, "length_mm": length, "area_mm2": math.pi / 4.0 * w * length, "mean_power_w": r.mean_power_w, "impedance_ohm_start": r.impedance_ohm_start}


def fluid_case_ids() -> list[str]:
    return [k for k in load_catalog("fluids")["validation"] if k != "settings"]


def fluid_case(case_id: str) -> FluidCase:
    check_choice("case", case_id, fluid_case_ids())
    c = load_catalog("fluids")["validation"][case_id]
    ref = None if c["reference"] == "none" else c["reference"]
    a, b = lesion_with(c["fluid"]), lesion_with(ref)
    ratio = a["area_mm2"] / b["area_mm2"]
    lo, hi = (float(x) for x in c["band"])
    return FluidCase(case_id, c["claim"], c["source"], ratio, (lo, hi), lo <= ratio <= hi, {c["fluid"]: a, c["reference"]: b})


__all__ = ["FluidCase", "fluid_case", "fluid_case_ids", "lesion_with"]
