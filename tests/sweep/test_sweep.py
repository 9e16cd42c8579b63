"""``neurolysis sweep`` on real Dask processes: a LocalCluster, and a scheduler with two workers
started here as processes on 127.0.0.1 (stopped by their process ids). Results must equal
running the same plans one by one in this process; reruns skip finished points; ``--save``
stores one case per point. Block plans (about 1 s each) keep the module short.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the sweep extra (dask[distributed]) is not installed")
pq = pytest.importorskip("pyarrow.parquet", reason="the sweep extra (pyarrow) is not installed")

from neurolysis.cli import main  # noqa: E402
from neurolysis.planning.plan import load_plan, new_plan, plan_toml  # noqa: E402
from neurolysis.planning.simulate import simulate  # noqa: E402
from neurolysis.sweep import load_sweep  # noqa: E402
from neurolysis.sweep.results import without_timings  # noqa: E402
from neurolysis.sweep.run import run_sweep, simulate_point  # noqa: E402

VOLUMES_ML = (3, 5)
OFFSETS_MM = ([0, 0, 0], [1, 0, 0])
MONTE_CARLO = 8
GRID = f"""base = "block.toml"
monte_carlo = {MONTE_CARLO}
[vary]
"procedure.volume_ml" = {list(VOLUMES_ML)}
"placement.offset_mm" = {list(OFFSETS_MM)}
"""
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder with the block base plan and the 2 x 2 grid sweep file."""
    path = tmp_path_factory.mktemp("sweep")
    (path / "block.toml").write_text(plan_toml(new_plan("lumbar-medial-branch", method="block")))
    (path / "grid.toml").write_text(GRID)
    return path


@pytest.fixture(scope="module")
def serial(folder) -> dict:
    """(volume, offset) -> the outcome JSON of that plan, simulated here one by one."""
    out = {}
    for volume in VOLUMES_ML:
        for offset in OFFSETS_MM:
            plan = load_plan(folder / "block.toml", [f"procedure.volume_ml={volume}", f"placement.offset_mm={offset}", f"uncertainty.samples={MONTE_CARLO}"])
            out[volume, tuple(offset)] = json.loads(json.dumps(simulate(plan).to_dict()))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler():
    """A Dask scheduler and two single-threaded workers as processes; stopped by PID, checked gone."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = os.environ | ONE_BLAS_THREAD
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]  # fmt: skip
    try:
        for _ in range(2):
            processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"],
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:  # workers first (they say goodbye to the scheduler), then the scheduler
        for process in reversed(processes):
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for process in processes:
            assert process.returncode is not None
            with pytest.raises(ProcessLookupError):
                os.kill(process.pid, 0)


def run_cli(*argv: str, capsys) -> tuple[int, dict]:
    status = main(["sweep", *argv, "--json", "--quiet"])
    return status, json.loads(capsys.readouterr().out)


def check_rows_equal_serial(out: Path, serial: dict) -> list[dict]:
    """Each point's file and row hold the outcome of the serial run of the same plan."""
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert [r["point"] for r in rows] == [0, 1, 2, 3]
    assert [(r["procedure.volume_ml"], r["placement.offset_mm"]) for r in rows] == [(v, o) for v in VOLUMES_ML for o in OFFSETS_MM]
    for row in rows:
        expected = serial[row["procedure.volume_ml"], tuple(row["placement.offset_mm"])]
        record = json.loads((out / "points" / f"{row['key']}.json").read_text())
        assert without_timings(record["outcome"]) == without_timings(expected)
        assert row["error"] is None
        assert row["method"] == "block" and row["pain_block"] == expected["target"]["pain_block"]
        assert row["relief_months_median"] == expected["target"]["relief_months"]["median"]
        assert row["mc_samples"] == MONTE_CARLO and row["p_block"] == expected["uncertainty"]["p_block"]
        assert [row["p_block_ci_low"], row["p_block_ci_high"]] == expected["uncertainty"]["p_block_95ci"]
        assert row["wall_time_s"] > 0
    return rows


def test_local_cluster_rows_equal_serial_runs(folder, serial, capsys):
    out = folder / "local"
    status, summary = run_cli(str(folder / "grid.toml"), "--out", str(out), "--workers", "2", capsys=capsys)
    assert status == 0
    assert (summary["points"], summary["computed"], summary["skipped"], summary["failed"]) == (4, 4, 0, 0)
    assert summary["workers"] == 2 and summary["cluster"].startswith("local")
    rows = check_rows_equal_serial(out, serial)
    workers = {r["worker"] for r in rows}
    assert len(workers) == 2 and f"{socket.gethostname()}:{os.getpid()}" not in workers  # two worker processes, not this one


def test_external_scheduler_rows_equal_serial_runs_and_resume(folder, serial, scheduler, capsys):
    out = folder / "external"
    status, summary = run_cli(str(folder / "grid.toml"), "--scheduler", scheduler, "--out", str(out), capsys=capsys)
    assert status == 0
    assert (summary["computed"], summary["skipped"], summary["cluster"], summary["workers"]) == (4, 0, scheduler, 2)
    rows = check_rows_equal_serial(out, serial)
    assert len({r["worker"] for r in rows}) == 2

    status, summary = run_cli(str(folder / "grid.toml"), "--scheduler", scheduler, "--out", str(out), capsys=capsys)
    assert (status, summary["computed"], summary["skipped"], summary["workers"]) == (0, 0, 4, 0)  # nothing left: no cluster used
    (out / "points" / f"{rows[2]['key']}.json").unlink()
    status, summary = run_cli(str(folder / "grid.toml"), "--scheduler", scheduler, "--out", str(out), capsys=capsys)
    assert (status, summary["computed"], summary["skipped"]) == (0, 1, 3)
    again = check_rows_equal_serial(out, serial)
    assert [r["worker"] for r in again if r["point"] != 2] == [r["worker"] for r in rows if r["point"] != 2]  # the others were not recomputed


def test_save_stores_one_case_per_point_once(folder, scheduler, capsys):
    from neurolysis.store import open_store

    out, store_path = folder / "saved", folder / "cases.db"
    argv = (str(folder / "grid.toml"), "--scheduler", scheduler, "--out", str(out), "--save", "--store", str(store_path), "--tag", "cohort-a")
    status, summary = run_cli(*argv, capsys=capsys)
    assert (status, summary["computed"], summary["saved"]) == (0, 4, 4)
    status, again = run_cli(*argv, capsys=capsys)
    assert (status, again["computed"], again["skipped"], again["case_ids"]) == (0, 0, 4, summary["case_ids"])
    with open_store(store_path) as store:
        cases = store.list(tag="sweep:grid")
        assert len(cases) == 4 and len(store.list()) == 4  # the rerun stored nothing new
        rows = pq.read_table(out / "results.parquet").to_pylist()
        for row in rows:
            case = store.get(summary["case_ids"][str(row["point"])])
            assert set(case.tags) == {"sweep:grid", "cohort-a"}
            record = json.loads((out / "points" / f"{row['key']}.json").read_text())
            assert case.outcome == record["outcome"] and case.plan_toml == record["plan_toml"]
            assert load_plan_text(folder, case.plan_toml).as_dict() == case.settings


def load_plan_text(folder: Path, text: str):
    path = folder / "stored.toml"
    path.write_text(text)
    return load_plan(path)


def test_a_point_failing_at_run_time_is_recorded_and_retried(folder, scheduler):
    """The sweep goes on past a failed point, records why, and a rerun tries it again."""
    sweep = load_sweep(folder / "grid.toml")
    broken = replace(sweep, points=(sweep.points[0], replace(sweep.points[1], plan_text="[procedure\n")))
    out = folder / "failing"
    done = run_sweep(broken, out, scheduler=scheduler)
    assert (done.computed, len(done.failed)) == (2, 1) and done.failed[0][0] == 1 and "TOMLDecodeError" in done.failed[0][1]
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert rows[0]["error"] is None and rows[0]["pain_block"] is not None
    assert rows[1]["pain_block"] is None and "TOMLDecodeError" in rows[1]["error"]
    again = run_sweep(broken, out, scheduler=scheduler)
    assert (again.computed, again.skipped, len(again.failed)) == (1, 1, 1)
    assert "this worker runs neurolysis" in simulate_point(sweep.points[0].plan_text, str(folder), "0.0.0")["error"]


def test_random_draws_follow_the_seed(folder):
    def sweep(seed: int, count: int = 3):
        path = folder / f"random{seed}-{count}.toml"
        path.write_text(f'base = "block.toml"\n[vary]\n"procedure.volume_ml" = [3, 5]\n[random]\nseed = {seed}\ncount = {count}\n'
                        '"procedure.concentration_pct" = [0.25, 0.75]\n"simulation.seed" = [0, 1000]\n"placement.offset_mm" = [[0, -1, -0.5], [1, 0, 0]]\n')  # fmt: skip
        return load_sweep(path)

    first, same, other, longer = sweep(7), sweep(7), sweep(8), sweep(7, count=5)
    assert len(first.points) == 6 and first.fields == ("procedure.volume_ml", "procedure.concentration_pct", "simulation.seed", "placement.offset_mm")
    assert [p.overrides for p in first.points] == [p.overrides for p in same.points] and [p.key for p in first.points] == [p.key for p in same.points]
    assert [p.values() for p in first.points] != [p.values() for p in other.points]
    draws = [p.values() for p in first.points[:3]]
    assert [p.values() for p in first.points[3:]] == [d | {"procedure.volume_ml": 5} for d in draws]  # the grid crossed with the draws, draws fastest
    assert [p.values() for p in longer.points[:3]] == draws  # more draws keep the first ones (and their results)
    for d in draws:
        assert 0.25 <= d["procedure.concentration_pct"] <= 0.75 and isinstance(d["simulation.seed"], int) and 0 <= d["simulation.seed"] <= 1000
        assert all(lo <= v <= hi for v, lo, hi in zip(d["placement.offset_mm"], (0, -1, -0.5), (1, 0, 0), strict=True))
    assert load_sweep(folder / "grid.toml").points[0].key != first.points[0].key


BAD_SWEEPS = {
    'bse = "block.toml"\n[vary]\n"procedure.volume_ml" = [3]\n': "sweep file key bse: unknown",
    '[vary]\n"procedure.volume_ml" = [3]\n': "base = None: required",
    'base = "nope.toml"\n[vary]\n"procedure.volume_ml" = [3]\n': "base = 'nope.toml': no such file",
    'base = "block.toml"\n[vary]\n"procedure.volum" = [3]\n': "vary.\"procedure.volum\": unknown field 'volum'",
    'base = "block.toml"\n[vary]\nvolume_ml = [3]\n': 'vary."volume_ml": must be a plan field section.field',
    'base = "block.toml"\n[vary]\n"procedure.volume_ml" = 3\n': 'vary."procedure.volume_ml" = 3: must be a non-empty list',
    'base = "block.toml"\n[vary]\n"procedure.volume_ml" = [3, 3]\n': 'vary."procedure.volume_ml": value 3 is listed twice',
    'base = "block.toml"\n[vary]\n"procedure.volume_ml" = [3, 400]\n': "sweep point 1 (procedure.volume_ml = 400): procedure.volume_ml = 400 mL: allowed range is (0, 100] mL",
    'base = "block.toml"\n[vary]\n"placement.offset_mm" = [[0, 0, 0], [-5, 0, 0]]\n': "sweep point 1 (placement.offset_mm = [-5, 0, 0]): placement: 100 % of the active tip",
    'base = "block.toml"\n[vary]\n"procedure.segment_mm" = [5]\n': "sweep point 0 (procedure.segment_mm = 5): procedure.segment_mm",
    'base = "block.toml"\nmonte_carlo = -1\n[vary]\n"procedure.volume_ml" = [3]\n': "monte_carlo = -1",
    'base = "block.toml"\n': "nothing to vary",
    'base = "block.toml"\n[random]\ncount = 2\n"procedure.volume_ml" = [1, 2]\n': "random.seed = None: required",
    'base = "block.toml"\n[random]\nseed = 1\ncount = 0\n"procedure.volume_ml" = [1, 2]\n': "random.count = 0",
    'base = "block.toml"\n[random]\nseed = 1\ncount = 2\n"procedure.volume_ml" = [2, 1]\n': 'random."procedure.volume_ml" = [2, 1]: low must be below high',
    'base = "block.toml"\n[vary]\n"procedure.volume_ml" = [3]\n[random]\nseed = 1\ncount = 2\n"procedure.volume_ml" = [1, 2]\n': 'random."procedure.volume_ml": also in [vary]',
    'base = "block.toml"\n[vary\n': "malformed TOML",
}


@pytest.mark.parametrize("text", BAD_SWEEPS)
def test_bad_sweep_files_fail_in_one_line_before_any_cluster(folder, text, capsys, tmp_path):
    """Exit 2, one line naming the field; the scheduler given is never contacted (nothing listens
    there: connecting would fail differently, after 10 s) and no output folder is made."""
    path = folder / "bad.toml"
    path.write_text(text)
    status = main(["sweep", str(path), "--scheduler", f"tcp://127.0.0.1:{_free_port()}", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("neurolysis: error: ") and BAD_SWEEPS[text] in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--workers", "0"], "workers = 0: allowed range is [1, 256]"),
        (["--scheduler", "127.0.0.1:8786"], "scheduler = '127.0.0.1:8786': allowed form is tcp://HOST:PORT"),
        (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "workers = 2: only for the local cluster"),
        (["--tag", "x"], "tag = 'x': only used with --save"),
        (["--save", "--tag", "a,b"], "tag = 'a,b': allowed"),
        (["--out", "/nonexistent/folder/out"], "out = '/nonexistent/folder/out': folder '/nonexistent/folder' does not exist"),
    ],
)
def test_bad_options_fail_in_one_line(folder, options, message, capsys):
    status = main(["sweep", str(folder / "grid.toml"), *options])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err, err


def test_command_imports_no_heavy_library():
    """`neurolysis.sweep.command` (imported by the CLI) loads neither Dask nor pyarrow."""
    code = "import sys, neurolysis.sweep.command; print(sorted(m for m in ('distributed', 'dask', 'pyarrow') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", check=True).stdout.strip() == "[]"


def _worker_environment() -> dict:
    return {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")}


def test_local_workers_run_one_blas_thread_and_default_malloc(monkeypatch):
    """Set in each local worker before it starts, whatever this process has."""
    from neurolysis.sweep.run import _client

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)  # Dask's nanny writes it into this process's environment
    with _client(None, 1) as (client, _, workers):
        found = list(client.run(_worker_environment).values())
    assert workers == 1 and found == [{"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_TRIM_THRESHOLD_": None}]


def test_a_plan_with_several_needles_sweeps_and_saves(folder, scheduler, capsys):
    """issue 18: a three-needle knee block swept over one needle's own volume; each point keeps its
    three targets and the territory, and is stored as a case with its [[needles]]."""
    from neurolysis.store import open_store

    (folder / "knee.toml").write_text(plan_toml(new_plan("genicular", method="block")))
    (folder / "knee-sweep.toml").write_text('base = "knee.toml"\n[vary]\n"needles[1].volume_ml" = [1.0, 2.0]\n')
    out, store_path = folder / "knee-out", folder / "knee-cases.db"
    status, summary = run_cli(str(folder / "knee-sweep.toml"), "--scheduler", scheduler, "--out", str(out), "--save", "--store", str(store_path), capsys=capsys)
    assert (status, summary["computed"], summary["saved"]) == (0, 2, 2)
    with open_store(store_path) as store:
        for case_id in summary["case_ids"].values():
            case = store.get(case_id)
            assert len(case.outcome["targets"]) == 3 and case.outcome["territory"]["members"]
            assert [n["target"] for n in case.settings["needles"]] == [t["nerve"] for t in case.outcome["targets"]]
        volumes = sorted(store.get(i).settings["needles"][1]["volume_ml"] for i in summary["case_ids"].values())
        assert volumes == [1.0, 2.0]
