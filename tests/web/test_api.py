"""The HTTP API of ``neurolysis serve``, in process (FastAPI's TestClient), with a real SQLite case store
and real solves in the job runner's process pool.

Every endpoint answers; bad input to each is a 4xx whose ``detail[0]`` names the field and
stores nothing (the case count is unchanged); one real block plan (~1 s solve) goes through
simulate -> events -> result -> report -> figure -> save -> list -> get -> delete while the
catalogue keeps answering; a comparison runs as a job; with a token every request without it
is 401; and ``serve`` refuses a non-loopback host without a token before starting anything.
"""

from __future__ import annotations

import copy
import gzip
import json
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra (FastAPI) is not installed")
pytest.importorskip("sqlalchemy", reason="the store extra (SQLAlchemy) is not installed")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's TestClient warns that it wants httpx2 one day
    from fastapi.testclient import TestClient

from neurolysis.cli import main
from neurolysis.planning.plan import new_plan
from neurolysis.web.app import create_app
from neurolysis.web.command import checked_token, is_loopback

TEMPLATE = "lumbar-medial-branch"
IN_BONE_OFFSET_MM = [0, 2, 0]  # the block needle's tip inside the L5 transverse process


def block_plan() -> dict:
    return new_plan(TEMPLATE, method="block").as_dict()


def case_count(client) -> int:
    return len(client.app.state.store.list())


def wait_done(client, job_id: str, timeout_s: float = 120.0) -> dict:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished in {timeout_s} s")


def test_catalogues_and_page(client):
    templates = client.get("/api/templates").json()["templates"]
    assert TEMPLATE in [t["name"] for t in templates]
    detail = client.get(f"/api/templates/{TEMPLATE}").json()
    assert detail["default_target"] == "L4 medial branch"
    assert {(p["target"], p["approach"]) for p in detail["placements"]} >= {("L4 medial branch", "parallel"), ("L4 medial branch", "perpendicular")}
    assert [r["name"] for r in detail["regions"]][:2] == ["background", "paraspinal muscle"]

    import nibabel

    labels = client.get(detail["labels_url"])
    assert labels.status_code == 200 and labels.headers["content-type"] == "application/gzip"
    image = nibabel.Nifti1Image.from_bytes(gzip.decompress(labels.content))
    voxel = image.header.get_zooms()
    assert 0.5 <= voxel[0] <= 1.0 and np.prod(image.shape) <= 1_500_000 and len(labels.content) < 200_000
    lo, hi = np.asarray(detail["bounds_mm"])
    assert np.allclose(image.affine[:3, 3], lo + voxel[0] / 2)  # voxel centres, mm, anatomy frame
    values = np.unique(np.asarray(image.dataobj))
    assert detail["regions"][[r["name"] for r in detail["regions"]].index("L4 medial branch")]["index"] in values  # the 1 mm nerve is drawn

    methods = {m["method"]: m for m in client.get("/api/methods").json()["methods"]}
    assert list(methods) == ["rf", "cooled-rf", "pulsed-rf", "chemical", "cryo", "surgical", "block"]
    volume = next(f for f in methods["block"]["form"] if f["name"] == "volume_ml")
    assert volume["unit"] == "mL" and volume["kind"] == "number" and volume["default"] == 5.0 and volume["range"]["high"] == 100.0
    indications = client.get("/api/indications", params={"template": TEMPLATE}).json()["indications"]
    assert indications and all(TEMPLATE in i["templates"] for i in indications)

    fresh = client.get("/api/plans/new", params={"template": TEMPLATE, "method": "block"}).json()
    assert fresh["plan"]["procedure"]["method"] == "block" and "[procedure]" in fresh["plan_toml"]
    assert fresh["placement"]["tip_mm"] == next(p["tip_mm"] for p in detail["placements"] if p["approach"] == "parallel")

    page = client.get("/")
    assert page.status_code == 200 and "not a medical device" in page.text and "/static/niivue.umd.js" in page.text
    docs = client.get("/api/docs").text
    assert "/static/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    schema = client.get("/api/openapi.json").json()
    assert {"/api/simulate", "/api/compare", "/api/jobs/{job_id}/events", "/api/cases", "/api/cases/{case_id}/report", "/api/plans/check"} <= set(schema["paths"])
    assert {"400", "422"} <= set(schema["paths"]["/api/simulate"]["post"]["responses"])


def _with(plan: dict, section: str, **values) -> dict:
    out = copy.deepcopy(plan)
    out.setdefault(section, {}).update(values)
    return out


BAD = [  # (method, path, json body or None, status, the field's loc, words in the message)
    ("get", "/api/templates/no-such-template", None, 404, ["path", "name"], "allowed values are"),
    ("get", "/api/templates/no-such-template/labels.nii.gz", None, 404, ["path", "name"], "no-such-template"),
    ("get", "/api/indications?template=nope", None, 404, ["path", "name"], "nope"),
    ("get", "/api/plans/new?template=lumbar-medial-branch&method=laser", None, 422, ["query", "procedure", "method"], "allowed values are"),
    ("post", "/api/plans/check", {"plan": _with(block_plan(), "procedure", volume_ml=500)}, 422, ["body", "plan", "procedure", "volume_ml"], "(0, 100] mL"),
    ("post", "/api/simulate", {"plan": _with(block_plan(), "procedure", volume_ml=500)}, 422, ["body", "plan", "procedure", "volume_ml"], "allowed range"),
    ("post", "/api/simulate", {"plan": _with(block_plan(), "placement", offset_mm=IN_BONE_OFFSET_MM)}, 422, ["body", "plan", "placement"], "inside bone"),
    ("post", "/api/simulate", {"plan": _with(block_plan(), "anatomy", template="knee")}, 422, ["body", "plan", "anatomy", "template"], "allowed values"),
    ("post", "/api/simulate", {"plan": block_plan() | {"extra": {}}}, 422, ["body", "plan", "extra"], "unknown"),
    ("post", "/api/simulate", {"plan": _with(block_plan(), "anatomy", labels="/etc/passwd", labels_map="x.toml")}, 422, ["body", "plan", "anatomy", "labels"], "not accepted"),
    ("post", "/api/simulate", {"plan": block_plan(), "monte_carlo": 0}, 422, ["body", "monte_carlo"], "greater than or equal to 1"),
    ("post", "/api/simulate", {"plan": _with(block_plan(), "procedure", volume_ml="a lot")}, 422, ["body", "plan", "procedure", "volume_ml"], "must be a number"),
    ("post", "/api/simulate", b'{"plan": {', 422, ["body", 10], "JSON"),
    ("post", "/api/plans/check", b'{"plan": "\xff"}', 400, ["body"], "error parsing the body"),  # not UTF-8
    ("get", "/api/no-such-path", None, 404, ["path"], "Not Found"),
    ("post", "/api/compare", {"template": TEMPLATE, "target": "sciatic nerve"}, 422, ["body", "target"], "allowed values"),
    ("post", "/api/compare", {"template": TEMPLATE, "horizon_months": 500}, 422, ["body", "horizon_months"], "[1, 120] months"),
    ("post", "/api/compare", {"template": TEMPLATE, "methods": ["rf", "laser"]}, 422, ["body", "methods[1]"], "allowed values"),
    ("post", "/api/compare", {}, 422, ["body", "template"], "give a template or a plan"),
    ("get", "/api/jobs/0123456789abcdef", None, 404, ["path", "job_id"], "no such job"),
    ("get", "/api/jobs/0123456789abcdef/events", None, 404, ["path", "job_id"], "no such job"),
    ("get", "/api/jobs/0123456789abcdef/report", None, 404, ["path", "job_id"], "no such job"),
    ("get", "/api/jobs/0123456789abcdef/figure.png", None, 404, ["path", "job_id"], "no such job"),
    ("post", "/api/cases", {"job_id": "0123456789abcdef", "tags": ["x"]}, 422, ["body", "job_id"], "no such job"),
    ("post", "/api/cases", {"tags": ["x"]}, 422, ["body", "job_id"], "Field required"),
    ("get", "/api/cases/abcdef0123456789", None, 404, ["path", "case_id"], "not found"),
    ("get", "/api/cases/abcdef0123456789/report", None, 404, ["path", "case_id"], "not found"),
    ("delete", "/api/cases/abcdef0123456789", None, 404, ["path", "case_id"], "not found"),
    ("get", "/api/cases?limit=0", None, 422, ["query", "limit"], "greater than or equal to 1"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "loc", "words"), BAD, ids=[f"{m} {p} {i}" for i, (m, p, *_) in enumerate(BAD)])
def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(client, method, path, body, status, loc, words):
    before = case_count(client)
    kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else ({"json": body} if body is not None else {})
    response = client.request(method.upper(), path, **kwargs)
    assert response.status_code == status, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == loc, detail
    assert words in detail["msg"], detail
    assert case_count(client) == before


def test_a_real_job_from_simulate_to_a_saved_case(client):
    """Block at the L4 medial branch (~1 s solve): events, result, report, figure, case round trip."""
    before = case_count(client)
    accepted = client.post("/api/simulate", json={"plan": block_plan()})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]

    started = time.perf_counter()
    assert client.get("/api/templates").status_code == 200
    assert time.perf_counter() - started < 1.0, "the catalogue must answer while a job runs"

    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    names = [n for n, _ in events]
    assert names[0] == "progress" and names[-1] == "done", names
    progress = [d["progress"] for n, d in events if n == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0

    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "done" and job["progress"] == 1.0 and job["error"] is None
    outcome = job["result"]
    assert outcome["method"] == "block" and outcome["target"]["pain_block"] is True
    assert {light["name"] for light in job["lights"]} == {c["name"] for c in outcome["critical"]}
    assert all(light["light"] in ("green", "amber", "red") for light in job["lights"])
    report = client.get(f"/api/jobs/{job_id}/report")
    assert report.status_code == 200 and "research and education tool" in report.text and "L4 medial branch" in report.text
    figure = client.get(f"/api/jobs/{job_id}/figure.png")
    assert figure.headers["content-type"] == "image/png" and figure.content.startswith(b"\x89PNG") and len(figure.content) > 20_000

    refused = client.post("/api/cases", json={"job_id": job_id, "tags": ["a,b"]})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][:2] == ["body", "tag"]
    refused = client.post("/api/cases", json={"job_id": job_id, "parent_id": "0123456789abcdef"})
    assert refused.status_code == 422 and "parent" in refused.json()["detail"][0]["msg"]
    assert case_count(client) == before

    saved = client.post("/api/cases", json={"job_id": job_id, "tags": ["web-test"], "notes": "from the API test"})
    assert saved.status_code == 201, saved.text
    case = saved.json()
    assert case["tags"] == ["web-test"] and case["has_report"] and case["outcome"] == outcome
    assert "[procedure]" in case["plan_toml"] and 'method = "block"' in case["plan_toml"]
    again = client.post("/api/cases", json={"job_id": job_id, "tags": ["again"]}).json()
    assert again["id"] == case["id"] and set(again["tags"]) == {"web-test", "again"}  # same content: the stored case
    assert case_count(client) == before + 1

    listed = client.get("/api/cases", params={"tag": "web-test"}).json()["cases"]
    assert [c["id"] for c in listed] == [case["id"]] and "report_html" not in listed[0]
    shown = client.get(f"/api/cases/{case['id'][:8]}").json()
    assert shown["id"] == case["id"] and shown["settings"] == outcome["settings"] and shown["lights"] == job["lights"]
    assert "L4 medial branch" in client.get(f"/api/cases/{case['id']}/report").text
    assert client.delete(f"/api/cases/{case['id']}").json() == {"deleted": case["id"]}
    assert client.get(f"/api/cases/{case['id']}").status_code == 404
    assert case_count(client) == before


def test_compare_is_a_job(client):
    """Block and surgery at the L4 medial branch (~2 s): the compare JSON as the job's result; no report."""
    accepted = client.post("/api/compare", json={"plan": block_plan(), "methods": ["block", "surgical"], "horizon_months": 6})
    assert accepted.status_code == 202 and "report" not in accepted.json()["links"]
    job = wait_done(client, accepted.json()["job_id"])
    assert job["status"] == "done", job["error"]
    result = job["result"]
    assert result["template"] == TEMPLATE and result["horizon_months"] == 6 and [m["method"] for m in result["methods"]] == ["block", "surgical"]
    assert client.get(f"/api/jobs/{job['job_id']}/report").status_code == 409


def test_token_required_on_every_request(tmp_path):
    token = "a-long-enough-token"
    app = create_app(str(tmp_path / "cases.db"), token=token, solve=False)
    with TestClient(app) as c:
        for path in ("/", "/api/templates", "/api/openapi.json", "/static/planner.js", "/api/cases"):
            refused = c.get(path)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer", path
            assert refused.json()["detail"][0]["loc"] == ["header", "authorization"]
        assert c.get("/api/templates", headers={"Authorization": "Bearer wrong-token-here"}).status_code == 401
        assert c.get("/api/templates", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        opened = c.get(f"/?token={token}", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        assert "httponly" in opened.headers["set-cookie"].lower() and "samesite=strict" in opened.headers["set-cookie"].lower()
        assert c.get("/api/templates").status_code == 200  # the cookie now set in the client
        assert "not a medical device" in c.get("/").text


def test_serve_refuses_a_public_host_without_a_token(capsys, monkeypatch):
    monkeypatch.delenv("NEUROLYSIS_TOKEN", raising=False)
    started = time.perf_counter()
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert time.perf_counter() - started < 2.0
    err = capsys.readouterr().err
    assert err == ("neurolysis: error: serve --host = '0.0.0.0': not a loopback address; give a token (--token or NEUROLYSIS_TOKEN) "
                   "to serve beyond this machine\n")  # fmt: skip
    assert main(["serve", "--port", "70000"]) == 2
    assert "serve --port = 70000: allowed range is [1, 65535]" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--token", "short"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.2", "::", "example.org"))
    with pytest.raises(SystemExit) as exited:  # --store is checked as it is parsed
        main(["serve", "--store", "mysql://nobody@127.0.0.1/cases"])
    assert exited.value.code == 2
    assert "store = 'mysql://nobody@127.0.0.1/cases'" in capsys.readouterr().err
    monkeypatch.setenv("NEUROLYSIS_TOKEN", "from-the-environment")  # a token from the environment lets the host pass; the port is checked next
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "serve --port = 0" in capsys.readouterr().err
    assert checked_token("127.0.0.1", None) is None and checked_token("0.0.0.0", "long-token") == "long-token"
