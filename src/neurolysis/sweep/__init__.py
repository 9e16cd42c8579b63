"""Sweeps of a plan's fields on Dask (issue 12): a grid and random draws over a base plan, run on
a ``dask.distributed`` cluster, results to Parquet and optionally to the case store.

``load_sweep`` (the sweep file, validated) is light; ``neurolysis.sweep.run.run_sweep`` needs the
``sweep`` extra (dask[distributed], pyarrow) and imports it. See ``docs/sweep.md``.
"""

from neurolysis.sweep.spec import RandomRange, Sweep, SweepPoint, load_sweep

__all__ = ["RandomRange", "Sweep", "SweepPoint", "load_sweep"]
