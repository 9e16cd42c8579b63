"""The web planner on a patient's scan, end to end: ``neurolysis serve``'s app on 127.0.0.1 (uvicorn
in a thread, a temporary SQLite case store and uploads folder) in a real headless Chromium (Debian's,
through Playwright).

Through the page: choose "my scan", upload the real CT segmentation (TotalSegmentator) and its CT,
see the CT in niivue's slices under the segmentation (two volumes loaded; the canvas shows many grey
levels), pick the right L4 medial branch, click a slice to move the needle (an explicit placement in
the scan's RAS mm, accepted by the server), run the RF plan to its verdict, save the case, reload and
reopen it on the upload. And the knee atlas (LPS): a click's RAS point becomes the plan's LPS point
(x and y negated), and the frame is said beside the coordinates. No console error; every request
goes to the server under test.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra (FastAPI) is not installed")
from tests.browser import test_planner, test_report

browser, server, Page = test_report.browser, test_planner.server, test_planner.Page
pytestmark = pytest.mark.skipif(not Path(test_report.CHROMIUM).exists(), reason="Debian chromium is not installed (make test installs it)")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "anatomy"
CT = EXAMPLES / "totalsegmentator-example"
KNEE = EXAMPLES / "spl-knee-atlas"
TIMEOUT_MS = test_planner.TIMEOUT_MS


def upload(view: Page, segmentation: Path, *, image: Path | None = None, table: Path | None = None) -> str:
    """Choose "my scan", give the files and upload: the status line."""
    view.page.check("#source-scan")
    assert view.page.is_visible("#scan-fields") and view.page.is_hidden("#template-fields")
    view.page.set_input_files("#scan-segmentation", str(segmentation))
    if image is not None:
        view.page.set_input_files("#scan-image", str(image))
    if table is not None:
        view.page.set_input_files("#scan-names-table", str(table))
    with view.page.expect_response(lambda r: "/api/plans/new" in r.url):
        view.page.click("#upload")
    status = view.page.inner_text("#upload-status")
    assert status.startswith("stored"), status
    return status


def grey_levels(png: bytes) -> int:
    """Distinct grey levels (R = G = B within 6, between 25 and 230) in a screenshot: a CT has many, label colours a few."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    grey = (np.abs(rgb[..., 0] - rgb[..., 1]) <= 6) & (np.abs(rgb[..., 1] - rgb[..., 2]) <= 6) & (rgb[..., 0] > 25) & (rgb[..., 0] < 230)
    return len(np.unique(rgb[grey][:, 0]))


def test_upload_my_ct_place_the_needle_run_save_and_reopen(browser, server):
    view = Page(browser, server)
    try:
        view.open()
        assert "not a medical device" in view.page.inner_text("#disclaimer")
        started = time.perf_counter()
        status = upload(view, CT / "seg.nii.gz", image=CT / "ct.nii.gz")
        upload_s = time.perf_counter() - started
        upload_id = status.split("upload ")[1].split(":")[0]
        assert "122 x 101 x 112 voxels of 3 x 3 x 3 mm, RAS" in view.page.inner_text("#scan-summary")
        with view.page.expect_response(lambda r: "/api/plans/new" in r.url):
            view.page.select_option("#target", "L4 medial branch")
        with view.page.expect_response(lambda r: "/api/plans/new" in r.url):
            view.page.select_option("#side", "right")
        view.page.select_option("#method", "rf")
        view.page.wait_for_function("document.getElementById('placement-status').textContent.includes('valid')")
        assert view.page.inner_text("#frame").startswith("RAS: x right")
        assert view.page.evaluate("window.planner.state.nv.volumes.length") == 2, "the CT and the segmentation"
        assert view.page.evaluate("window.planner.state.nv.volumes.map(v => Array.from(v.hdr.dims).slice(1, 4))") == [[122, 101, 112], [122, 101, 112]]
        assert "every voxel" in view.page.inner_text("#viewer-note") and "bone" in view.page.inner_text("#legend")
        canvas = view.page.locator("#viewer").screenshot()
        assert grey_levels(canvas) > 60, "the CT is drawn in the slices"

        test_planner.fill_method_field(view, "rf", "time_s", "60")  # a 60 s lesion (the shortest the instant table holds): the walk tests the page, not the lesion
        recommended = view.tip()
        tip = test_planner.move_needle_by_clicking(view)
        assert tip != recommended
        plan = view.page.evaluate("window.planner.planFromForm()")
        assert plan["placement"] == {"approach": "explicit", "tip_mm": tip, "direction": plan["placement"]["direction"]}
        assert plan["anatomy"] == {"segmentation": f"upload:{upload_id}/seg.nii.gz", "names": "totalsegmentator", "image": f"upload:{upload_id}/ct.nii.gz", "side": "right"}

        seen = view.run_to_result()
        assert view.page.inner_text("#progress-text") == "done 100 %" and any(s.startswith("running") for s in seen), seen
        block, relief = view.page.inner_text("#verdict-block"), view.page.inner_text("#verdict-relief")
        assert block in ("yes", "no") and relief
        lights = view.page.eval_on_selector_all("#lights td.light", "cells => cells.map(c => c.dataset.light)")
        assert lights and set(lights) <= {"green", "amber", "red"}
        view.page.wait_for_function("document.getElementById('figure').complete && document.getElementById('figure').naturalWidth > 0")

        view.page.fill("#save-tags", "scan-e2e")
        view.page.click("#save")
        view.page.wait_for_function("document.getElementById('save-status').textContent.startsWith('saved as case')")
        case_id = view.page.inner_text("#save-status").split()[-1]
        assert f"(scan {upload_id})" in view.page.inner_text(f'#cases tr[data-case="{case_id}"]')

        view.page.reload()
        assert view.page.evaluate("window.planner.ready") is True
        view.page.click(f'#cases tr[data-case="{case_id}"] button.reopen')
        view.page.wait_for_function("!document.getElementById('result').hidden")
        view.page.wait_for_function("window.planner.state.nv.volumes.length === 2")
        assert view.page.is_checked("#source-scan") and view.page.input_value("#target") == "L4 medial branch" and view.page.input_value("#side") == "right"
        assert view.tip() == tip and view.page.inner_text("#verdict-block") == block and view.page.inner_text("#verdict-relief") == relief
        view.check_clean()
        assert upload_s < 30.0, f"upload and first plan took {upload_s:.1f} s"
    finally:
        view.page.close()


def test_a_knee_in_lps_clicks_become_lps_coordinates(browser, server):
    """The knee atlas is LPS: the viewer (RAS) and the plan's tip differ by the sign of x and y."""
    view = Page(browser, server)
    try:
        view.open()
        upload(view, KNEE / "knee_seg.nrrd", table=KNEE / "knee.ctbl")
        assert view.page.is_hidden("#side-label"), "the knee's targets have no side"
        with view.page.expect_response(lambda r: "/api/plans/new" in r.url):
            view.page.select_option("#target", "common peroneal nerve")
        assert view.page.inner_text("#frame").startswith("LPS: x left, y posterior")
        assert view.page.evaluate("window.planner.state.nv.volumes.length") == 1 and "every 3/3/1-th voxel" in view.page.inner_text("#viewer-note")
        before = view.tip()
        canvas = view.page.locator("#viewer").bounding_box()
        at = view.page.evaluate("window.planner.tipOnCanvas()")
        with view.page.expect_response(lambda r: r.url.endswith("/api/plans/check")):
            view.page.mouse.click(canvas["x"] + at["x"] + 8, canvas["y"] + at["y"] + 3)
        tip = view.tip()
        crosshair = view.page.evaluate("(() => { const nv = window.planner.state.nv; return Array.from(nv.frac2mm(nv.scene.crosshairPos)).slice(0, 3); })()")
        assert tip != before and tip == pytest.approx([-crosshair[0], -crosshair[1], crosshair[2]], abs=0.051), (tip, crosshair)
        assert view.page.inner_text("#placement-status").startswith(("needle tip valid", "placement")), view.page.inner_text("#placement-status")
        checked = view.page.evaluate("window.planner.planFromForm()")
        assert checked["placement"]["approach"] == "explicit" and checked["placement"]["tip_mm"] == tip
        view.check_clean()
    finally:
        view.page.close()
