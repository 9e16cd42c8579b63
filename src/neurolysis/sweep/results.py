"""A sweep's results on disk: one JSON file per finished point, then one Parquet table.

``DIR/points/<key>.json`` holds the point's row, its overrides, its plan (TOML) and the full
outcome JSON (``simulate --json``); it is written atomically the moment the point finishes, so
an interrupted sweep resumes from the files. ``DIR/results.parquet`` has one row per point
(:data:`OUTCOME_COLUMNS` after ``point``, ``key`` and one column per varied field).
"""

from __future__ import annotations

import json
from pathlib import Path

from neurolysis.about import __version__
from neurolysis.output import write_atomic, write_text_atomic
from neurolysis.sweep.spec import Sweep, SweepPoint

OUTCOME_COLUMNS = {
    "method": "string",  # procedure.method
    "pain_block": "bool",  # conduction of pain blocked (target nerve)
    "pain_fibres_killed_fraction": "double",  # 0-1
    "motor_fibres_killed_fraction": "double",  # 0-1
    "motor_deficit": "bool",
    "relief_months_median": "double",
    "relief_months_p10": "double",
    "relief_months_p90": "double",
    "relief_mechanism": "string",
    "lesioned_length_mm": "double",  # length of target nerve with every axon killed
    "lesion_width_mm": "double",
    "lesion_length_mm": "double",
    "lesion_volume_mm3": "double",
    "critical_injured": "string",  # names of injured critical structures, "; "-separated ("" if none)
    "critical_min_distance_mm": "double",  # nearest critical structure to the lesion (null: none measured)
    "worst_p_injury": "double",  # highest P(injury) of a critical structure (0/1 without Monte Carlo)
    "mc_samples": "int64",  # null without Monte Carlo
    "p_block": "double",  # Monte Carlo P(pain block); null without
    "p_block_ci_low": "double",  # 95 % confidence interval of p_block
    "p_block_ci_high": "double",
    "n_warnings": "int64",
    "wall_time_s": "double",  # the point's time on its worker: load, prepare, solve
    "worker": "string",  # host:pid of the process that solved it
    "error": "string",  # null, or why the point failed at run time
}


def outcome_row(outcome: dict | None) -> dict:
    """The outcome's main numbers (:data:`OUTCOME_COLUMNS` up to ``n_warnings``) from its JSON; all null for a failed point."""
    if outcome is None:
        return dict.fromkeys(list(OUTCOME_COLUMNS)[: list(OUTCOME_COLUMNS).index("n_warnings") + 1])
    target, lesion, cohort = outcome["target"], outcome["lesion"], outcome.get("uncertainty")
    relief = target.get("relief_months") or {}
    p_injury = {c["name"]: c["p_injury"] for c in cohort["critical"]} if cohort else {}
    distances = [c["distance_to_lesion_mm"] for c in outcome["critical"] if c.get("distance_to_lesion_mm") is not None]
    ci = (cohort or {}).get("p_block_95ci") or (None, None)
    return {
        "method": outcome["method"],
        "pain_block": target["pain_block"],
        "pain_fibres_killed_fraction": target["pain_fibres_killed_fraction"],
        "motor_fibres_killed_fraction": target["motor_fibres_killed_fraction"],
        "motor_deficit": target["motor_deficit"],
        "relief_months_median": relief.get("median"),
        "relief_months_p10": relief.get("p10"),
        "relief_months_p90": relief.get("p90"),
        "relief_mechanism": target.get("relief_mechanism"),
        "lesioned_length_mm": target.get("lesioned_length_mm"),
        "lesion_width_mm": lesion.get("width_mm"),
        "lesion_length_mm": lesion.get("length_mm"),
        "lesion_volume_mm3": lesion.get("volume_mm3"),
        "critical_injured": "; ".join(c["name"] for c in outcome["critical"] if c["injured"]),
        "critical_min_distance_mm": min(distances, default=None),
        "worst_p_injury": max((p_injury.get(c["name"], float(c["injured"])) for c in outcome["critical"]), default=0.0),
        "mc_samples": cohort["samples"] if cohort else None,
        "p_block": cohort["p_block"] if cohort else None,
        "p_block_ci_low": ci[0],
        "p_block_ci_high": ci[1],
        "n_warnings": len(outcome["warnings"]),
    }


TIMING_KEYS = ("wall_time_s", "setup_s", "solve_s")
"""Keys of an outcome JSON that time the computation (the engines' ``mesh.setup_s`` and ``solve_s``)."""


def without_timings(value):
    """An outcome JSON without its :data:`TIMING_KEYS`: equal for the same plan solved anywhere."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def point_record(point: SweepPoint, task: dict) -> dict:
    """What ``points/<key>.json`` holds: the row, the point's overrides and plan, the outcome JSON."""
    row = {"point": point.index, "key": point.key} | point.values() | outcome_row(task["outcome"])
    row |= {"wall_time_s": task["wall_time_s"], "worker": task["worker"], "error": task["error"]}
    return {"key": point.key, "version": __version__, "overrides": point.values(), "plan_toml": point.plan_text, "row": row, "outcome": task["outcome"]}


def point_path(out_dir: Path, point: SweepPoint) -> Path:
    return out_dir / "points" / f"{point.key}.json"


def write_point(out_dir: Path, record: dict) -> Path:
    """The point's record, written atomically (a temporary file renamed into place)."""
    return write_text_atomic(json.dumps(record), out_dir / "points" / f"{record['key']}.json", "out")


def read_point(out_dir: Path, point: SweepPoint) -> dict | None:
    """The point's finished record, or None if it has none, an unreadable one, or one that failed
    (a failed point is run again)."""
    try:
        record = json.loads(point_path(out_dir, point).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != point.key or record.get("outcome") is None:
        return None
    return record


def results_rows(sweep: Sweep, records: dict[str, dict]) -> list[dict]:
    """One row per point of the sweep, in point order (points with the same key share a record)."""
    return [records[p.key]["row"] | {"point": p.index} for p in sweep.points if p.key in records]


def write_results(sweep: Sweep, rows: list[dict], path: Path) -> Path:
    """``results.parquet``: ``point``, ``key``, one column per varied field (numbers, text,
    booleans, or a list column for vectors; a field whose values mix types is stored as JSON
    text), then :data:`OUTCOME_COLUMNS`. Written through a temporary file renamed into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"point": pa.array([r["point"] for r in rows], pa.int64()), "key": pa.array([r["key"] for r in rows], pa.string())}
    for name in sweep.fields:
        values = [r.get(name) for r in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([json.dumps(v) for v in values], pa.string())
    for name, kind in OUTCOME_COLUMNS.items():
        columns[name] = pa.array([r.get(name) for r in rows], pa.type_for_alias(kind))
    table = pa.table(columns)
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp), "out")
