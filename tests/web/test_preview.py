"""``POST /api/preview`` and ``neurolysis.planning.preview`` (issue 20, part 1): the instant lesion
at the plan's needle, its shape and error cases, and that it agrees in kind with the full solve."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("fastapi", reason="the web extra (FastAPI) is not installed")

from neurolysis.planning.plan import new_plan
from neurolysis.planning.preview import preview

LUMBAR = "lumbar-medial-branch"


def _plan(method="rf", **placement):
    plan = new_plan(LUMBAR, "L4 medial branch", method=method).as_dict()
    plan["placement"] |= placement
    return plan


def test_preview_shape_at_the_default_lumbar_needle(client):
    response = client.post("/api/preview", json={"plan": _plan()})
    assert response.status_code == 200, response.text
    d = response.json()
    assert d["in_range"] and d["disclaimer"]
    assert {"width_mm", "length_mm", "distal_mm", "proximal_mm", "volume_mm3", "centre_mm"} <= set(d["lesion"])
    assert 5 < d["lesion"]["width_mm"] < 15 and 10 < d["lesion"]["length_mm"] < 25
    assert d["target"]["nerve"] == "L4 medial branch" and d["target"]["pain_fibres_reached_fraction"] > 0.5
    assert {c["name"] for c in d["critical"]} == {"cauda equina", "dural sac", "L4 spinal nerve", "skin"}
    assert not any(c["touched"] for c in d["critical"])


def test_a_needle_moved_off_the_nerve_reaches_fewer_fibres():
    near = preview(new_plan(LUMBAR, "L4 medial branch"))
    plan = new_plan(LUMBAR, "L4 medial branch")
    from neurolysis.planning.plan import plan_from_dict

    data = plan.as_dict()
    data["placement"]["offset_mm"] = [0.0, -12.0, 0.0]
    far = preview(plan_from_dict(data))
    assert far["target"]["pain_fibres_reached_fraction"] < near["target"]["pain_fibres_reached_fraction"]


@pytest.mark.parametrize(
    "method_or_change, status, message",
    [
        ("cryo", 200, "tabulated for RF only"),
        ({"procedure": {"set_temp_c": 95.0}}, 200, "set_temp_c = 95 outside"),
        ({"procedure": {"time_s": -5}}, 422, "time_s"),
    ],
)
def test_preview_outside_the_table_or_bad_input(client, method_or_change, status, message):
    plan = _plan(method_or_change) if isinstance(method_or_change, str) else _plan()
    if isinstance(method_or_change, dict):
        plan = copy.deepcopy(plan)
        plan["procedure"] |= method_or_change["procedure"]
    response = client.post("/api/preview", json={"plan": plan})
    assert response.status_code == status, response.text
    if status == 200:
        d = response.json()
        assert not d["in_range"] and message in d["reason"] and d["target"] is None
    else:
        assert message in response.json()["detail"][0]["msg"]


def test_a_fault_inside_the_planner_is_a_500_with_a_logged_id_not_a_422(client, monkeypatch, caplog):
    """issue 20, part 3: an unexpected exception while a plan is checked is the planner's fault."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    import neurolysis.web.api as api_module

    def broken(plan, progress=None):
        raise RuntimeError("a planted fault")

    monkeypatch.setattr(api_module, "prepare", broken)  # the plan check's own reference
    raw = TestClient(client.app, raise_server_exceptions=False)  # no `with`: the module's app keeps its lifespan (store, workers)
    with caplog.at_level("ERROR", logger="neurolysis.web"):
        response = raw.post("/api/plans/check", json={"plan": _plan()})
    assert response.status_code == 500
    body = response.json()
    assert body["detail"][0]["type"] == "internal_error" and body["error_id"] in body["detail"][0]["msg"]
    assert "a planted fault" not in response.text  # the trace stays in the log
    assert any(body["error_id"] in r.getMessage() and r.exc_info for r in caplog.records)
