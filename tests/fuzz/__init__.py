import os

FUZZ_SCALE = float(os.environ.get("FUZZ_SCALE", "0.5"))
"""The share of each fuzz's full example count that a run makes: 0.5 in CI (the fuzzes are
derandomized: the same examples every run, so a larger count adds no new case from run to run);
``FUZZ_SCALE=1`` (or more) for a thorough run."""

