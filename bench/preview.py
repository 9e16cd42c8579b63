"""The instant lesion (issue 20, part 1): preview latency while a needle is dragged, against the
full solve of the same plan in the same process, and the preview's lesion against the 3D one.

Goal: POST /api/preview <= 50 ms at the 95th percentile. Measures the Python call (the answer) and
the HTTP endpoint in process (FastAPI TestClient: parsing, checks, the answer, JSON).

    .venv/bin/python bench/preview.py [--moves 200] [--json]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from neurolysis.planning.plan import new_plan, plan_from_dict  # noqa: E402
from neurolysis.planning.preview import preview  # noqa: E402
from neurolysis.planning.simulate import simulate  # noqa: E402
from neurolysis.validation import ValidationError  # noqa: E402


def _percentiles(ms: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2), "max_ms": round(float(np.max(ms)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--moves", type=int, default=200)
    ap.add_argument("--template", default="lumbar-medial-branch")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = new_plan(args.template, method="rf")
    base = plan_from_dict(base.as_dict() | {"needles": base.as_dict().get("needles", [])[:1]}) if base.needles else base
    rng = np.random.default_rng(0)
    offsets = rng.uniform(-3.0, 3.0, size=(args.moves, 3))
    plans = []
    for offset in offsets:
        data = base.as_dict()
        data["placement"]["offset_mm"] = [round(float(v), 2) for v in offset]
        plans.append(data)

    first = time.perf_counter()
    preview(plan_from_dict(plans[0]))
    first_ms = (time.perf_counter() - first) * 1e3  # builds the per-anatomy caches
    python_ms, answers, refused = [], [], 0
    for data in plans:
        started = time.perf_counter()
        try:
            answers.append(preview(plan_from_dict(data)))
        except ValidationError:  # a tip moved into bone: refused, as the planner refuses it (422)
            refused += 1
        python_ms.append((time.perf_counter() - started) * 1e3)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

        from neurolysis.web.app import create_app

        with tempfile.TemporaryDirectory() as folder, TestClient(create_app(os.path.join(folder, "cases.db"), workers=1)) as client:
            client.post("/api/preview", json={"plan": plans[0]})
            http_ms = []
            for data in plans:
                started = time.perf_counter()
                assert client.post("/api/preview", json={"plan": data}).status_code in (200, 422)
                http_ms.append((time.perf_counter() - started) * 1e3)

    started = time.perf_counter()
    full = simulate(base).to_dict()
    full_s = time.perf_counter() - started
    planned = preview(base)
    summary = {
        "template": args.template,
        "moves": args.moves,
        "first_call_ms": round(first_ms, 1),
        "python": _percentiles(python_ms),
        "http": _percentiles(http_ms),
        "full_solve_s": round(full_s, 2),
        "p95_http_over_full": round(float(np.percentile(http_ms, 95)) / 1e3 / full_s, 5),
        "refused_in_bone": refused,
        "in_range_fraction": float(np.mean([a["in_range"] for a in answers])),
        "planned_pose": {
            "preview_lesion": {k: planned["lesion"][k] for k in ("width_mm", "length_mm", "volume_mm3")},
            "full_3d_lesion": {k: round(full["lesion"][k], 3) for k in ("width_mm", "length_mm", "volume_mm3")},
            "preview_pain_fibres_reached": planned["target"]["pain_fibres_reached_fraction"],
            "full_pain_fibres_killed": round(full["target"]["pain_fibres_killed_fraction"], 4),
            "preview_touched": [c["name"] for c in planned["critical"] if c["touched"]],
            "full_injured": [c["name"] for c in full["critical"] if c["injured"]],
        },
    }
    print(json.dumps(summary, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
