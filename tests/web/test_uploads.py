"""Scans uploaded to the web planner (``POST /api/anatomy``) and plans on them, in process (FastAPI's
TestClient) with a real SQLite case store, a real uploads folder and real solves.

The real CT segmentation (TotalSegmentator) and its CT are uploaded: the summary, the targets
and the files' sha256 come back, the same upload is stored once, the viewer's volumes keep the
scanner's affine (RAS mm); the knee atlas (an LPS NRRD with a colour table) and a zipped DICOM
series and TotalSegmentator folder are read too. A bad file is a 422 naming the field, an
oversize body a 413, and neither stores anything; a plan naming any file that is not an
upload's (an absolute path, ``..``, another upload, an unknown id) is a 422; a block plan on the
uploaded CT runs as a job to its verdict and is saved as a case that names the upload by its
content hash, with no path of the server's folders in anything that comes back.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra (FastAPI) is not installed")
pytest.importorskip("sqlalchemy", reason="the store extra (SQLAlchemy) is not installed")
pytest.importorskip("python_multipart", reason="the web extra (python-multipart) is not installed")
import nibabel

from neurolysis.web.uploads import MAX_UPLOAD_BYTES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "anatomy"
CT = EXAMPLES / "totalsegmentator-example"
KNEE = EXAMPLES / "spl-knee-atlas"
TARGET = "L4 medial branch"


def uploads_folder(client) -> Path:
    return client.app.state.uploads.root


def stored(client) -> list[str]:
    """What the uploads folder holds: the stored uploads and anything left in .incoming."""
    root = uploads_folder(client)
    incoming = root / ".incoming"
    return client.app.state.uploads.stored() + (sorted(p.name for p in incoming.iterdir()) if incoming.is_dir() else [])


def ct_files(*, image: bool = True) -> list:
    files = [("segmentation", ("seg.nii.gz", (CT / "seg.nii.gz").read_bytes()))]
    return files + ([("image", ("ct.nii.gz", (CT / "ct.nii.gz").read_bytes()))] if image else [])


@pytest.fixture(scope="module")
def ct_upload(client) -> dict:
    started = time.perf_counter()
    response = client.post("/api/anatomy", files=ct_files(), data={"names": "totalsegmentator"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.text
    assert elapsed < 10.0, f"the upload of the CT took {elapsed:.1f} s"
    return response.json()


def test_upload_the_ct_segmentation_and_image(client, ct_upload):
    up = ct_upload
    upload_id = up["id"]
    assert len(upload_id) == 16 and int(upload_id, 16) >= 0 and up["created"] is True
    assert up["anatomy"] == {"segmentation": f"upload:{upload_id}/seg.nii.gz", "names": "totalsegmentator", "image": f"upload:{upload_id}/ct.nii.gz"}
    assert up["frame"] == "RAS" and "not for clinical decisions" in up["disclaimer"]
    files = {f["name"]: f for f in up["files"]}
    for name in ("seg.nii.gz", "ct.nii.gz"):
        assert files[name]["sha256"] == hashlib.sha256((CT / name).read_bytes()).hexdigest() and files[name]["bytes"] == (CT / name).stat().st_size
    summary = up["summary"]
    assert summary["grid"]["shape"] == [122, 101, 112] and summary["grid"]["spacing_mm"] == [3.0, 3.0, 3.0] and summary["grid"]["frame"] == "RAS"
    by_name = {s["name"]: s for s in summary["structures"]}
    assert by_name["vertebrae_L4"]["tissue"] == "bone" and by_name["aorta"]["tissue"] == "blood" and by_name["vertebrae_L4"]["voxels"] > 100
    assert summary["image"]["shape"] == [122, 101, 112] and summary["image"]["source"] == f"upload:{upload_id}/ct.nii.gz"
    assert summary["segmentation"] == [f"upload:{upload_id}/seg.nii.gz"]
    targets = {t["target"]: t for t in up["targets"]}
    assert set(targets[TARGET]["sides"]) == {"left", "right"} and targets[TARGET]["rule"] == "lumbar-medial-branch"
    folder = uploads_folder(client)
    assert str(folder) not in json.dumps(up), "the server's folders stay its own"
    assert stored(client) == [upload_id]
    assert client.get(f"/api/anatomy/{upload_id}").json() | {"created": True} == up

    again = client.post("/api/anatomy", files=ct_files(), data={"names": "totalsegmentator"})
    assert again.status_code == 200 and again.json()["id"] == upload_id and again.json()["created"] is False
    assert stored(client) == [upload_id], "the same upload is stored once"

    viewer = up["viewer"]
    assert viewer["stride"] == [1, 1, 1] and viewer["note"].startswith("every voxel") and viewer["frame"] == "RAS"
    seg = nibabel.load(CT / "seg.nii.gz")
    labels = client.get(viewer["labels_url"])
    assert labels.status_code == 200 and labels.headers["content-type"] == "application/gzip"
    volume = nibabel.Nifti1Image.from_bytes(gzip.decompress(labels.content))
    assert volume.shape == seg.shape and np.allclose(volume.affine, seg.affine, atol=1e-4), "the viewer's mm are the scanner's"
    regions = {r["index"]: r for r in viewer["regions"]}
    values = np.asarray(volume.dataobj)
    assert set(np.unique(values).tolist()) <= set(regions) and regions[0]["name"] == "background"
    l4 = next(r for r in viewer["regions"] if r["name"] == "vertebrae_L4")
    assert l4["tissue"] == "bone" and l4["rgb"] == [235, 235, 225]
    assert np.array_equal(values == l4["index"], np.asarray(seg.dataobj) == 28), "vertebrae_L4 (label 28 of the task total) in the same voxels"
    image = nibabel.Nifti1Image.from_bytes(gzip.decompress(client.get(viewer["image_url"]).content))
    assert image.get_data_dtype() == np.int16 and np.allclose(image.affine, seg.affine, atol=1e-4)
    assert np.array_equal(np.asarray(image.dataobj), np.asarray(nibabel.load(CT / "ct.nii.gz").dataobj))
    assert image.header["cal_min"] < 0 < image.header["cal_max"]


@pytest.fixture(scope="module")
def knee_upload(client) -> dict:
    response = client.post("/api/anatomy", files=[("segmentation", ("knee_seg.nrrd", (KNEE / "knee_seg.nrrd").read_bytes())),
                                                  ("names_table", ("knee.ctbl", (KNEE / "knee.ctbl").read_bytes()))])  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()


def test_a_knee_in_lps_with_a_colour_table(client, knee_upload):
    """The knee atlas: an LPS NRRD named by a Slicer colour table; the viewer's volume is RAS and subsampled to 4 million voxels."""
    up = knee_upload
    assert up["frame"] == "LPS" and up["anatomy"] == {"segmentation": f"upload:{up['id']}/knee_seg.nrrd", "names": f"upload:{up['id']}/knee.ctbl"}
    assert up["viewer"]["image_url"] is None and up["viewer"]["stride"] == [3, 3, 1] and "512 x 512 x 119" in up["viewer"]["note"]
    assert "common peroneal nerve" in {t["target"] for t in up["targets"]}
    volume = nibabel.Nifti1Image.from_bytes(gzip.decompress(client.get(up["viewer"]["labels_url"]).content))
    assert volume.shape == (171, 171, 119) and np.prod(volume.shape) <= 4_000_000
    lo, hi = np.asarray(up["summary"]["grid"]["extent_mm"])  # LPS
    corner = volume.affine @ [0, 0, 0, 1]
    lps_corner = np.array([-corner[0], -corner[1], corner[2]])
    assert np.all(lps_corner >= lo - 1) and np.all(lps_corner <= hi + 1), "RAS in the file, the LPS scan's own mm negated in x and y"
    assert client.get(f"/api/anatomy/{up['id']}/image.nii.gz").status_code == 404
    fresh = client.get("/api/plans/new", params={"upload": up["id"], "target": "common peroneal nerve", "method": "rf"})
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["frame"] == "LPS" and "knee.ctbl" in fresh.json()["plan_toml"]


def dicom_zip() -> bytes:
    """The example CT as a zipped DICOM series (one file per slice, written by SimpleITK)."""
    import SimpleITK as sitk

    image = sitk.Cast(sitk.ReadImage(str(CT / "ct.nii.gz")), sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series, direction = "1.2.826.0.1.3680043.2.1125.17", image.GetDirection()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive, __import__("tempfile").TemporaryDirectory() as tmp:
        for k in range(image.GetDepth()):
            plane = image[:, :, k]
            tags = {"0008|0060": "CT", "0020|000e": series, "0020|000d": series + ".0", "0020|0013": str(k), "0008|0018": f"{series}.{k + 1}",
                    "0020|0032": "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))), "0020|0037": "\\".join(map(str, direction[:6])),
                    "0018|0050": "3", "0028|1052": "0", "0028|1053": "1"}  # fmt: skip
            for tag, value in tags.items():
                plane.SetMetaData(tag, value)
            path = f"{tmp}/IM{k:04d}.dcm"
            writer.SetFileName(path)
            writer.Execute(plane)
            archive.write(path, f"DICOM/series/IM{k:04d}")
    return out.getvalue()


def masks_zip() -> bytes:
    """The example segmentation as a zipped TotalSegmentator output folder (one mask per structure)."""
    from neurolysis.anatomy.imaging.names import resolve_names

    seg = nibabel.load(CT / "seg.nii.gz")
    data = np.asarray(seg.dataobj)
    present = {int(v): 1 for v in np.unique(data) if v}
    names = resolve_names("totalsegmentator", {}, present).names
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for label in present:
            archive.writestr(f"segmentations/{names[label]}.nii.gz", gzip.compress(nibabel.Nifti1Image((data == label).astype(np.uint8), seg.affine).to_bytes()))
        archive.writestr("__MACOSX/segmentations/._liver.nii.gz", b"resource fork")
    return out.getvalue()


def test_zipped_dicom_series_and_totalsegmentator_folder(client):
    response = client.post("/api/anatomy", files=[("segmentation", ("segmentations.zip", masks_zip())), ("image", ("ct-dicom.zip", dicom_zip()))])
    assert response.status_code == 201, response.text
    up = response.json()
    assert up["anatomy"] == {"segmentation": f"upload:{up['id']}/segmentations", "image": f"upload:{up['id']}/ct-dicom"}  # names embedded in the folder
    assert up["summary"]["image"]["modality"] == "CT" and len(up["summary"]["structures"]) == 61
    files = {f["name"]: f for f in up["files"]}
    assert files["segmentations"]["unzipped_files"] == 61 and files["ct-dicom"]["unzipped_files"] == 112
    image = nibabel.Nifti1Image.from_bytes(gzip.decompress(client.get(up["viewer"]["image_url"]).content))
    assert np.array_equal(np.asarray(image.dataobj), np.asarray(nibabel.load(CT / "ct.nii.gz").dataobj)), "the DICOM series on the segmentation's grid is the CT"
    fresh = client.get("/api/plans/new", params={"upload": up["id"], "target": TARGET, "side": "right", "method": "block"})
    assert fresh.status_code == 200, fresh.text


def nifti_bytes(data: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nibabel.Nifti1Image(data, affine).to_bytes())


SEG = nibabel.load(CT / "seg.nii.gz")
FAR_AWAY = SEG.affine.copy()
FAR_AWAY[:3, 3] += 5000.0
DETACHED_NRRD = b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 2\nspace: left-posterior-superior\nspace directions: (1,0,0) (0,1,0) (0,0,1)\nencoding: raw\ndata file: ../../cases.db\n\n"
TWO_OF_A_NAME = io.BytesIO()
with zipfile.ZipFile(TWO_OF_A_NAME, "w") as _z:
    _z.writestr("a/liver.nii.gz", b"1")
    _z.writestr("b/liver.nii.gz", b"2")
TWO_OF_A_NAME = TWO_OF_A_NAME.getvalue()
BAD_UPLOADS = [  # (files, form data, the field's loc, words in the message)
    ([("segmentation", ("seg.nii.gz", b"not a NIfTI file at all"))], {"names": "totalsegmentator"}, ["body", "segmentation"], "not a readable image"),
    ([("segmentation", ("seg.png", b"\x89PNG"))], {}, ["body", "segmentation"], "must end in .nii.gz"),
    ([("segmentation", ("seg.nii.gz", (CT / "seg.nii.gz").read_bytes()))], {"names": "/etc/passwd"}, ["body", "names[0]"], "allowed values are"),
    ([("segmentation", ("seg.nii.gz", (CT / "seg.nii.gz").read_bytes())), ("names_table", ("knee.ctbl", (KNEE / "knee.ctbl").read_bytes()))],
     {"names": "totalsegmentator"}, ["body", "names_table"], "no names value is 'table'"),
    ([("segmentation", ("seg.nii.gz", nifti_bytes(np.zeros((4, 4, 4), np.uint8), SEG.affine)))], {"names": "totalsegmentator"}, ["body", "segmentation"], "every voxel is 0"),
    ([("segmentation", ("evil.nrrd", DETACHED_NRRD))], {"names": "totalsegmentator"}, ["body", "segmentation"], "separate data file"),
    ([("segmentation", ("seg.nii.gz", (CT / "seg.nii.gz").read_bytes())), ("image", ("ct.nii.gz", nifti_bytes(np.zeros((8, 8, 8), np.int16), FAR_AWAY)))],
     {"names": "totalsegmentator"}, ["body", "image"], "does not overlap"),
    ([("segmentation", ("masks.zip", b"PK\x03\x04 not really a zip"))], {}, ["body", "segmentation"], "not a readable zip"),
    ([("segmentation", ("masks.zip", TWO_OF_A_NAME))], {}, ["body", "segmentation"], "two files named 'liver.nii.gz'"),
    ([("segmentation", ("a.nii.gz", (CT / "seg.nii.gz").read_bytes())), ("image", ("a.nii.gz", (CT / "ct.nii.gz").read_bytes()))],
     {"names": "totalsegmentator"}, ["body", "image"], "has the same name"),
    ([("image", ("ct.nii.gz", (CT / "ct.nii.gz").read_bytes()))], {}, ["body", "segmentation"], "Field required"),
]  # fmt: skip


@pytest.mark.parametrize(("files", "data", "loc", "words"), BAD_UPLOADS, ids=[f"{i}-{w[:20]}" for i, (*_, w) in enumerate(BAD_UPLOADS)])
def test_a_bad_upload_is_a_422_naming_the_field_and_stores_nothing(client, ct_upload, files, data, loc, words):
    before = stored(client)
    response = client.post("/api/anatomy", files=files, data=data)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert len(detail) == 1 and detail[0]["loc"] == loc and words in detail[0]["msg"], detail
    assert "\n" not in detail[0]["msg"] and str(uploads_folder(client)) not in detail[0]["msg"]
    assert stored(client) == before


def test_an_oversize_body_is_a_413_and_stores_nothing(client, ct_upload):
    before = stored(client)
    big = b"\0" * (MAX_UPLOAD_BYTES + 1)
    declared = client.post("/api/anatomy", content=big, headers={"content-type": "multipart/form-data; boundary=x"})
    assert declared.status_code == 413 and declared.json()["detail"][0]["loc"] == ["body"]
    assert declared.json()["detail"][0]["msg"] == f"body: {MAX_UPLOAD_BYTES + 1} bytes; an upload (POST /api/anatomy) is at most {MAX_UPLOAD_BYTES} bytes (64 MB)"
    chunk = b'--x\r\nContent-Disposition: form-data; name="segmentation"; filename="seg.nii.gz"\r\n\r\n' + b"\0" * 2**20

    def chunks():  # no Content-Length: counted as it arrives
        yield chunk
        yield from (b"\0" * 2**20 for _ in range(MAX_UPLOAD_BYTES // 2**20 + 1))

    streamed = client.post("/api/anatomy", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert streamed.status_code == 413 and streamed.json()["detail"][0]["msg"].startswith(f"body: more than {MAX_UPLOAD_BYTES} bytes")
    plan = client.post("/api/plans/check", content=b'{"plan": {"anatomy": {"template": "' + b"x" * 2**21 + b'"}}}', headers={"content-type": "application/json"})
    assert plan.status_code == 413 and "other than an upload is at most 1048576 bytes" in plan.json()["detail"][0]["msg"]
    assert stored(client) == before


def scan_plan(client, upload_id: str, method: str = "block") -> dict:
    fresh = client.get("/api/plans/new", params={"upload": upload_id, "target": TARGET, "side": "right", "method": method})
    assert fresh.status_code == 200, fresh.text
    return fresh.json()


def _anatomy(plan: dict, **values) -> dict:
    out = copy.deepcopy(plan)
    out["anatomy"].update(values)
    return out


def test_a_plan_names_only_an_uploads_files(client, ct_upload, knee_upload):
    upload_id, knee = ct_upload["id"], knee_upload["id"]
    plan = scan_plan(client, upload_id)["plan"]
    bad = [  # (plan, the field's loc, words)
        (_anatomy(plan, segmentation=str(CT / "seg.nii.gz")), ["anatomy", "segmentation"], "the server reads no other file"),
        (_anatomy(plan, segmentation=f"upload:{upload_id}/../../cases.db"), ["anatomy", "segmentation"], "the server reads no other file"),
        (_anatomy(plan, segmentation="../seg.nii.gz"), ["anatomy", "segmentation"], "the server reads no other file"),
        (_anatomy(plan, image="/etc/passwd"), ["anatomy", "image"], "the server reads no other file"),
        (_anatomy(plan, names="/etc/passwd"), ["anatomy", "names"], "the server reads no other file"),
        (_anatomy(plan, segmentation=[f"upload:{upload_id}/seg.nii.gz", "vertebrae_body.nii.gz"], names=["totalsegmentator", "totalsegmentator:vertebrae_body"]),
         ["anatomy", "segmentation[1]"], "the server reads no other file"),
        (_anatomy(plan, segmentation="upload:0123456789abcdef/seg.nii.gz"), ["anatomy", "segmentation"], "no such upload"),
        (_anatomy(plan, segmentation=f"upload:{upload_id}/manifest.json"), ["anatomy", "segmentation"], "has no file 'manifest.json'"),
        (_anatomy(plan, image=f"upload:{knee}/knee_seg.nrrd"), ["anatomy", "image"], "another upload"),
        (_anatomy(plan, labels="/etc/passwd", labels_map="x.toml"), ["anatomy", "labels"], "not accepted over HTTP"),
    ]  # fmt: skip
    for body, loc, words in bad:
        for path in ("/api/plans/check", "/api/simulate"):
            response = client.post(path, json={"plan": body})
            assert response.status_code == 422, (path, body["anatomy"], response.text)
            detail = response.json()["detail"][0]
            assert detail["loc"] == ["body", "plan", *loc] and words in detail["msg"], (body["anatomy"], detail)
    for params, loc, words in (({"upload": "../../etc"}, ["query", "upload"], "no such upload"), ({"upload": upload_id, "template": "knee-genicular"}, ["query", "template"], "one of them"),
                               ({"upload": upload_id, "target": "sciatic nerve"}, ["query", "target", "nerve"], "no landmark rule places it"),
                               ({"upload": upload_id, "target": TARGET}, ["query", "anatomy", "side"], "needs a side")):  # fmt: skip
        response = client.get("/api/plans/new", params=params)
        assert response.status_code in (404, 422) and response.json()["detail"][0]["loc"] == loc and words in response.json()["detail"][0]["msg"], response.text
    for path in ("/api/anatomy/0123456789abcdef", "/api/anatomy/..%2F..%2Fetc", "/api/anatomy/0123456789abcdef/labels.nii.gz", "/api/anatomy/0123456789abcdef/image.nii.gz"):
        assert client.get(path).status_code == 404, path


def test_a_job_on_the_uploaded_ct_runs_to_its_verdict_and_is_saved(client, ct_upload):
    """Block at the right L4 medial branch of the uploaded CT (~2 s solve): a moved tip (explicit, in
    the scan's RAS mm) is checked by the server, the job runs, the case names the upload by its hash."""
    upload_id, folder = ct_upload["id"], str(uploads_folder(client))
    fresh = scan_plan(client, upload_id)
    assert fresh["frame"] == "RAS" and fresh["plan"]["anatomy"]["side"] == "right"
    lo, hi = np.asarray(fresh["region_mm"])
    tip = np.asarray(fresh["placement"]["tip_mm"])
    assert np.all(lo < tip) and np.all(tip < hi)
    moved = copy.deepcopy(fresh["plan"])
    moved["placement"] = {"approach": "explicit", "tip_mm": (tip + [0.0, 0.0, 1.5]).round(1).tolist(), "direction": fresh["placement"]["direction"]}
    checked = client.post("/api/plans/check", json={"plan": moved})
    assert checked.status_code == 200, checked.text
    assert checked.json()["placement"]["tip_mm"] == pytest.approx((tip + [0, 0, 1.5]).round(1).tolist(), abs=1e-3)
    assert f'segmentation = "upload:{upload_id}/seg.nii.gz"' in checked.json()["plan_toml"] and 'approach = "explicit"' in checked.json()["plan_toml"]
    l4 = np.argwhere(np.asarray(SEG.dataobj) == 28).mean(axis=0)  # the middle of the L4 body (label 28)
    in_bone = copy.deepcopy(moved)
    in_bone["placement"]["tip_mm"] = (SEG.affine @ [*l4, 1])[:3].round(1).tolist()
    refused = client.post("/api/plans/check", json={"plan": in_bone})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][:3] == ["body", "plan", "placement"], refused.text

    before = len(client.app.state.store.list())
    started = time.perf_counter()
    accepted = client.post("/api/simulate", json={"plan": moved})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    while (job := client.get(f"/api/jobs/{job_id}").json())["status"] not in ("done", "failed"):
        assert time.perf_counter() - started < 120, "the job did not finish"
        time.sleep(0.1)
    assert job["status"] == "done", job["error"]
    outcome = job["result"]
    assert outcome["method"] == "block" and outcome["target"]["pain_block"] is True and outcome["anatomy"]["frame"] == "RAS"
    assert outcome["anatomy"]["files_sha256"] == {f"upload:{upload_id}/seg.nii.gz": hashlib.sha256((CT / "seg.nii.gz").read_bytes()).hexdigest(),
                                                  f"upload:{upload_id}/ct.nii.gz": hashlib.sha256((CT / "ct.nii.gz").read_bytes()).hexdigest()}  # fmt: skip
    assert outcome["settings"]["anatomy"]["segmentation"] == f"upload:{upload_id}/seg.nii.gz" and job["plan"] == outcome["settings"]
    assert outcome["placement"]["tip_mm"] == pytest.approx(moved["placement"]["tip_mm"], abs=1e-6)
    report = client.get(f"/api/jobs/{job_id}/report").text
    text = json.dumps(job)
    assert folder not in text, text[max(0, text.find(folder) - 300) : text.find(folder) + 100]
    assert folder not in report, report[max(0, report.find(folder) - 300) : report.find(folder) + 100]
    assert "seg.nii.gz" in report, [report[m.start() - 200 : m.end() + 50] for m in __import__("re").finditer("nii", report)][:3]

    saved = client.post("/api/cases", json={"job_id": job_id, "tags": ["scan"]})
    assert saved.status_code == 201, saved.text
    case = saved.json()
    assert f'segmentation = "upload:{upload_id}/seg.nii.gz"' in case["plan_toml"] and case["settings"]["anatomy"]["image"] == f"upload:{upload_id}/ct.nii.gz"
    assert len(client.app.state.store.list()) == before + 1
    again = client.post("/api/plans/check", json={"plan": case["settings"]})  # the saved plan is a valid request again
    assert again.status_code == 200 and again.json()["placement"]["tip_mm"] == pytest.approx(moved["placement"]["tip_mm"], abs=1e-3)
    compare = client.post("/api/compare", json={"plan": moved, "methods": ["block"], "horizon_months": 6})
    assert compare.status_code == 202, compare.text
    while (job := client.get(f"/api/jobs/{compare.json()['job_id']}").json())["status"] not in ("done", "failed"):
        assert time.perf_counter() - started < 180, "the comparison did not finish"
        time.sleep(0.1)
    assert job["status"] == "done", job["error"]
    assert job["result"]["template"] == "lumbar-medial-branch" and job["result"]["target"] == TARGET and folder not in json.dumps(job)


def test_serve_checks_the_uploads_folder(tmp_path, capsys):
    from neurolysis.cli import main

    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert main(["serve", "--uploads", str(not_a_folder)]) == 2
    assert capsys.readouterr().err == f"neurolysis: error: serve --uploads = {str(not_a_folder)!r}: not a folder\n"
