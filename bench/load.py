"""Load test of the web planner (issue 20, part 3): Locust users against a real ``neurolysis serve``.

Starts the server (its own PID, a fresh SQLite store, ``--workers`` solving processes), runs
``bench/locustfile.py`` headless (20 users for 5 minutes by default: previews while a needle is
dragged, page and catalogue loads, simulations followed to the end and saved as cases), waits
for the jobs still queued when the users stop, then checks what the issue asks:

- no 5xx answer (Locust counts one as a failure; the server log is searched for ``internal error``);
- no lost job: every job a user submitted is found finished (done) on the server;
- no lost case: every case a user saved is listed by the store;

and prints each endpoint's request count and p50/p95/max latency (ms) from Locust's CSV.

    .venv/bin/python bench/load.py [--users 20] [--minutes 5] [--workers 1] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - a loopback URL built here
        return json.loads(answer.read())


def _wait_up(url: str, server: subprocess.Popen, timeout_s: float = 60.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped at start (exit {server.returncode})")
        try:
            _get(url + "/api/version")
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer in {timeout_s} s")


def _endpoint_table(stats_csv: Path) -> list[dict]:
    rows = []
    with stats_csv.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({"method": row["Type"], "name": row["Name"], "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                         "p50_ms": float(row["50%"] or 0), "p95_ms": float(row["95%"] or 0), "max_ms": round(float(row["Max Response Time"] or 0), 1)})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=1, help="the server's solving processes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="neurolysis-load-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "LOAD_LEDGER": str(work / "ledger.jsonl")}
    server_log = (work / "server.log").open("w", encoding="utf-8")
    server = subprocess.Popen([str(BIN / "neurolysis"), "serve", "--port", str(port), "--store", str(work / "cases.db"), "--workers", str(args.workers)],
                              stdout=server_log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    try:
        _wait_up(url, server)
        started = time.monotonic()
        run = subprocess.run([str(BIN / "locust"), "-f", str(HERE / "locustfile.py"), "--headless", "-u", str(args.users), "-r", "5",
                              "-t", f"{int(args.minutes * 60)}s", "--host", url, "--csv", str(work / "load"), "--only-summary"],
                             env=env, capture_output=True, text=True, check=False)  # fmt: skip
        load_s = time.monotonic() - started
        ledger = [json.loads(line) for line in (work / "ledger.jsonl").read_text(encoding="utf-8").splitlines()] if (work / "ledger.jsonl").exists() else []
        jobs = [e["id"] for e in ledger if e["kind"] == "job"]
        cases = [e["id"] for e in ledger if e["kind"] == "case"]
        drain_started = time.monotonic()
        statuses = {}
        while time.monotonic() - drain_started < 600:
            statuses = {job_id: _get(f"{url}/api/jobs/{job_id}")["status"] for job_id in jobs}
            if all(s in ("done", "failed", "cancelled") for s in statuses.values()):
                break
            time.sleep(2.0)
        drain_s = time.monotonic() - drain_started
        listed = {c["id"] for c in _get(f"{url}/api/cases?tag=load-test")["cases"]}
    finally:
        server.terminate()
        server.wait(timeout=30)
        server_log.close()
    log_text = (work / "server.log").read_text(encoding="utf-8")
    endpoints = _endpoint_table(work / "load_stats.csv")
    lost_jobs = [j for j, s in statuses.items() if s != "done"]
    lost_cases = sorted(set(cases) - listed)
    result = {
        "users": args.users, "minutes": args.minutes, "server_workers": args.workers, "load_s": round(load_s, 1), "drain_s": round(drain_s, 1),
        "locust_exit": run.returncode, "jobs_submitted": len(jobs), "jobs_done": sum(s == "done" for s in statuses.values()), "jobs_not_done": lost_jobs,
        "cases_saved": len(cases), "cases_missing": lost_cases, "server_5xx_logged": log_text.count("internal error"),
        "responses_5xx": sum(r["failures"] for r in endpoints if r["name"] != "Aggregated"), "endpoints": endpoints,
        "machine": f"{os.cpu_count()} cores, {sys.platform}, Python {sys.version.split()[0]}",
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{args.users} users for {args.minutes:g} min against {args.workers} solving worker(s): {len(jobs)} jobs, {len(cases)} cases saved; queue drained in {drain_s:.0f} s")
    print(f"{'endpoint':<28}{'requests':>9}{'failed':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for r in endpoints:
        print(f"{r['method'] + ' ' + r['name']:<28}{r['requests']:>9}{r['failures']:>8}{r['p50_ms']:>9.0f}{r['p95_ms']:>9.0f}{r['max_ms']:>9.0f}")
    print(f"5xx: {result['responses_5xx']} answered, {result['server_5xx_logged']} logged; jobs not done: {lost_jobs or 'none'}; cases missing: {lost_cases or 'none'}")


if __name__ == "__main__":
    main()
