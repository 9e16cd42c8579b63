"""The FastAPI application of ``neurolysis serve``: the page, the ``/api`` routes, the token gate.

:func:`create_app` wires the job runner (a process pool) and the case store into one app;
``/`` is the planner page (Jinja2 + vanilla JS, niivue vendored under ``/static``), ``/api``
the HTTP API (OpenAPI at ``/api/openapi.json``, Swagger UI at ``/api/docs`` from vendored
files: the page and the docs load nothing from any other host).

With a token every request must carry it (``Authorization: Bearer T``), or a cookie set by
opening any page once with ``?token=T`` (HttpOnly, SameSite=Strict); else 401. Every request body
has a size limit (:class:`BodyLimit`: an upload 64 MB, anything else 1 MB); beyond it, 413.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from neurolysis.about import DISCLAIMER, __version__
from neurolysis.anatomy.imaging.names import names_choices
from neurolysis.validation import ValidationError
from neurolysis.web import anatomy, api, cases, job_routes, preview
from neurolysis.web.jobs import JobRunner
from neurolysis.web.uploads import MAX_REQUEST_BYTES, MAX_UPLOAD_BYTES, Uploads, default_uploads_folder

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TOKEN_COOKIE = "neurolysis_token"
NOT_A_DEVICE = "research and education tool, not a medical device"
LOG = logging.getLogger("neurolysis.web")


class TokenGate:
    """ASGI middleware: 401 unless the request carries the token (header, cookie, or ``?token=`` once)."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    def _matches(self, value: str | None) -> bool:
        return value is not None and secrets.compare_digest(value.encode(), self.token.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        bearer = headers.get("authorization", "")
        cookies = dict(part.strip().split("=", 1) for part in headers.get("cookie", "").split(";") if "=" in part)
        if self._matches(bearer[7:] if bearer.lower().startswith("bearer ") else None) or self._matches(cookies.get(TOKEN_COOKIE)):
            return await self.app(scope, receive, send)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = next((v for k, v in query if k == "token"), None)
        if self._matches(given):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict", path="/")
        else:
            msg = "token: missing or wrong; send the header `Authorization: Bearer <token>`, or open the page once with ?token=<token>"
            response = JSONResponse(api.error_body(["header", "authorization"], msg, "unauthorized"), status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised into the application when a request body passes its limit (:class:`BodyLimit`)."""


class BodyLimit:
    """ASGI middleware: a request body larger than its limit (``upload_bytes`` for ``POST
    /api/anatomy``, ``other_bytes`` for anything else) is answered 413 in the usual error shape;
    at once when its Content-Length says so (nothing is read), else as soon as the bytes received
    pass the limit (the application's answer to the cut body is replaced)."""

    def __init__(self, app, upload_bytes: int = MAX_UPLOAD_BYTES, other_bytes: int = MAX_REQUEST_BYTES):
        self.app, self.upload_bytes, self.other_bytes = app, upload_bytes, other_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        upload = scope["path"].rstrip("/") == "/api/anatomy"
        limit = self.upload_bytes if upload else self.other_bytes
        what = f"an upload (POST /api/anatomy) is at most {limit} bytes ({limit / 2**20:g} MB)" if upload else f"a request body other than an upload is at most {limit} bytes"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await self._refuse(scope, receive, send, f"body: {int(declared)} bytes; {what}")
        state = {"received": 0, "over": False, "started": False}

        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True
                    raise BodyTooLarge()
            return message

        async def guarded(message):
            if state["over"] and not state["started"]:
                return  # the application's answer to a cut body: the 413 goes instead
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except BodyTooLarge:
            pass
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await self._refuse(scope, receive, send, f"body: more than {limit} bytes; {what}")

    @staticmethod
    async def _refuse(scope, receive, send, message: str) -> None:
        response = JSONResponse(api.error_body(["body"], message, "too_large"), status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _page(request: Request) -> HTMLResponse:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined)
    store = getattr(request.app.state, "store", None)
    html = env.get_template("index.html.j2").render(disclaimer=DISCLAIMER, not_a_device=NOT_A_DEVICE, version=__version__, store=getattr(store, "url", ""),
                                                    names_choices=names_choices(), upload_limit=request.app.state.upload_limit_bytes)  # fmt: skip
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def create_app(store=None, *, token: str | None = None, workers: int = 1, solve: bool = True, runner: JobRunner | None = None,
               uploads: str | Path | None = None, upload_limit_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:  # fmt: skip
    """The web planner. ``store``: a :class:`~neurolysis.store.CaseStore`, or a location for
    :func:`~neurolysis.store.open_store` (None: the default store; opened now, closed on stop);
    ``token``: required on every request when given; ``workers``: solving processes;
    ``solve=False``: jobs are validated and recorded but never run (the schema fuzzer's app);
    jobs are kept in the store's database (a restarted server finds them and re-queues the unfinished);
    ``uploads``: the folder of uploaded scans (default: ``uploads`` beside an SQLite store's file,
    else in the user data folder; created at the first upload); ``upload_limit_bytes``: the
    largest upload request."""
    from neurolysis.store import open_store

    owned = store is None or isinstance(store, str | Path)
    case_store = open_store(store) if owned else store
    job_runner = runner if runner is not None else JobRunner(workers, solve=solve, store=case_store.jobs() if hasattr(case_store, "jobs") else None)
    upload_store = Uploads(uploads if uploads is not None else default_uploads_folder(getattr(case_store, "url", None)))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        job_runner.start()
        yield
        job_runner.close()
        if owned:
            case_store.close()

    app = FastAPI(title="Neurolysis Planner API", version=__version__, description=f"{NOT_A_DEVICE}; {DISCLAIMER}. Errors: docs/web.md.",
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None, lifespan=lifespan)  # fmt: skip
    app.state.runner, app.state.store, app.state.uploads, app.state.upload_limit_bytes = job_runner, case_store, upload_store, upload_limit_bytes

    @app.exception_handler(api.ApiError)
    async def api_error(request: Request, error: api.ApiError) -> JSONResponse:
        return JSONResponse(api.error_body(error.loc, error.msg, error.kind), status_code=error.status)

    @app.exception_handler(ValidationError)
    async def validation_error(request: Request, error: ValidationError) -> JSONResponse:
        return JSONResponse(api.error_body(api.field_loc(str(error), ["body"]), str(error), "value_error"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own answers (400 unreadable body, 404 no such path, 405) in the same shape as every other error."""
        if isinstance(error.detail, list):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)
        loc = ["body"] if error.status_code == 400 else ["path"]
        return JSONResponse(api.error_body(loc, str(error.detail), "http_error"), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        """A fault inside the planner: 500 with an id the server logs beside the trace (never passed off as the user's mistake)."""
        error_id = secrets.token_hex(6)
        LOG.error("internal error %s on %s %s", error_id, request.method, request.url.path, exc_info=(type(error), error, error.__traceback__))
        body = api.error_body([], f"internal error {error_id}: the planner failed on this request; the server log has its trace under this id", "internal_error")
        return JSONResponse(body | {"error_id": error_id}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, error: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "value_error")} for e in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    app.include_router(api.router)
    app.include_router(job_routes.router)
    app.include_router(cases.router)
    app.include_router(anatomy.router)
    app.include_router(preview.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route("/", _page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="Neurolysis Planner API", swagger_js_url="/static/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui.css", swagger_favicon_url="/static/favicon.svg",
                                   swagger_ui_parameters={"validatorUrl": None})  # fmt: skip

    app.add_middleware(BodyLimit, upload_bytes=upload_limit_bytes)
    if token:
        app.add_middleware(TokenGate, token=token)  # outermost: a request without the token is refused before its body is read
    return app


__all__ = ["NOT_A_DEVICE", "BodyLimit", "TokenGate", "create_app"]
