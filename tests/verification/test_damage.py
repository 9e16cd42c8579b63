"""Thermal damage integrals against closed forms and the catalogued parameter sets."""

import numpy as np
import pytest
from scipy.integrate import quad

from neurolysis.physics.damage import ArrheniusParameters, DamageAccumulator, arrhenius, cem43_rate_per_s

LIVER = ArrheniusParameters("liver", 7.39e39, 2.577e5)


@pytest.mark.parametrize(
    ("temp_c", "seconds"),
    # [DERIVED] t(Omega = 1) = 1 / (A exp(-Ea / R T)), shared/reference/literature.md table B1
    [(45.0, 277.0), (50.0, 61.0), (60.0, 3.4), (70.0, 0.23)],
)
def test_liver_time_to_lesion_matches_reference_table(temp_c, seconds):
    assert LIVER.time_to_threshold_s(temp_c) == pytest.approx(seconds, rel=0.02)


def test_constant_temperature_omega_is_rate_times_time():
    """At constant T the Arrhenius integral is exactly Omega = A exp(-Ea / RT) t."""
    temp = np.array([37.0, 50.0, 60.0])
    acc = DamageAccumulator(temp, LIVER)
    for _ in range(7):
        acc.advance(temp, 1.5)
    np.testing.assert_allclose(acc.omega, LIVER.rate(temp) * 10.5, rtol=1e-12)


def test_ramp_integral_converges_at_second_order():
    """A linear ramp 37 -> 70 C over 20 s against adaptive quadrature; trapezoid rule is O(dt^2)."""
    exact = quad(lambda t: float(LIVER.rate(37.0 + 33.0 * t / 20.0)), 0, 20, epsabs=0, epsrel=1e-12)[0]
    errors = []
    for steps in (20, 40, 80):
        acc = DamageAccumulator(np.array([37.0]), LIVER)
        for i in range(steps):
            acc.advance(np.array([37.0 + 33.0 * (i + 1) / steps]), 20.0 / steps)
        errors.append(abs(acc.omega[0] - exact))
    rate = np.polyfit(np.log([1 / 20, 1 / 40, 1 / 80]), np.log(errors), 1)[0]
    assert rate == pytest.approx(2.0, abs=0.1), f"observed rate: {rate:.2f}"


def test_cem43_definition():
    """CEM43 = t R^(43 - T): 60 min at 45 C is 240 equivalent minutes, 60 min at 41 C is 3.75."""
    acc = DamageAccumulator(np.array([45.0, 41.0, 43.0]), LIVER)
    acc.advance(np.array([45.0, 41.0, 43.0]), 3600.0)
    np.testing.assert_allclose(acc.cem43_min, [240.0, 3.75, 60.0], rtol=1e-12)
    assert cem43_rate_per_s(np.array([43.0]))[0] == pytest.approx(1 / 60)


def test_huge_frequency_factor_does_not_overflow():
    skin = ArrheniusParameters("skin", 3.1e98, 6.28e5)  # Henriques 1947: A far beyond float range of exp(ln A)
    assert np.isfinite(skin.rate(np.array([100.0, 37.0]))).all()


@pytest.mark.parametrize(("temp_c", "minutes"), [(43.0, 58.0), (44.0, 32.0), (45.0, 12.0)])
def test_nerve_set_reproduces_wondergem_exposures(temp_c, minutes):
    """The catalogued nerve fit returns the rat-sciatic exposures it was fitted to (Wondergem 1988,
    literature.md B2) within 15 % (three points, two parameters: the fit cannot be exact)."""
    assert arrhenius("nerve-wondergem").time_to_threshold_s(temp_c) / 60 == pytest.approx(minutes, rel=0.15)
