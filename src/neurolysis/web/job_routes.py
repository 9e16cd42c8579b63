"""The HTTP API of one job under ``/api/jobs/{job_id}``: its status, its event stream, its
report and figure, and ``DELETE`` to cancel it. Errors as in :mod:`neurolysis.web.api`: an
unknown job is 404; a result asked of an unfinished job, or a cancel of a finished one, is 409.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from neurolysis.web.api import ERRORS, ApiError, links, outcome_lights
from neurolysis.web.jobs import KEEP_STORED

SSE_POLL_S = 0.1
"""How often an event stream looks at its job (s)."""

router = APIRouter(prefix="/api", responses=ERRORS)


class JobView(BaseModel):
    job_id: str
    kind: str = Field(description="simulate | compare")
    status: str = Field(description="queued | running | done | failed | cancelled")
    progress: float = Field(ge=0.0, le=1.0)
    error: str | None = None
    result: dict[str, Any] | None = Field(None, description="simulate: the `simulate --json` outcome; compare: the `compare --json` dict")
    lights: list[dict[str, Any]] | None = Field(None, description="simulate: a traffic light per critical structure (as in the HTML report)")
    plan: dict[str, Any] | None = Field(None, description="the resolved plan's sections")
    links: dict[str, str]




def get_job_or_404(request: Request, job_id: str):
    job = request.app.state.runner.get(job_id)
    if job is None:
        raise ApiError(404, ["path", "job_id"], f"job_id = {job_id!r}: no such job on this server (its store keeps the newest {KEEP_STORED} finished jobs)")
    return job


def job_view(job) -> JobView:
    lights = outcome_lights(job.result) if job.kind == "simulate" and job.result is not None else None
    plan = job.request.get("plan") if job.kind == "compare" else (job.result or {}).get("settings")
    return JobView(job_id=job.id, kind=job.kind, status=job.status, progress=job.progress, error=job.error, result=job.result,
                   lights=lights, plan=plan, links=links(job.id, job.kind))  # fmt: skip


@router.get("/jobs/{job_id}", response_model=JobView, summary="a job: status, progress 0-1, result or error")
def get_job(job_id: str, request: Request) -> JobView:
    return job_view(get_job_or_404(request, job_id))


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@router.delete("/jobs/{job_id}", response_model=JobView, summary="cancel a queued or running job (a running job's worker is stopped and replaced)")
def cancel_job(job_id: str, request: Request) -> JobView:
    job = get_job_or_404(request, job_id)
    if job.finished:
        raise ApiError(409, ["path", "job_id"], f"job_id = {job_id!r}: status is {job.status!r}; only a queued or running job can be cancelled")
    return job_view(request.app.state.runner.cancel(job_id))


@router.get("/jobs/{job_id}/events", summary="server-sent events: `progress` {status, progress}, then `done`, `failed` or `cancelled`",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})  # fmt: skip
async def job_events(job_id: str, request: Request) -> StreamingResponse:
    runner = request.app.state.runner
    get_job_or_404(request, job_id)

    async def stream():
        last = None
        while True:
            job = runner.get(job_id)
            if job is None:
                yield _event("failed", {"job_id": job_id, "status": "failed", "error": "the job was dropped"})
                return
            state = (job.status, round(job.progress, 3))
            if state != last:
                last = state
                yield _event("progress", {"job_id": job_id, "status": job.status, "progress": job.progress})
            if job.finished:
                yield _event(job.status, {"job_id": job_id, "status": job.status, "progress": job.progress, "error": job.error})
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(SSE_POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def finished_simulation(request: Request, job_id: str):
    job = get_job_or_404(request, job_id)
    if job.kind != "simulate":
        raise ApiError(409, ["path", "job_id"], f"job_id = {job_id!r}: a {job.kind} job has no report or figure; simulate a plan for one")
    if job.status != "done":
        raise ApiError(409, ["path", "job_id"], f"job_id = {job_id!r}: status is {job.status!r}{': ' + job.error if job.error else ''}; the result exists once it is 'done'")
    return job


@router.get("/jobs/{job_id}/report", response_class=HTMLResponse, summary="the self-contained HTML report of a finished simulation")
def job_report(job_id: str, request: Request) -> HTMLResponse:
    return HTMLResponse(finished_simulation(request, job_id).report_html)


@router.get("/jobs/{job_id}/figure.png", response_class=Response, responses={200: {"content": {"image/png": {}}}},
            summary="the outcome figure (slices through the needle, axon map) of a finished simulation")  # fmt: skip
def job_figure(job_id: str, request: Request) -> Response:
    return Response(finished_simulation(request, job_id).figure_png, media_type="image/png")


__all__ = ["JobView", "router"]
