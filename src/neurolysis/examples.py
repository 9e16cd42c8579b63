"""Canonical example cases, used as CLI defaults, in docs, tests and benchmarks."""

from neurolysis.engines.rf.settings import RFSettings


def conventional_rf() -> RFSettings:
    """The default lesion: 18 G cannula, 10 mm active tip, 80 C for 90 s in perfused muscle
    (a lumbar medial-branch setting: MacVicar 2013 technique, Provenzano 2010 cannula)."""
    return RFSettings(mode="conventional", gauge=18, tip_mm=10.0, set_temp_c=80.0, time_s=90.0, tissue="muscle")


def cooled_rf() -> RFSettings:
    """Internally water-cooled 17 G probe with a 4 mm tip at 60 C for 150 s."""
    return RFSettings(mode="cooled", gauge=17, tip_mm=4.0, set_temp_c=60.0, time_s=150.0, tissue="muscle")


def pulsed_rf() -> RFSettings:
    """Pulsed RF: 22 G, 5 mm tip, 2 Hz x 20 ms pulses at 45 V for 120 s, 42 C limit."""
    return RFSettings(mode="pulsed", gauge=22, tip_mm=5.0, time_s=120.0, pulse_voltage_v=45.0, tissue="muscle")


def ex_vivo_chicken() -> RFSettings:
    """A bench experiment: 20 G, 10 mm tip, 80 C for 90 s in chicken breast at 21 C."""
    return RFSettings(gauge=20, tip_mm=10.0, set_temp_c=80.0, time_s=90.0, tissue="chicken-breast", ex_vivo=True, initial_temp_c=21.0)
