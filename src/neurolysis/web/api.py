"""The HTTP API under ``/api``: catalogues, plans, jobs (simulate, compare) and their results.

Every user error is a 4xx whose body has FastAPI's shape ``{"detail": [{"loc": [...], "msg":
"...", "type": "..."}]}``: a plan's ``ValidationError`` (the one-line ``field = value: allowed
...``) is 422 with ``loc`` naming the field, an unknown template, job or case is 404, a result
asked of an unfinished job is 409. Requests are validated in full (``prepare``: anatomy,
target, placement, bone, settings; cheap) before a job starts, so a bad plan never queues.
Plans on label maps (``anatomy.labels``) are refused: the server would read its own files. A
plan on a patient's scan names the files of an upload (``POST /api/anatomy``, :mod:`.uploads`)
as ``upload:<id>/<file>``; any other path is refused.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, NamedTuple

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from neurolysis._catalog import load_catalog
from neurolysis.about import DISCLAIMER, __version__
from neurolysis.anatomy.templates import load_template, template_names, template_summary
from neurolysis.compare import HORIZON_RANGE_MONTHS
from neurolysis.indications import indications_for
from neurolysis.methods import METHODS, method_names, method_summary
from neurolysis.planning.plan import new_plan, new_segmentation_plan, plan_from_dict
from neurolysis.planning.simulate import prepare
from neurolysis.report.html import traffic_light
from neurolysis.validation import ValidationError, check_choice, check_range
from neurolysis.web.uploads import Upload, Uploads, hide_paths, shown_plan, upload_job
from neurolysis.web.volumes import label_volume_nifti, region_colours, voxel_size_mm

MAX_SAMPLES = int(load_catalog("uncertainty")["limits"]["max_samples"])
ERRORS = {
    400: {"description": "the body could not be read (not JSON, or not UTF-8)"},
    404: {"description": "no such template, upload, job or case: `detail[0].msg` names it"},
    409: {"description": "the job has not finished, or has no such result"},
    422: {"description": "a field is invalid: `detail[0].loc` and `detail[0].msg` name the field, the value and what is allowed"},
    500: {"description": "a fault inside the planner (not the request's): `error_id`, logged by the server with its trace"},
}
"""Error answers documented on every operation (FastAPI's own 422 covers malformed JSON too)."""
UNIT_SUFFIXES = ("_ml_per_min", "_ml_min", "_mm", "_ml", "_pct", "_c", "_s", "_ms", "_h", "_w", "_v", "_hz", "_kg", "_months", "_years")
"""Unit suffixes of field names, left out of a field's label (the unit is shown beside it, from the registry)."""


class ApiError(Exception):
    """A 4xx answer: ``status``, ``loc`` (where in the request) and a one-line message."""

    def __init__(self, status: int, loc: list, msg: str, kind: str = "value_error"):
        super().__init__(msg)
        self.status, self.loc, self.msg, self.kind = status, loc, msg, kind


def error_body(loc: list, msg: str, kind: str) -> dict:
    return {"detail": [{"loc": loc, "msg": msg, "type": kind}]}


def field_loc(message: str, prefix: list) -> list:
    """``loc`` of a ValidationError message: its leading ``section.field[i]`` split on dots
    (``plan section [x]: unknown`` -> ``x``; a message about the whole plan -> ``prefix``)."""
    section = re.match(r"plan section \[(.+?)\]", message)
    if section:
        return [*prefix, section.group(1)]
    match = re.match(r"[A-Za-z_][\w.\[\]]*", message)
    name = match.group(0) if match else "plan"
    return prefix if name == "plan" else [*prefix, *name.split(".")]


class PlanSections(BaseModel):
    """A plan as JSON: the TOML file's sections (``neurolysis plan new`` writes one; see docs/plans.md)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": {
        "anatomy": {"template": "lumbar-medial-branch"}, "target": {"nerve": "L4 medial branch"},
        "procedure": {"method": "block", "agent": "lidocaine", "volume_ml": 1.0}, "placement": {"approach": "parallel", "offset_mm": [0, 0, 0]},
        "patient": {"weight_kg": 70}}})  # fmt: skip
    anatomy: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    procedure: dict[str, Any] | None = None
    placement: dict[str, Any] | None = None
    patient: dict[str, Any] | None = None
    simulation: dict[str, Any] | None = None
    uncertainty: dict[str, Any] | None = None
    indication: dict[str, Any] | None = None


class PlanRequest(BaseModel):
    plan: PlanSections
    monte_carlo: int | None = Field(None, ge=1, le=MAX_SAMPLES, description="Monte Carlo over needle placement: N poses (sets uncertainty.samples)")


class CompareRequest(BaseModel):
    """Every method at one target: a template (and target), or a plan whose placement, patient and uncertainty are used."""

    template: str | None = Field(None, description="anatomy template (with no plan)")
    target: str | None = Field(None, description="target nerve (default: the template's, or the plan's)")
    plan: PlanSections | None = None
    monte_carlo: int | None = Field(None, ge=1, le=MAX_SAMPLES, description="P(block), relief and P(injury) over N needle poses")
    horizon_months: float = Field(12.0, description="procedures needed to cover this many months")
    methods: list[str] | None = Field(None, description="compare only these methods (default: all)")


class JobAccepted(BaseModel):
    job_id: str
    kind: str
    status: str
    links: dict[str, str]


class PlanChecked(BaseModel):
    valid: bool
    plan: dict[str, Any]
    plan_toml: str
    placement: dict[str, Any] = Field(description="the needle pose: tip_mm (anatomy frame) and direction (hub -> tip)")
    frame: str = Field("RAS", description="the frame of every coordinate of the plan: RAS (templates, NIfTI scans) or LPS (an NRRD scan's usual space)")
    region_mm: list[list[float]] | None = Field(None, description="a scan: the box simulated around the target (mm, the plan's frame), [[x, y, z] low, [x, y, z] high]")
    disclaimer: str


router = APIRouter(prefix="/api", responses=ERRORS)


def _kind(field_type) -> str:
    """The form control of a ``[procedure]`` field's type: boolean, integer, number, list or text."""
    if field_type is bool:
        return "boolean"
    if field_type is int:
        return "integer"
    if field_type is float:
        return "number"
    return "list" if getattr(field_type, "__origin__", None) in (tuple, list) else "text"


def _label(name: str) -> str:
    """A field's name in words, without its unit suffix (``set_temp_c`` -> set temp)."""
    suffix = next((s for s in UNIT_SUFFIXES if name.endswith(s)), "")
    return name[: len(name) - len(suffix)].replace("_", " ")


def method_fields(summary: dict) -> list[dict]:
    """Each ``[procedure]`` field of a method for the form: kind, unit, default, choices, range
    (``{low, high, low_inclusive, unit}``) and help; ``units``/``ranges`` from the method registry."""

    units, ranges, defaults, choices = summary.get("units", {}), summary.get("ranges", {}), summary.get("defaults", {}), summary.get("choices", {})
    return [{"name": f.name, "label": _label(f.name), "kind": _kind(f.type), "unit": units.get(f.name), "default": defaults.get(f.name), "choices": choices.get(f.name),
             "range": ranges.get(f.name), "help": f.comment} for f in METHODS[summary["method"]].fields]  # fmt: skip


def _template(name: str):
    try:
        check_choice("template", name, template_names())
    except ValidationError as error:
        raise ApiError(404, ["path", "name"], str(error)) from None
    return load_template(name)


class Checked(NamedTuple):
    """A plan request validated in full: the Plan, its Context (``prepare``) and the upload it reads (or None)."""

    plan: Any
    context: Any
    upload: Upload | None


def _uploads(request: Request) -> Uploads:
    return request.app.state.uploads


def checked_plan(sections: PlanSections, monte_carlo: int | None = None, where: list | None = None, uploads: Uploads | None = None) -> Checked:
    """A plan request validated in full without solving (``prepare``); its files must be an
    upload's (``upload:<id>/<file>``, read from ``uploads``), any other path is refused."""

    where = ["body", "plan"] if where is None else where
    data = sections.model_dump(exclude_none=True)
    for key in ("labels", "labels_map", "nerves"):
        if key in (data.get("anatomy") or {}):
            raise ApiError(422, [*where, "anatomy", key], f"anatomy.{key}: label-map plans are not accepted over HTTP (the server would read its files); "
                                                          "use anatomy.template, or upload the scan (POST /api/anatomy) and name its files upload:<id>/<file>")  # fmt: skip
    upload = None
    if data.get("anatomy"):
        try:
            data["anatomy"], upload = (uploads if uploads is not None else Uploads(None)).resolve(data["anatomy"])
        except (ValidationError, LookupError) as error:
            raise ApiError(422, field_loc(str(error), where), str(error)) from None
    if monte_carlo is not None:
        data.setdefault("uncertainty", {})
        if isinstance(data["uncertainty"], dict):
            data["uncertainty"]["samples"] = monte_carlo
    try:
        plan = plan_from_dict(data, base_dir=str(upload.folder) if upload else ".")
        return Checked(plan, prepare(plan), upload)
    except ValidationError as error:  # anything else is the planner's fault: a 500 with an error id (app.py), never the user's
        message = hide_paths(str(error), upload)
        raise ApiError(422, field_loc(message, where), message) from None


def plan_checked(checked: Checked) -> PlanChecked:
    sections, toml = shown_plan(checked.plan, checked.upload)
    scene = checked.context.scene
    region = [[round(float(v) * 1e3, 3) for v in corner] for corner in scene.bounds_m] if scene.convention is not None else None
    return PlanChecked(valid=True, plan=sections, plan_toml=toml, placement=pose_dict(checked.context), frame=scene.convention or "RAS", region_mm=region, disclaimer=DISCLAIMER)


def pose_dict(context) -> dict:
    return {"tip_mm": [round(float(v) * 1e3, 4) for v in context.pose.tip_m], "direction": [round(float(v), 6) for v in context.pose.direction]}


def outcome_lights(outcome: dict) -> list[dict]:
    """A traffic light per critical structure of an outcome JSON (:func:`neurolysis.report.html.traffic_light`)."""

    cohort = {c["name"]: c["p_injury"] for c in outcome.get("uncertainty", {}).get("critical", [])} if outcome.get("uncertainty") else {}
    out = []
    for c in outcome.get("critical", []):
        light, why = traffic_light(c, cohort.get(c["name"]))
        out.append({"name": c["name"], "kind": c["kind"], "light": light, "why": why, "injured": c["injured"], "p_injury": cohort.get(c["name"]),
                    "distance_to_lesion_mm": c.get("distance_to_lesion_mm"), "peak_temp_c": c.get("peak_temp_c"),
                    "min_temp_c": c.get("min_temp_c")})  # fmt: skip
    return out


@router.get("/templates", summary="anatomy templates: targets, critical structures, approaches, bounds (mm)")
def list_templates() -> dict[str, Any]:
    return _templates_listing()


@cache
def _templates_listing() -> dict[str, Any]:
    """Every template's summary, built once: the templates are package data (60-120 ms to build)."""
    return {"templates": [template_summary(name) for name in template_names()], "disclaimer": DISCLAIMER}


@router.get("/templates/{name}", summary="one template with its regions (viewer colours) and recommended needle placements (mm)")
def get_template(name: str) -> dict[str, Any]:
    scene = _template(name)
    placements = [{"target": nerve, "approach": approach, "tip_mm": [round(float(v) * 1e3, 4) for v in pose.tip_m], "direction": [round(float(v), 6) for v in pose.direction]}
                  for (nerve, approach), pose in scene.placements.items()]  # fmt: skip
    return template_summary(name) | {
        "regions": region_colours(scene),
        "placements": placements,
        "nerves": [{"name": n.name, "kind": n.kind, "radius_mm": round(n.radius_m * 1e3, 3)} for n in scene.nerves],
        "indications": [i.id for i in indications_for(template=name)],
        "voxel_mm": round(voxel_size_mm(scene), 4),
        "labels_url": f"/api/templates/{name}/labels.nii.gz",
    }


@router.get("/templates/{name}/labels.nii.gz", summary="the template's label map as a gzipped NIfTI (mm, RAS = the anatomy frame)",
            response_class=Response, responses={200: {"content": {"application/gzip": {}}}})  # fmt: skip
def get_template_labels(name: str) -> Response:
    _template(name)
    return Response(label_volume_nifti(name), media_type="application/gzip", headers={"Cache-Control": "max-age=3600"})


@router.get("/methods", summary="plan methods: [procedure] fields with units, defaults, choices and ranges")
def list_methods() -> dict[str, Any]:
    methods = []
    for name in method_names():
        summary = method_summary(name)
        methods.append(summary | {"form": method_fields(summary)})
    return {"methods": methods, "disclaimer": DISCLAIMER}


@router.get("/indications", summary="indications: targets, templates, methods, evidence and coverage with sources")
def list_indications(template: str | None = Query(None, description="only those simulated on this template")) -> dict[str, Any]:
    if template is not None:
        _template(template)
    return {"indications": [i.to_dict() for i in indications_for(template=template)], "disclaimer": DISCLAIMER}


@router.get("/plans/new", summary="a new plan with the recommended placement on a template or an uploaded scan (as `neurolysis plan new`)", response_model=PlanChecked)
def new_plan_view(request: Request, template: str | None = Query(None, description="a template (or give upload)"),
                  upload: str | None = Query(None, description="an uploaded scan's id (POST /api/anatomy; or give template)"),
                  method: str = "rf", target: str | None = Query(None, description="the target nerve (required on a scan: one of the upload's targets)"),
                  approach: str = "parallel", side: str | None = Query(None, description="a scan: left or right, where the target has sides")) -> PlanChecked:  # fmt: skip

    if (template is None) == (upload is None):
        raise ApiError(422, ["query", "template"], f"template = {template!r}, upload = {upload!r}: give a template or an upload, one of them")
    stored = None
    if template is not None:
        _template(template)
        if side is not None:
            raise ApiError(422, ["query", "side"], f"side = {side!r}: only used with an upload (a template's targets have their side)")
    else:
        stored = get_upload_or_404(request, upload, ["query", "upload"])
    try:
        if stored is None:
            plan = new_plan(template, target, approach, method)
        else:
            files = stored.anatomy(shown=False)
            plan = new_segmentation_plan(files["segmentation"], files.get("names"), files.get("image"), side, target, approach, method, base_dir=str(stored.folder))
        context = prepare(plan)
    except ValidationError as error:
        message = hide_paths(str(error), stored)
        raise ApiError(422, field_loc(message, ["query"]), message) from None
    return plan_checked(Checked(plan, context, stored))


@router.post("/plans/check", summary="validate a plan without solving: the resolved plan, its TOML and the needle pose", response_model=PlanChecked)
def check_plan(body: PlanRequest, request: Request) -> PlanChecked:
    return plan_checked(checked_plan(body.plan, body.monte_carlo, uploads=_uploads(request)))


def links(job_id: str, kind: str) -> dict[str, str]:
    base = f"/api/jobs/{job_id}"
    return {"self": base, "events": f"{base}/events"} | ({"report": f"{base}/report", "figure": f"{base}/figure.png"} if kind == "simulate" else {})


def _accepted(job) -> JobAccepted:
    return JobAccepted(job_id=job.id, kind=job.kind, status=job.status, links=links(job.id, job.kind))


@router.post("/simulate", status_code=202, response_model=JobAccepted, summary="start a simulation job (validated first; a bad plan is 422 and starts nothing)")
def simulate(body: PlanRequest, request: Request) -> JobAccepted:
    checked = checked_plan(body.plan, body.monte_carlo, uploads=_uploads(request))
    job = request.app.state.runner.submit_simulation(checked.plan.as_dict(), shown_plan(checked.plan, checked.upload)[1], body.model_dump(exclude_none=True),
                                                     upload_job(checked.plan, checked.upload))  # fmt: skip
    return _accepted(job)


def compare_options(body: CompareRequest, uploads: Uploads | None = None):
    """(compare_methods keyword arguments, base plan sections or None, the upload's job info or None), checked before any solve."""

    base, upload = None, None
    template, target = body.template, body.target
    scene = None
    if body.plan is not None:
        checked = checked_plan(body.plan, None, uploads=uploads)
        plan = checked.plan
        if template is not None and template != plan.anatomy.template:
            raise ApiError(422, ["body", "template"], f"template = {template!r}: differs from the plan's anatomy.template {plan.anatomy.template!r}; give one")
        template, target, base, upload = plan.anatomy.template, target or plan.target.nerve, plan.as_dict(), upload_job(checked.plan, checked.upload)
        scene = checked.context.scene if template is None else None
    if template is None and scene is None:
        raise ApiError(422, ["body", "template"], "template = None: give a template or a plan")
    try:
        if scene is None:
            check_choice("template", template, template_names())
            scene = load_template(template)
        if target is not None:
            check_choice("target", target, [n.name for n in scene.nerves])
        check_range("horizon_months", body.horizon_months, *HORIZON_RANGE_MONTHS, unit="months")
        for i, m in enumerate(body.methods or ()):
            check_choice(f"methods[{i}]", m, method_names())
    except ValidationError as error:
        raise ApiError(422, field_loc(str(error), ["body"]), str(error)) from None
    options = {"template": template, "target": target, "horizon_months": body.horizon_months, "samples": body.monte_carlo,
               "methods": tuple(body.methods) if body.methods else None}  # fmt: skip
    return options, base, upload


@router.post("/compare", status_code=202, response_model=JobAccepted, summary="start a comparison of every method at one target (a job)")
def compare(body: CompareRequest, request: Request) -> JobAccepted:
    options, base, upload = compare_options(body, _uploads(request))
    job = request.app.state.runner.submit_comparison(options, base, body.model_dump(exclude_none=True), upload)
    return _accepted(job)


@router.get("/version", summary="the version, the disclaimer, the store in use and the upload limit")
def version(request: Request) -> dict[str, Any]:
    store = getattr(request.app.state, "store", None)
    return {"version": __version__, "disclaimer": DISCLAIMER, "store": getattr(store, "url", None), "workers": request.app.state.runner.workers,
            "upload_limit_bytes": request.app.state.upload_limit_bytes}  # fmt: skip


def get_upload_or_404(request: Request, upload_id: str | None, loc: list) -> Upload:
    try:
        return _uploads(request).get(upload_id, loc[-1])
    except LookupError as error:
        raise ApiError(404, loc, str(error)) from None


__all__ = ["ApiError", "Checked", "CompareRequest", "JobAccepted", "PlanRequest", "PlanSections", "checked_plan", "error_body", "outcome_lights", "router"]
