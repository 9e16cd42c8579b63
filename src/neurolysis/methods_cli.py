"""``neurolysis methods``: the methods a plan can name, with their ``[procedure]`` fields."""

from __future__ import annotations

import argparse
import json

from neurolysis.listing import add_arguments, listing
from neurolysis.methods import method_names, method_summary


def run(args: argparse.Namespace) -> int:
    """``neurolysis methods``: each method's [procedure] fields, defaults and choices."""
    summaries = [method_summary(name) for name in method_names()]
    rows = []
    for m in summaries:
        fields = ", ".join(f"{f} ({json.dumps(m['defaults'][f])})" if f in m["defaults"] else f for f in m["fields"])
        shown = fields if m["section"] != "rf" else "device settings: see `neurolysis devices`"
        rows.append((m["method"], m["description"], shown, "; ".join(f"{k}: {', '.join(v)}" for k, v in m["choices"].items())))
    return listing(args, {"methods": summaries}, rows, ("method", "what", "\\[procedure] fields (default)", "choices"))


__all__ = ["add_arguments", "run"]
