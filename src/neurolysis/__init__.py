"""Neurolysis Planner: simulation of nerve ablation for pain (research and education only).

The public API::

    from neurolysis import load_plan, new_plan, simulate
    outcome = simulate(new_plan("lumbar-medial-branch"))          # or load_plan("plan.toml")
    print(outcome.target.pain_block, outcome.target.relief_months)

    from neurolysis import RFSettings, simulate_rf                 # one needle in one tissue
    result = simulate_rf(RFSettings(gauge=18, tip_mm=10, set_temp_c=80, time_s=90))
    print(result.lesion.width_mm, result.lesion.length_mm)

    from neurolysis import compare_methods, optimize_plan, build_report, load_indication
    table = compare_methods("celiac-plexus")                      # every method at one target
    best = optimize_plan(new_plan("lumbar-medial-branch"))         # placement and settings under a risk limit
    html = build_report(outcome, comparison=table)                 # one self-contained HTML file

Everything in ``__all__`` is supported; the modules behind it (``neurolysis.engines``,
``neurolysis.methods``, ``neurolysis.outcome``, ...) stay importable for research use but
may change. Not a medical device: results are not for clinical decisions.
"""

import logging

from neurolysis.about import DISCLAIMER, __version__
from neurolysis.devices import Device, all_devices, generator
from neurolysis.engines.rf.engine2d import RFResult, simulate_rf
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.methods import method_names
from neurolysis.physics.lesion import LesionShape
from neurolysis.planning.plan import Plan, load_plan, new_plan, plan_toml
from neurolysis.planning.simulate import Outcome, prepare, simulate, solve
from neurolysis.tissue import Tissue, load_tissue, tissue_ids
from neurolysis.validation import ValidationError

__all__ = [
    "DISCLAIMER",
    "Device",
    "LesionShape",
    "Outcome",
    "Plan",
    "RFResult",
    "RFSettings",
    "Tissue",
    "ValidationError",
    "__version__",
    "all_devices",
    "build_report",
    "compare_methods",
    "load_indication",
    "optimize_plan",
    "generator",
    "load_plan",
    "load_tissue",
    "method_names",
    "new_plan",
    "plan_toml",
    "prepare",
    "simulate",
    "simulate_rf",
    "solve",
    "tissue_ids",
]

_LAZY = {"compare_methods": "neurolysis.compare", "optimize_plan": "neurolysis.optimize", "build_report": "neurolysis.report.html", "load_indication": "neurolysis.indications"}


def __getattr__(name: str):
    """The decision tools are imported on first use (they pull in SciPy's optimisers and Jinja2,
    which the command line does not need to start)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neurolysis' has no attribute {name!r}")


logging.getLogger(__name__).addHandler(logging.NullHandler())
