"""The HTTP API fuzzed from its own OpenAPI schema (schemathesis, in process on the ASGI app).

Every operation gets up to ``MAX_EXAMPLES`` generated requests (valid and invalid by the schema);
no answer may be a server error (5xx), each status code must be one the schema documents, and
its content type the documented one. The app under test is built with ``solve=False``: simulate
and compare requests are validated in full (``prepare``, anatomy, bone, settings) and recorded
as jobs, but no solve starts (``{"plan": {}}`` is a valid RF plan; the fuzzer must not launch
10-s solves by the hundred). The job runner itself is exercised in ``test_api.py``. Uploads
(``POST /api/anatomy``) are fuzzed too: generated files are refused before anything is kept (the
uploads folder holds nothing afterwards, checked at the end); ``test_uploads.py`` uploads real scans.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra (FastAPI) is not installed")
pytest.importorskip("sqlalchemy", reason="the store extra (SQLAlchemy) is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance

from neurolysis.web.app import create_app

MAX_EXAMPLES = 25


STORE_DIR = tempfile.TemporaryDirectory(prefix="neurolysis-fuzz-")  # the schema is loaded at collection, so the app is built here
APP = create_app(str(Path(STORE_DIR.name) / "cases.db"), solve=False)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _close_the_store():
    yield
    uploads = APP.state.uploads.root
    left = [str(p.relative_to(uploads)) for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []
    APP.state.store.close()
    STORE_DIR.cleanup()
    assert not left, f"fuzzed uploads left files behind: {left[:5]}"


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_error(case):
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance])
