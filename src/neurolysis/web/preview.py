"""``POST /api/preview``: the instant answer for a plan's needle (no job, no solve), for a needle
being dragged in the planner; the full solve stays ``POST /api/simulate``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from neurolysis.planning.preview import preview_context
from neurolysis.web.api import ERRORS, PlanRequest, _uploads, checked_plan

router = APIRouter(prefix="/api", responses=ERRORS)


@router.post("/preview", summary="instant lesion at the plan's needle: tabulated RF lesion, pain fibres reached, structures touched (milliseconds; no job)")
def preview(body: PlanRequest, request: Request) -> dict[str, Any]:
    checked = checked_plan(body.plan, None, uploads=_uploads(request))
    return preview_context(checked.context)
