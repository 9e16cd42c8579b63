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
    "generator",
    "load_indication",
    "load_plan",
    "load_tissue",
    "method_names",
    "new_plan",
    "optimize_plan",
    "plan_toml",
    "prepare",
    "simulate",
    "simulate_rf",
    "solve",
    "tissue_ids",
]

_LAZY = {
    "Device": "neurolysis.devices", "all_devices": "neurolysis.devices", "generator": "neurolysis.devices",
    "RFResult": "neurolysis.engines.rf.engine2d", "simulate_rf": "neurolysis.engines.rf.engine2d",
    "RFSettings": "neurolysis.engines.rf.settings", "method_names": "neurolysis.methods", "LesionShape": "neurolysis.physics.lesion",
    "Plan": "neurolysis.planning.plan", "load_plan": "neurolysis.planning.plan", "new_plan": "neurolysis.planning.plan", "plan_toml": "neurolysis.planning.plan",
    "Outcome": "neurolysis.planning.simulate", "prepare": "neurolysis.planning.simulate", "simulate": "neurolysis.planning.simulate", "solve": "neurolysis.planning.simulate",
    "Tissue": "neurolysis.tissue", "load_tissue": "neurolysis.tissue", "tissue_ids": "neurolysis.tissue",
    "compare_methods": "neurolysis.compare", "optimize_plan": "neurolysis.optimize", "build_report": "neurolysis.report.html", "load_indication": "neurolysis.indications",
}  # fmt: skip


def __getattr__(name: str):
    """The public names are imported on first use (PEP 562): ``import neurolysis`` (and so the
    command line's start) pulls in no NumPy, SciPy or solver until something asks for them."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neurolysis' has no attribute {name!r}")


logging.getLogger(__name__).addHandler(logging.NullHandler())
