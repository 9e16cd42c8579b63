"""The bipolar strip reading (joined, gap, strip width and length) against exact answers: Omega
given as two lethal cylinders of radius R around the needle axes, whose strip is known in closed
form (no physics involved), and the settings' electrodes field with its errors."""

import numpy as np
import pytest

from neurolysis.engines.rf.engine3d import STRIP_STEP_M, bipolar_strip
from neurolysis.engines.rf.settings import RFSettings, needle_geometry
from neurolysis.physics.mesh3d import Mesh3DSpec, build_needle_mesh3d
from neurolysis.validation import ValidationError

SPEC = Mesh3DSpec(h_fine_m=0.5e-3, sectors=8, fine_margin_m=8e-3, domain_m=15e-3)
TOLERANCE_MM = 0.6  # linear interpolation of a step field on the 0.5 mm mesh, plus the sampling step


def _cylinders(spacing_mm: float, radius_mm: float):
    geometry = needle_geometry(RFSettings(gauge=20, tip_mm=10.0).resolved())
    m = build_needle_mesh3d(geometry, SPEC, spacing_mm * 1e-3)
    x, y = m.nodes[:, 0], m.nodes[:, 1]
    near = np.minimum(np.hypot(x, y), np.hypot(x - spacing_mm * 1e-3, y)) <= radius_mm * 1e-3
    return bipolar_strip(m, np.where(near, 2.0, 0.0), geometry)


@pytest.mark.parametrize("spacing_mm, radius_mm", [(6.0, 4.0), (8.0, 4.5), (10.0, 6.0)])
def test_overlapping_cylinders_join_with_their_waist(spacing_mm, radius_mm):
    strip = _cylinders(spacing_mm, radius_mm)
    assert strip.joined and strip.gap_mm == 0.0 and strip.spacing_mm == pytest.approx(spacing_mm)
    assert strip.strip_length_mm == pytest.approx(spacing_mm + 2 * radius_mm, abs=TOLERANCE_MM)
    waist = 2 * np.sqrt(radius_mm**2 - (spacing_mm / 2) ** 2)  # the two circles' common chord
    assert strip.strip_width_mm == pytest.approx(waist, abs=TOLERANCE_MM)


@pytest.mark.parametrize("spacing_mm, radius_mm", [(8.0, 3.0), (12.0, 4.0)])
def test_separate_cylinders_leave_the_gap_between_them(spacing_mm, radius_mm):
    strip = _cylinders(spacing_mm, radius_mm)
    assert not strip.joined and strip.strip_width_mm == 0.0
    assert strip.gap_mm == pytest.approx(spacing_mm - 2 * radius_mm, abs=TOLERANCE_MM)
    assert strip.strip_length_mm == pytest.approx(spacing_mm + 2 * radius_mm, abs=TOLERANCE_MM)
    assert STRIP_STEP_M * 1e3 < TOLERANCE_MM


def test_electrodes_field_names_value_and_choices():
    assert RFSettings().electrodes == "monopolar"
    with pytest.raises(ValidationError, match=r"electrodes = 'tripolar': allowed values are 'monopolar', 'bipolar'"):
        RFSettings(electrodes="tripolar")
    with pytest.raises(ValidationError, match=r"electrodes = 'bipolar': modelled for conventional RF only \(mode = 'cooled'\)"):
        RFSettings(mode="cooled", electrodes="bipolar")


def test_the_axisymmetric_engine_refuses_a_pair():
    from neurolysis.engines.rf.engine2d import simulate_rf

    with pytest.raises(ValidationError, match="axisymmetric engine holds one needle"):
        simulate_rf(RFSettings(electrodes="bipolar"))
