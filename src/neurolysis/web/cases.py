"""``/api/cases``: save a finished simulation job in the case store, list, show, report, delete.

A saved case is the plan as written (``plan_toml``), its resolved settings, the outcome JSON and
the HTML report of the job (``neurolysis.store``; the case id is the content hash's first 16 hex
characters, so saving the same plan again returns the stored case). Nothing is written on a
refused request: the job is checked here, tags, notes and parent by the store before it writes,
and a save is one transaction.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from neurolysis.validation import ValidationError
from neurolysis.web.api import ERRORS, ApiError, field_loc, outcome_lights

router = APIRouter(prefix="/api/cases", responses=ERRORS, tags=["cases"])


class SaveCase(BaseModel):
    job_id: str = Field(description="a finished simulation job (`POST /api/simulate`)")
    tags: list[str] = Field(default_factory=list, description="tags: 1-64 printable characters each, no comma (the store's check_tags)")
    notes: str = Field("", description="free text (the store's check_notes)")
    parent_id: str | None = Field(None, description="the case this one revises (must be stored)")


def _store(request: Request):
    return request.app.state.store


def case_view(case, *, include_report: bool = False) -> dict:
    """A case's JSON (``Case.to_dict``) with its traffic lights and links."""
    return case.to_dict(include_report=include_report) | {
        "lights": outcome_lights(case.outcome),
        "links": {"self": f"/api/cases/{case.id}"} | ({"report": f"/api/cases/{case.id}/report"} if case.has_report else {}),
    }


def _get(request: Request, case_id: str):
    try:
        return _store(request).get(case_id)
    except ValidationError as error:
        raise ApiError(404, ["path", "case_id"], str(error)) from None


@router.get("", summary="saved cases, newest first (without their reports)")
def list_cases(request: Request, tag: str | None = Query(None, description="only cases with this tag"),
               limit: int | None = Query(None, ge=1, le=10_000, description="at most this many")) -> dict[str, Any]:  # fmt: skip
    cases = _store(request).list(tag=tag, limit=limit)
    return {"store": _store(request).url, "cases": [case_view(c) for c in cases]}


@router.post("", status_code=201, summary="save a finished simulation job as a case (plan TOML, settings, outcome, report)")
def save_case(body: SaveCase, request: Request) -> dict[str, Any]:
    job = request.app.state.runner.get(body.job_id)
    if job is None:
        raise ApiError(422, ["body", "job_id"], f"job_id = {body.job_id!r}: no such job on this server; run POST /api/simulate first")
    if job.kind != "simulate" or job.status != "done":
        raise ApiError(409, ["body", "job_id"], f"job_id = {body.job_id!r}: a {job.kind} job with status {job.status!r}; only a finished simulation can be saved")
    try:
        case = _store(request).save(plan_toml=job.plan_toml, settings=job.result["settings"], outcome=job.result, report_html=job.report_html,
                                    tags=tuple(body.tags), notes=body.notes, parent_id=body.parent_id)  # fmt: skip
    except ValidationError as error:
        raise ApiError(422, field_loc(str(error), ["body"]), str(error)) from None
    return case_view(case)


@router.get("/{case_id}", summary="one case: plan TOML, settings, outcome, tags, notes, parent (the full id or a prefix of >= 6 characters)")
def get_case(case_id: str, request: Request) -> dict[str, Any]:
    return case_view(_get(request, case_id))


@router.get("/{case_id}/report", response_class=HTMLResponse, summary="the case's self-contained HTML report")
def case_report(case_id: str, request: Request) -> HTMLResponse:
    case = _get(request, case_id)
    if not case.report_html:
        raise ApiError(404, ["path", "case_id"], f"case = {case.id!r}: stored without a report")
    return HTMLResponse(case.report_html)


@router.delete("/{case_id}", summary="delete a case")
def delete_case(case_id: str, request: Request) -> dict[str, Any]:
    case = _get(request, case_id)
    try:
        _store(request).delete(case.id)
    except ValidationError as error:
        raise ApiError(422, field_loc(str(error), ["path"]), str(error)) from None
    return {"deleted": case.id}


__all__ = ["SaveCase", "case_view", "router"]
