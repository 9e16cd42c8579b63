"""The in-process web app the API tests share: one per test module, with a real SQLite case store."""

import warnings

import pytest


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    pytest.importorskip("fastapi", reason="the web extra (FastAPI) is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's TestClient warns that it wants httpx2 one day
        from fastapi.testclient import TestClient

    from neurolysis.web.app import create_app

    app = create_app(str(tmp_path_factory.mktemp("store") / "cases.db"), workers=1)
    with TestClient(app) as c:
        yield c
