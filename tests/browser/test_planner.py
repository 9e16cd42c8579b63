"""The web planner end to end: ``neurolysis serve``'s app on 127.0.0.1 (uvicorn in a thread, a
temporary SQLite case store) driven in a real headless Chromium (Debian's, through Playwright).

One walk through the page: choose the L4 medial-branch template and RF, click on a slice near
the needle tip to move it (the tip fields change and the server says the new tip is valid), Run
(one real RF solve of a 60 s lesion) with live progress from server-sent events, read the verdict and the
traffic lights, Save with a tag, reload the page, Reopen the case and find the plan and the
verdict restored. No console error; every request goes to the server under test (anything
else is aborted and fails the test); a full-page screenshot is non-trivial.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra (FastAPI) is not installed")
from tests.browser import test_report

browser = test_report.browser  # the module-scoped fixture launching Debian's chromium
pytestmark = pytest.mark.skipif(not Path(test_report.CHROMIUM).exists(), reason="Debian chromium is not installed (make test installs it)")

TIMEOUT_MS = 120_000  # one RF solve on a busy 2-core machine, with the worker process starting
CLICK_OFFSETS_PX = ((6, 0), (-6, 0), (0, 6), (0, -6), (10, 10), (-10, -10), (12, 0), (0, 12))
"""Where to click relative to the drawn needle tip (CSS px) until the server accepts the new tip (not in bone)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The planner on a free 127.0.0.1 port; stopped (and its job pool shut down) after the module."""
    import uvicorn

    from neurolysis.web.app import create_app

    app = create_app(str(tmp_path_factory.mktemp("store") / "cases.db"), workers=1)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    started = time.perf_counter()
    while not server.started:
        assert thread.is_alive() and time.perf_counter() - started < 30, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=60)


class Page:
    """A Chromium page on the planner: console errors and requests elsewhere are collected (must stay empty)."""

    def __init__(self, browser, base: str):
        self.base, self.errors, self.blocked = base, [], []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.route("**/*", self._route)

    def _route(self, route):
        if route.request.url.startswith(self.base + "/"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def open(self) -> None:
        self.page.goto(self.base + "/")
        assert self.page.evaluate("window.planner.ready") is True, self.page.inner_text("#form-error")

    def tip(self) -> list[float]:
        return [float(self.page.input_value(f"#tip-{axis}")) for axis in "xyz"]

    def run_to_result(self) -> set[str]:
        """Click Run and wait for the verdict: the progress texts seen on the way."""
        self.page.click("#run")
        seen = set()
        deadline = time.perf_counter() + TIMEOUT_MS / 1000
        while self.page.is_hidden("#result") and time.perf_counter() < deadline:
            seen.add(self.page.inner_text("#progress-text"))
            time.sleep(0.1)
        assert not self.page.is_hidden("#result"), self.page.inner_text("#form-error")
        return seen

    def check_clean(self) -> None:
        assert not self.errors, self.errors
        assert not self.blocked, f"the page asked for {self.blocked}"


def fill_method_field(view: Page, method: str, field: str, value: str) -> None:
    """Fill a field of ``method``'s form once the page has drawn that form: the /api/plans/new
    response reaching Playwright is not yet its fields on the page, and a fill before them is lost."""
    view.page.wait_for_function(f"window.planner.state.plan?.procedure?.method === '{method}'")
    view.page.fill(f"#field-{field}", value)
    assert view.page.input_value(f"#field-{field}") == value


def move_needle_by_clicking(view: Page) -> list[float]:
    """Click on a slice near the drawn tip until the server accepts the new tip; its position (mm)."""
    before = view.tip()
    canvas = view.page.locator("#viewer").bounding_box()
    at = view.page.evaluate("window.planner.tipOnCanvas()")
    assert at is not None, "the needle tip is not drawn on any slice"
    for dx, dy in CLICK_OFFSETS_PX:
        with view.page.expect_response(lambda r: r.url.endswith("/api/plans/check")):
            view.page.mouse.click(canvas["x"] + at["x"] + dx, canvas["y"] + at["y"] + dy)
        moved = view.tip()
        assert moved != before, "clicking on a slice did not move the needle tip"
        if "valid" in view.page.inner_text("#placement-status") and "ok" in view.page.get_attribute("#placement-status", "class"):
            return moved
        assert view.page.inner_text("#form-error").startswith("placement"), view.page.inner_text("#form-error")
    raise AssertionError("no click near the tip gave a valid placement")


def test_plan_run_save_and_reopen(browser, server, tmp_path):
    from PIL import Image

    view = Page(browser, server)
    try:
        view.open()
        assert "not a medical device" in view.page.inner_text("#disclaimer")
        view.page.select_option("#template", "lumbar-medial-branch")
        with view.page.expect_response(lambda r: "/api/plans/new" in r.url):
            view.page.select_option("#method", "rf")
        assert view.page.get_attribute("#field-set_temp_c", "max") == "95" and view.page.inner_text("#hint-tip_mm").startswith("allowed [2, 30]")
        fill_method_field(view, "rf", "time_s", "60")  # a 60 s lesion (the shortest the instant table holds): the walk tests the page, not the lesion
        recommended = view.tip()
        tip = move_needle_by_clicking(view)
        offset = [round(t - r, 1) for t, r in zip(tip, recommended, strict=True)]
        assert view.page.inner_text("#offset-mm") == "[" + ", ".join(f"{v:.1f}" for v in offset) + "]"
        # issue 20: the instant lesion follows the moved needle (POST /api/preview), before any solve
        view.page.wait_for_function("document.getElementById('preview').textContent.startsWith('instant lesion')")
        assert "pain fibres reached" in view.page.inner_text("#preview"), view.page.inner_text("#preview")

        # issue 20: a running job is cancelled from the page (DELETE /api/jobs/{id}), and Run works again
        view.page.click("#run")
        view.page.wait_for_function("document.getElementById('progress-text').textContent.startsWith('running')", timeout=TIMEOUT_MS)
        view.page.click("#cancel-job")
        view.page.wait_for_function("document.getElementById('progress-text').textContent.startsWith('cancelled')")
        assert view.page.is_hidden("#cancel-job") and not view.page.is_disabled("#run") and view.page.is_hidden("#result")

        seen = view.run_to_result()
        assert any(s.startswith("running") and s != "running 100 %" for s in seen), seen  # live progress before the end
        assert view.page.inner_text("#progress-text") == "done 100 %"
        block = view.page.inner_text("#verdict-block")
        relief = view.page.inner_text("#verdict-relief")
        assert block in ("yes", "no") and relief
        assert "the planned pose only" in view.page.inner_text("#verdict-sure")
        lights = view.page.eval_on_selector_all("#lights td.light", "cells => cells.map(c => c.dataset.light)")
        assert len(lights) == 4 and set(lights) <= {"green", "amber", "red"}
        view.page.wait_for_function("document.getElementById('figure').complete && document.getElementById('figure').naturalWidth > 0")
        assert view.page.get_attribute("#report-link", "href").endswith("/report")

        view.page.fill("#save-tags", "e2e, lumbar")
        view.page.fill("#save-notes", "saved by the browser test")
        view.page.click("#save")
        view.page.wait_for_function("document.getElementById('save-status').textContent.startsWith('saved as case')")
        case_id = view.page.inner_text("#save-status").split()[-1]
        assert view.page.inner_text(f'#cases tr[data-case="{case_id}"]').count("e2e, lumbar") == 1

        view.page.reload()
        assert view.page.evaluate("window.planner.ready") is True
        view.page.select_option("#method", "block")  # something else in the form, which the case must replace
        view.page.click(f'#cases tr[data-case="{case_id}"] button.reopen')
        view.page.wait_for_function("!document.getElementById('result').hidden")
        assert view.page.input_value("#template") == "lumbar-medial-branch" and view.page.input_value("#method") == "rf"
        assert view.tip() == tip and view.page.inner_text("#offset-mm") == "[" + ", ".join(f"{v:.1f}" for v in offset) + "]"
        assert float(view.page.input_value("#field-tip_mm")) == 10.0 and float(view.page.input_value("#field-time_s")) == 60.0
        assert view.page.inner_text("#verdict-block") == block and view.page.inner_text("#verdict-relief") == relief
        assert view.page.eval_on_selector_all("#lights td.light", "cells => cells.map(c => c.dataset.light)") == lights

        shot = tmp_path / "web-planner.png"
        view.page.screenshot(path=str(shot), full_page=True)
        image = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("RGB"), dtype=float)
        assert shot.stat().st_size > 50_000 and image.shape[0] > 900 and image.std(axis=(0, 1)).min() > 20
        view.check_clean()
    finally:
        view.page.close()


def test_api_docs_and_a_browser_without_webgl(browser, server):
    """Swagger UI from the vendored files lists the operations; without WebGL2 the page says so and still plans by numbers."""
    view = Page(browser, server)
    try:
        view.page.goto(server + "/api/docs")
        view.page.locator(".opblock-summary-path", has_text="/api/simulate").first.wait_for()
        assert view.page.locator(".opblock").count() >= 15
        view.page.add_init_script("HTMLCanvasElement.prototype.getContext = () => null;")
        view.open()
        assert view.page.is_visible("#webgl-fallback") and view.page.is_hidden("#viewer-box")
        view.page.fill("#tip-x", str(view.tip()[0] + 1.0))
        with view.page.expect_response(lambda r: r.url.endswith("/api/plans/check")):
            view.page.dispatch_event("#tip-x", "change")
        assert "valid" in view.page.inner_text("#placement-status")
        view.check_clean()
    finally:
        view.page.close()


KNEE_TARGETS = ("superomedial genicular nerve", "superolateral genicular nerve")


def test_several_needles_placed_run_saved_and_reopened(browser, server):
    """issue 18: on the knee, add the superomedial needle, choose the superolateral nerve, move its
    needle 1 mm, add it; the plan holds both as [[needles]]; a block (fast) runs and the
    result gives each target and the territory; the saved case reopens with both needles."""
    view = Page(browser, server)
    try:
        view.open()
        with view.page.expect_response(lambda r: "/api/plans/new" in r.url):
            view.page.select_option("#template", "genicular")
        with view.page.expect_response(lambda r: "/api/plans/new" in r.url):
            view.page.select_option("#method", "block")
        view.page.fill("#weight-kg", "70")
        with view.page.expect_response(lambda r: "/api/plans/new" in r.url):
            view.page.select_option("#target", KNEE_TARGETS[0])
        first_tip = view.tip()
        with view.page.expect_response(lambda r: r.url.endswith("/api/plans/check")):
            view.page.click("#add-needle")
        with view.page.expect_response(lambda r: "/api/plans/new" in r.url):
            view.page.select_option("#target", KNEE_TARGETS[1])
        view.page.fill("#tip-z", str(view.tip()[2] + 1.0))  # the knee's slices are small: move by typing
        with view.page.expect_response(lambda r: r.url.endswith("/api/plans/check")):
            view.page.dispatch_event("#tip-z", "change")
        assert "valid" in view.page.inner_text("#placement-status"), view.page.inner_text("#form-error")
        second_tip = view.tip()
        with view.page.expect_response(lambda r: r.url.endswith("/api/plans/check")):
            view.page.click("#add-needle")
        assert "plan with 2 needle(s) valid" in view.page.inner_text("#placement-status")
        rows = view.page.eval_on_selector_all("#needles tbody tr", "rows => rows.map(r => r.cells[1].textContent)")
        assert rows == list(KNEE_TARGETS)
        plan = view.page.evaluate("window.planner.planFromForm()")
        assert [n["target"] for n in plan["needles"]] == list(KNEE_TARGETS) and "placement" not in plan
        assert plan["needles"][0]["offset_mm"] == [0, 0, 0] and plan["needles"][1]["offset_mm"] != [0, 0, 0]

        view.run_to_result()
        assert view.page.is_visible("#targets-row")
        each = view.page.inner_text("#targets-text")
        assert all(t in each for t in KNEE_TARGETS), each
        assert each.count("blocked") == 2 and view.page.inner_text("#verdict-block") == "yes, temporarily"

        view.page.fill("#save-tags", "two needles")
        view.page.click("#save")
        view.page.wait_for_function("document.getElementById('save-status').textContent.startsWith('saved as case')")
        case_id = view.page.inner_text("#save-status").split()[-1]
        view.page.reload()
        assert view.page.evaluate("window.planner.ready") is True
        view.page.click(f'#cases tr[data-case="{case_id}"] button.reopen')
        view.page.wait_for_function("!document.getElementById('result').hidden")
        tips = view.page.evaluate("window.planner.state.needles.map(n => n.tip_mm)")
        assert [[round(v, 1) for v in t] for t in tips] == [[round(v, 1) for v in first_tip], [round(v, 1) for v in second_tip]]
        view.check_clean()
    finally:
        view.page.close()
