"""``/api/anatomy``: upload a patient's scan (its segmentation, the names of its labels, an optional
CT or MR) and read it back: the plan's ``[anatomy]`` files (``upload:<id>/<file>``), the ``anatomy
inspect`` summary, the supported targets, and the volumes for the page's viewer (:mod:`.volumes`).

Storage, the checks of every file and the content address are :mod:`.uploads`'; the body's size
limit is the application's (:class:`~neurolysis.web.app.BodyLimit`: 413 before it is read).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from pydantic import BaseModel, Field

from neurolysis.about import DISCLAIMER
from neurolysis.validation import ValidationError
from neurolysis.web.api import ERRORS, ApiError, _uploads, field_loc, get_upload_or_404
from neurolysis.web.uploads import MAX_UPLOAD_BYTES, Upload, manifest_files
from neurolysis.web.volumes import scan_image_nifti, scan_label_nifti, scan_view, segmentation_regions

router = APIRouter(prefix="/api/anatomy", responses=ERRORS, tags=["anatomy"])
SEGMENTATION_HELP = "label maps in layer order (NIfTI .nii/.nii.gz, NRRD/.seg.nrrd, .mha; the first is the main layer), or a .zip of a TotalSegmentator folder"
NAMES_HELP = "names of the labels, one for all files or one per file: totalsegmentator, totalsegmentator-mr, totalsegmentator:<task>, embedded, or table (the names_table)"
TABLE_HELP = "a names table: Slicer colour table .ctbl, or .tsv/.txt/.csv of label, name[, tissue]"
IMAGE_HELP = "the CT or MR: NIfTI, NRRD, .mha, or a .zip of one DICOM series"


class AnatomyUpload(BaseModel):
    """An uploaded scan: its id (the content hash), the plan's [anatomy] files, what was read and what can be planned on it."""

    id: str = Field(description="16 hex digits of the sha256 of the upload's manifest (files, names, image): the same upload has the same id")
    created: bool = Field(description="whether this request stored it (false: it was stored already)")
    anatomy: dict[str, Any] = Field(description="the plan's [anatomy] section for it: segmentation, names, image as upload:<id>/<file> (add side)")
    files: list[dict[str, Any]] = Field(description="each stored file: name, field, bytes, sha256, the name it was uploaded as")
    summary: dict[str, Any] = Field(description="`neurolysis anatomy inspect --json`: grid, structures with tissues, unmapped names, image, warnings")
    targets: list[dict[str, Any]] = Field(description="the target nerves its landmarks support: target, sides, rule, description")
    frame: str = Field(description="RAS or LPS: the frame of the scan's coordinates and of every plan on it")
    viewer: dict[str, Any] = Field(description="labels_url, image_url (or null), regions (index, name, tissue, rgb) and the volumes' shape, voxel, stride and note")
    disclaimer: str


def upload_view(request: Request, upload: Upload, created: bool) -> AnatomyUpload:
    anatomy, summary, targets = _uploads(request).read(upload)
    base = f"/api/anatomy/{upload.id}"
    viewer = scan_view(anatomy) | {"labels_url": f"{base}/labels.nii.gz", "image_url": f"{base}/image.nii.gz" if anatomy.image is not None else None,
                                   "regions": segmentation_regions(anatomy)[0]}  # fmt: skip
    return AnatomyUpload(id=upload.id, created=created, anatomy=upload.anatomy(), files=manifest_files(upload), summary=summary, targets=targets,
                         frame=anatomy.frame, viewer=viewer, disclaimer=DISCLAIMER)  # fmt: skip


def _file(part: UploadFile | None) -> tuple[str | None, Any] | None:
    """(file name, file object) of a form part, None for an empty one (a file input left empty)."""
    if part is None or (not part.filename and not part.size):
        return None
    return part.filename, part.file


@router.post("", status_code=201, response_model=AnatomyUpload,
             summary=f"upload a patient's scan (multipart, at most {MAX_UPLOAD_BYTES // 2**20} MB): segmentation files in layer order, names, an optional image",
             responses={200: {"description": "the same upload was stored already", "model": AnatomyUpload},
                        413: {"description": f"the body is larger than the limit ({MAX_UPLOAD_BYTES // 2**20} MB)"}})  # fmt: skip
def upload_anatomy(request: Request, response: Response,
                   segmentation: Annotated[list[UploadFile], File(description=SEGMENTATION_HELP)],
                   names: Annotated[list[str] | None, Form(description=NAMES_HELP)] = None,
                   names_table: Annotated[UploadFile | None, File(description=TABLE_HELP)] = None,
                   image: Annotated[UploadFile | None, File(description=IMAGE_HELP)] = None) -> AnatomyUpload:  # fmt: skip
    """Stored once by content under the server's uploads folder, after reading it in full
    (``load_anatomy``, the landmark rules); a file that cannot be read is 422 and nothing is stored."""
    layers = [f for f in (_file(part) for part in segmentation) if f is not None]
    try:
        upload, created = _uploads(request).add(layers, list(names or []), _file(names_table), _file(image))
    except ValidationError as error:
        loc = field_loc(str(error), ["body"])
        raise ApiError(422, ["body", *(loc[2:3] if loc[1:2] == ["anatomy"] else loc[1:2])], str(error)) from None
    if not created:
        response.status_code = 200
    return upload_view(request, upload, created)


@router.get("/{upload_id}", response_model=AnatomyUpload, summary="an uploaded scan: its plan files, summary, targets and viewer volumes")
def get_anatomy(upload_id: str, request: Request) -> AnatomyUpload:
    return upload_view(request, get_upload_or_404(request, upload_id, ["path", "upload_id"]), False)


@router.get("/{upload_id}/labels.nii.gz", response_class=Response, responses={200: {"content": {"application/gzip": {}}}},
            summary="an uploaded segmentation's regions (coloured by tissue) as gzipped NIfTI: RAS mm, the scanner's, at most 4 million voxels")  # fmt: skip
def get_anatomy_labels(upload_id: str, request: Request) -> Response:
    upload = get_upload_or_404(request, upload_id, ["path", "upload_id"])
    return Response(scan_label_nifti(_uploads(request).read(upload)[0]), media_type="application/gzip", headers={"Cache-Control": "max-age=86400"})


@router.get("/{upload_id}/image.nii.gz", response_class=Response, responses={200: {"content": {"application/gzip": {}}}},
            summary="an uploaded scan's image (CT or MR) on the segmentation's grid as gzipped NIfTI: RAS mm, at most 4 million voxels")  # fmt: skip
def get_anatomy_image(upload_id: str, request: Request) -> Response:
    upload = get_upload_or_404(request, upload_id, ["path", "upload_id"])
    data = scan_image_nifti(_uploads(request).read(upload)[0])
    if data is None:
        raise ApiError(404, ["path", "upload_id"], f"upload_id = {upload_id!r}: uploaded without an image")
    return Response(data, media_type="application/gzip", headers={"Cache-Control": "max-age=86400"})


__all__ = ["AnatomyUpload", "router", "upload_view"]
