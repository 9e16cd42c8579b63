"""The excised segment of a surgical neurectomy (geometry only)."""

import numpy as np
import pytest

from neurolysis.anatomy.scene import FibreClass, Nerve
from neurolysis.engines.surgical import plan_excision
from neurolysis.outcome.axons import nerve_outcome
from neurolysis.validation import ValidationError

MM = 1e-3
NERVE = Nerve(
    "test nerve", np.array([[0, 0, 0], [0, 0, 20 * MM], [0, 10 * MM, 40 * MM]]), 0.6 * MM,
    (FibreClass("A-alpha", "motor", 12, 0.3, True), FibreClass("C", "pain", 1, 0.7, False)), 0.02, kind="mixed",
)  # fmt: skip


def test_segment_is_centred_on_the_site_and_cuts_only_the_nerve_tube():
    cut = plan_excision(NERVE, np.array([2 * MM, 0, 10 * MM]), 6 * MM)
    assert cut.start_m == pytest.approx(7 * MM, abs=0.05 * MM)
    assert cut.end_m == pytest.approx(13 * MM, abs=0.05 * MM)
    inside = np.array([[0, 0, 10 * MM], [0.5 * MM, 0, 8 * MM], [0, 0.55 * MM, 12.5 * MM]])
    outside = np.array([[0, 0, 14 * MM], [0, 0, 6 * MM], [1.0 * MM, 0, 10 * MM], [0, 0, 30 * MM]])
    assert cut.sample(inside).lethal.all()
    assert not cut.sample(outside).lethal.any()


def test_every_axon_dies_and_the_lesioned_length_is_the_segment():
    cut = plan_excision(NERVE, np.array([0, 0, 10 * MM]), 6 * MM)
    out = nerve_outcome(NERVE, cut.sample, "surgical", n_axons=500)
    assert out.pain_fibres_killed_fraction == 1.0 and out.motor_fibres_killed_fraction == 1.0
    assert out.lesioned_length_mm == pytest.approx(6.0, abs=0.2)
    assert out.motor_deficit and "MOTOR DEFICIT" in out.motor_deficit_note


def test_gap_length_does_not_set_relief_recurrence_does():
    """Grade 5 with a managed stump: nothing reconnects, whatever the gap; pain returns only
    through the catalogued recurrence (neuroma, sprouting), the same for every segment length."""
    outs = [nerve_outcome(NERVE, plan_excision(NERVE, np.array([0, 0, 20 * MM]), seg_mm * MM).sample, "surgical", n_axons=300) for seg_mm in (4, 8, 16)]
    assert len({o.relief.median for o in outs}) == 1
    assert all(o.injury_grades == {"sunderland-5": 1.0} and o.relief.mechanism == "recurrence" for o in outs)
    rec = outs[0].relief.detail
    assert 0 < rec["recurrence_probability"] < 0.2 and 0.8 < rec["relieved_share_at_months"]["12"] < 1.0


def test_window_is_clipped_at_the_nerve_end_and_reported():
    cut = plan_excision(NERVE, np.array([0, 0, 1 * MM]), 10 * MM)
    assert cut.clipped and cut.start_m == 0.0
    assert cut.removed_length_m == pytest.approx(6 * MM, abs=0.05 * MM)
    assert cut.to_dict()["clipped_at_nerve_end"] is True


@pytest.mark.parametrize("segment_m", [0.0, -1e-3, 0.5])
def test_bad_segment_is_refused(segment_m):
    with pytest.raises(ValidationError, match="procedure.segment_mm"):
        plan_excision(NERVE, np.zeros(3), segment_m)
