"""The HTML report in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Opened from file:// with every request routed: anything but the report's own file is
aborted and fails the test. Checked: no console error, every section by id in order, the
verdict, the traffic-light colours read from element screenshots, figures loaded and not
taller than an A4 page in print layout, and print to PDF (A4, more than one page).
``make test`` installs chromium (apt) and the ``e2e`` extra; without them these tests skip.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from neurolysis.planning.plan import plan_toml
from neurolysis.report import command
from neurolysis.report.html import SECTIONS
from tests.plans import one_needle_plan

REQUIRED = os.environ.get("NEUROLYSIS_REQUIRE_BROWSER") == "1"  # `make test` sets it: in CI a missing browser fails, not skips
if REQUIRED:
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the e2e extra (playwright) is not installed")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if REQUIRED and not Path(CHROMIUM).exists():
    raise RuntimeError(f"NEUROLYSIS_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (make chromium installs it)")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make test installs it)")

A4_PRINTABLE_MM = (210 - 24, 297 - 28)  # the report's @page margins: 12 mm sides, 14 mm top and bottom
PX_PER_MM = 96 / 25.4


def make_report(tmp: Path, template: str, method: str, *extra: str) -> Path:
    """Write a plan with ``neurolysis plan new`` defaults and its report (via the report command)."""
    plan = tmp / f"{template}-{method}.toml"
    plan.write_text(plan_toml(one_needle_plan(template, method)))
    out = tmp / f"{template}-{method}.html"
    parser = argparse.ArgumentParser(prog="neurolysis report")
    command.add_arguments(parser)
    assert command.run(parser.parse_args([str(plan), "-o", str(out), "--quiet", *extra])) == 0
    return out


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture(scope="module")
def surgical_report(tmp_path_factory):
    return make_report(tmp_path_factory.mktemp("report"), "intercostal", "surgical")


class Opened:
    """A page with the report loaded offline; ``errors`` and ``blocked`` collect what must stay empty."""

    def __init__(self, browser, path: Path):
        self.url = path.resolve().as_uri()
        self.errors, self.blocked, self.requests = [], [], []
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", lambda req: self.requests.append(req.url))
        self.page.route("**/*", self._route)
        started = time.perf_counter()
        self.page.goto(self.url, wait_until="load")
        self.load_s = time.perf_counter() - started

    def _route(self, route):
        if route.request.url == self.url:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def check_offline(self):
        assert not self.errors, self.errors
        assert not self.blocked, f"the report asked for {self.blocked}"
        assert all(u == self.url or u.startswith("data:") for u in self.requests), self.requests

    def light_rgb(self, structure: str) -> np.ndarray:
        """Median colour of a traffic-light cell, from its element screenshot."""
        from PIL import Image

        cell = self.page.locator(f'td.light[data-structure="{structure}"]')
        img = np.asarray(Image.open(io.BytesIO(cell.screenshot())).convert("RGB"), dtype=float)
        return np.median(img.reshape(-1, 3), axis=0)


def is_green(rgb):
    r, g, b = rgb
    return g > r + 40 and g > b + 40


def is_amber(rgb):
    r, g, b = rgb
    return r > 200 and 120 < g < 220 and b < 90


def is_red(rgb):
    r, g, b = rgb
    return r > 150 and g < 90 and b < 90


def check_sections_and_figures(view: Opened) -> None:
    ids = view.page.eval_on_selector_all("body > section", "els => els.map(e => e.id)")
    assert ids == list(SECTIONS)
    for img in view.page.locator("img").all():
        assert img.evaluate("i => i.complete && i.naturalWidth > 0"), "a figure did not load"


def check_print(view: Opened) -> None:
    """Print layout: every figure fits an A4 page; PDF in A4 with more than one page."""
    view.page.emulate_media(media="print")
    view.page.set_viewport_size({"width": round(A4_PRINTABLE_MM[0] * PX_PER_MM), "height": round(A4_PRINTABLE_MM[1] * PX_PER_MM)})
    for img in view.page.locator("figure img").all():
        box = img.bounding_box()
        assert box["height"] <= A4_PRINTABLE_MM[1] * PX_PER_MM and box["width"] <= A4_PRINTABLE_MM[0] * PX_PER_MM + 1, box
    pdf = view.page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages > 1
    boxes = [[float(v) for v in m.split()] for m in re.findall(rb"/MediaBox\s*\[\s*([\d.\s]+)\]", pdf)]
    assert boxes and all(abs(b[2] - 595.3) < 1.5 and abs(b[3] - 841.9) < 1.5 for b in boxes), boxes  # A4 in points


def test_surgical_report_in_chromium(browser, surgical_report):
    """Intercostal neurectomy: blocks; nothing injured; lights: skin (25 mm away, 37 C) and pleura
    (2.5 mm, 37 C) green, the intercostal artery amber (the excised segment 0.5 mm from it, < 1 mm)."""
    view = Opened(browser, surgical_report)
    try:
        view.check_offline()
        check_sections_and_figures(view)
        assert view.page.inner_text("#verdict-block") == "yes"
        assert view.page.inner_text("#verdict-risk") == "no critical structure injured"
        assert "planned pose only" in view.page.inner_text("#verdict-sure")
        assert view.page.locator("#uncertainty-none").is_visible()
        assert view.page.locator("#comparison-none").is_visible()
        assert view.page.inner_text("#indication-none") == "No indication named in the plan."
        assert "research and education tool" in view.page.inner_text("#disclaimer")
        assert is_green(view.light_rgb("skin"))
        assert is_green(view.light_rgb("pleura and lung"))
        assert is_amber(view.light_rgb("intercostal artery"))
        assert view.page.locator("td.light-red").count() == 0
        check_print(view)
        view.check_offline()
    finally:
        view.page.close()


@pytest.mark.slow
def test_injured_artery_is_red_in_chromium(browser, tmp_path):
    """Genicular RF, default plan (~15 s): the lethal region reaches the superomedial genicular
    artery (docs/validation.md 6.5), so its cell is red and the verdict names it; the popliteal
    artery (10.5 mm away, wall near 37 C) stays green."""
    view = Opened(browser, make_report(tmp_path, "genicular", "rf"))
    try:
        view.check_offline()
        assert is_red(view.light_rgb("superomedial genicular artery"))
        assert is_green(view.light_rgb("popliteal artery"))
        assert view.page.inner_text("#verdict-risk").startswith("ARTERY AT RISK (superomedial genicular artery)")
    finally:
        view.page.close()


@pytest.mark.slow
def test_rf_monte_carlo_report_in_chromium(browser, tmp_path):
    """L4 medial-branch RF with 50 placements (~20 s): P(block) with its 95 % interval in the
    verdict, the uncertainty histograms, and every structure green (cauda equina 16 mm, dural sac
    13 mm, L4 spinal nerve 10 mm, skin 11 mm from the lesion, P(injury) 0 in the cohort)."""
    path = make_report(tmp_path, "lumbar-medial-branch", "rf", "--monte-carlo", "50")
    view = Opened(browser, path)
    try:
        view.check_offline()
        check_sections_and_figures(view)
        assert view.page.inner_text("#verdict-block") == "yes"
        assert re.search(r"P\(block\) \d+ % \(95 % CI \d+-\d+ %\) over 50 needle placements", view.page.inner_text("#verdict-sure"))
        assert "over the cohort" in view.page.inner_text("#verdict-relief")
        assert view.page.locator("#uncertainty-none").count() == 0
        assert view.page.locator("#uncertainty img").count() == 1
        for name in ("cauda equina", "dural sac", "L4 spinal nerve", "skin"):
            assert is_green(view.light_rgb(name)), name
        check_print(view)
    finally:
        view.page.close()
