"""Reading segmentations and images as users have them (issue 17): hand-computed affines in RAS and
LPS, flipped and permuted axes, the formats (NIfTI, NRRD, .seg.nrrd, mask folders, DICOM series),
names tables, and one-line refusals of bad input."""

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

from neurolysis.anatomy.imaging.load import load_anatomy
from neurolysis.anatomy.imaging.names import resolve_names
from neurolysis.anatomy.imaging.readers import read_image, read_segmentation, resample_image
from neurolysis.anatomy.imaging.volume import to_frame
from neurolysis.validation import ValidationError

SHAPE = (6, 5, 4)
MARK = (4, 1, 2)  # the voxel labelled 7 (i, j, k)


def _labels() -> np.ndarray:
    data = np.zeros(SHAPE, np.uint8)
    data[0, 0, 0] = 1
    data[MARK] = 7
    return data


def _nifti(path: Path, affine: np.ndarray, data=None) -> Path:
    nibabel.save(nibabel.Nifti1Image(_labels() if data is None else data, affine), str(path))
    return path


def _infinite_sform(path: Path) -> Path:
    header = nibabel.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4)).header
    header["srow_z"] = [0.0, 0.0, 1.0, np.inf]
    nibabel.save(nibabel.Nifti1Image(np.ones((4, 4, 4), np.uint8), None, header), str(path))  # affine None: the header is written as it is
    return path


def _nrrd(path: Path, data: np.ndarray, spacing, origin, direction, space: str | None = None, metadata: dict | None = None) -> Path:
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(np.asarray(direction, float).ravel().tolist())
    for k, v in (metadata or {}).items():
        image.SetMetaData(k, v)
    sitk.WriteImage(image, str(path))
    if space is not None:  # rewrite the header's space field (ITK writes left-posterior-superior)
        text = path.read_bytes()
        path.write_bytes(text.replace(b"space: left-posterior-superior", f"space: {space}".encode()))
    return path


def _where(seg, label: int) -> np.ndarray:
    return seg.grid.to_mm(np.argwhere(seg.labels == label))[0]


# ----------------------------------------------------------------------------- affines and frames
@pytest.mark.parametrize(
    ("affine", "expected", "orientation"),
    [
        (np.diag([2.0, 3.0, 4.0, 1.0]) + np.c_[np.zeros((4, 3)), [10, 20, 30, 0]], [10 + 2 * 4, 20 + 3 * 1, 30 + 4 * 2], "RAS"),
        (np.diag([-2.0, 3.0, -4.0, 1.0]) + np.c_[np.zeros((4, 3)), [10, 20, 30, 0]], [10 - 2 * 4, 20 + 3 * 1, 30 - 4 * 2], "LAI"),  # negative spacing: flipped axes
        (np.array([[0, 0, 2.0, 5], [3.0, 0, 0, 6], [0, -4.0, 0, 7], [0, 0, 0, 1]]), [5 + 2 * 2, 6 + 3 * 4, 7 - 4 * 1], "AIR"),  # permuted: i along y, j along -z, k along x
    ],
)
def test_nifti_affines_give_the_hand_computed_scanner_point(tmp_path, affine, expected, orientation):
    seg = read_segmentation(_nifti(tmp_path / "s.nii.gz", affine))
    assert seg.grid.frame == "RAS"
    np.testing.assert_allclose(_where(seg, 7), expected, atol=1e-6)
    assert seg.grid.orientation() == orientation


def test_an_oblique_affine_is_applied_as_it_is(tmp_path):
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]) * 1.5
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = rotation, [-3, 4, 5]
    seg = read_segmentation(_nifti(tmp_path / "s.nii", affine))
    np.testing.assert_allclose(_where(seg, 7), rotation @ np.array(MARK, float) + [-3, 4, 5], atol=1e-5)


def test_nrrd_in_lps_and_ras_and_the_same_physical_point(tmp_path):
    data = _labels()
    lps = read_segmentation(_nrrd(tmp_path / "lps.nrrd", data, (1.0, 2.0, 3.0), (5.0, 6.0, 7.0), np.eye(3)))
    assert lps.grid.frame == "LPS"
    np.testing.assert_allclose(_where(lps, 7), [5 + 4, 6 + 2, 7 + 6], atol=1e-6)
    # the same voxel grid saved as NIfTI reads in RAS: x and y change sign, the physical point is the same
    ras_affine = np.diag([-1.0, -2.0, 3.0, 1.0])
    ras_affine[:3, 3] = [-5.0, -6.0, 7.0]
    ras = read_segmentation(_nifti(tmp_path / "ras.nii.gz", ras_affine, data))
    assert ras.grid.frame == "RAS"
    np.testing.assert_allclose(to_frame(_where(ras, 7), "RAS", "LPS"), _where(lps, 7), atol=1e-6)
    # an NRRD that says its space is RAS keeps RAS coordinates
    nrrd_ras = read_segmentation(_nrrd(tmp_path / "ras.nrrd", data, (1.0, 2.0, 3.0), (5.0, 6.0, 7.0), np.eye(3), space="right-anterior-superior"))
    assert nrrd_ras.grid.frame == "RAS"


def test_the_shared_ct_and_knee_frames():
    root = Path(__file__).resolve().parents[2] / "examples" / "anatomy"
    ct = read_segmentation(root / "totalsegmentator-example" / "seg.nii.gz")
    assert ct.grid.frame == "RAS" and ct.grid.orientation() == "RAS"
    np.testing.assert_allclose(ct.grid.affine[:3, 3], [-177.95632935, 11.31900024, 94.30175781], atol=1e-4)  # the file's sform (README)
    knee = read_segmentation(root / "spl-knee-atlas" / "knee_seg.nrrd")
    assert knee.grid.frame == "LPS" and knee.grid.orientation() == "LAS"
    np.testing.assert_allclose(knee.grid.affine[:3, 3], [-70.86042022586585, 70.86042022586585, -59.0], atol=1e-6)


# ----------------------------------------------------------------------------- formats and names
def test_a_totalsegmentator_folder_of_masks(tmp_path):
    folder = tmp_path / "ts"
    folder.mkdir()
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    for name, voxel in (("vertebrae_L4", (1, 1, 1)), ("aorta", (3, 2, 1)), ("rib_left_11", (4, 4, 3))):
        mask = np.zeros(SHAPE, np.uint8)
        mask[voxel] = 1
        nibabel.save(nibabel.Nifti1Image(mask, affine), str(folder / f"{name}.nii.gz"))
    a = load_anatomy(str(folder))
    names = {s.name: s for s in a.layers[0].structures.values()}
    assert set(names) == {"vertebrae_L4", "aorta", "rib_left_11"}
    assert names["vertebrae_L4"].level == "L4" and names["aorta"].critical == "artery" and names["rib_left_11"].side == "left"
    other = np.zeros((3, 3, 3), np.uint8)
    other[1, 1, 1] = 1
    nibabel.save(nibabel.Nifti1Image(other, affine), str(folder / "liver.nii.gz"))
    with pytest.raises(ValidationError, match=r"on another grid"):
        load_anatomy(str(folder))


def test_embedded_segment_names_of_a_seg_nrrd(tmp_path):
    meta = {"Segment0_Name": "femur", "Segment0_LabelValue": "1", "Segment0_Layer": "0", "Segment1_Name": "popliteal artery", "Segment1_LabelValue": "7", "Segment1_Layer": "0"}
    path = _nrrd(tmp_path / "knee.seg.nrrd", _labels(), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), metadata=meta)
    seg = read_segmentation(path)
    assert dict(seg.names) == {1: "femur", 7: "popliteal artery"}
    for spec in (None, "embedded"):
        a = load_anatomy(str(path), spec)
        kinds = {s.name: s.kind for s in a.layers[0].structures.values()}
        assert kinds == {"femur": "femur", "popliteal artery": "artery"}


def test_names_tables(tmp_path):
    present = {1: 10, 7: 3}
    tsv = tmp_path / "names.tsv"
    tsv.write_text("label\tname\ttissue\n1\tL4\n7\tmy_cyst\tcsf\n", encoding="utf-8")
    found = resolve_names(str(tsv), {}, present)
    assert dict(found.names) == {1: "L4", 7: "my_cyst"} and dict(found.tissues) == {7: "csf"}
    csv = tmp_path / "names.csv"
    csv.write_text("1,vertebrae_L4\n7,aorta\n99,liver\n", encoding="utf-8")
    found = resolve_names(str(csv), {}, present)
    assert found.warnings and "99" in found.warnings[0]
    nothing = tmp_path / "nothing.txt"
    nothing.write_text("50 liver\n51 spleen\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"none of its labels"):
        resolve_names(str(nothing), {}, present)
    broken = tmp_path / "broken.tsv"
    broken.write_text("1\tfemur\nabc\ttibia\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"line 2: label 'abc' is not a whole number"):
        resolve_names(str(broken), {}, present)
    binary = tmp_path / "binary.ctbl"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ValidationError, match=r"cannot be parsed"):
        resolve_names(str(binary), {}, present)
    with pytest.raises(ValidationError, match=r"the segmentation carries no names"):
        resolve_names(None, {}, present)


def test_a_table_tissue_overrides_the_rules(tmp_path):
    path = _nifti(tmp_path / "s.nii.gz", np.eye(4))
    table = tmp_path / "names.tsv"
    table.write_text("1\taorta\n7\tliver\tfat\n", encoding="utf-8")
    a = load_anatomy(str(path), str(table), tissues={"aorta": "muscle"})
    by_name = {s.name: s for s in a.layers[0].structures.values()}
    assert by_name["liver"].tissue == "fat" and by_name["aorta"].tissue == "muscle"


# ----------------------------------------------------------------------------- images
def test_an_image_on_another_grid_is_resampled_onto_the_segmentation(tmp_path):
    seg_path = _nifti(tmp_path / "s.nii.gz", np.diag([2.0, 2.0, 2.0, 1.0]))
    x, y, z = np.meshgrid(np.arange(12), np.arange(10), np.arange(8), indexing="ij")
    ramp = (3.0 * x + 0.0 * y + 0.0 * z).astype(np.float32)  # value = 3 * (x in mm) on a 1 mm grid
    nibabel.save(nibabel.Nifti1Image(ramp, np.eye(4)), str(tmp_path / "img.nii.gz"))
    seg = read_segmentation(seg_path)
    image = resample_image(read_image(tmp_path / "img.nii.gz"), seg.grid)
    assert image.values.shape == seg.labels.shape
    assert image.values[MARK] == pytest.approx(3.0 * 2.0 * MARK[0])  # voxel i = 4 lies at x = 8 mm
    far = np.eye(4)
    far[:3, 3] = 500.0
    nibabel.save(nibabel.Nifti1Image(ramp, far), str(tmp_path / "far.nii.gz"))
    with pytest.raises(ValidationError, match=r"does not overlap the segmentation"):
        resample_image(read_image(tmp_path / "far.nii.gz"), seg.grid)


def _dicom_series(folder: Path, values: np.ndarray, series_uid: str, spacing=(0.8, 0.8, 2.0), origin=(-10.0, -20.0, 30.0)) -> None:
    folder.mkdir(exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(values.shape[2]):
        plane = sitk.GetImageFromArray(np.ascontiguousarray(values[:, :, k].T[None].astype(np.int16)))
        plane.SetSpacing(spacing)
        position = (origin[0], origin[1], origin[2] + k * spacing[2])
        plane.SetOrigin(position)
        for tag, value in (("0008|0060", "CT"), ("0020|000e", series_uid), ("0020|000d", "1.2.826.0.1.3680043.2.1125.1"), ("0020|0032", "\\".join(map(str, position))),
                           ("0020|0037", "1\\0\\0\\0\\1\\0"), ("0028|0030", f"{spacing[1]}\\{spacing[0]}"), ("0018|0050", str(spacing[2])), ("0020|0013", str(k + 1)),
                           ("0008|0018", f"{series_uid}.{k + 1}")):  # fmt: skip
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{series_uid[-4:]}_{k:03d}.dcm"))
        writer.Execute(plane)


def test_a_dicom_series_folder(tmp_path):
    values = np.arange(4 * 5 * 3).reshape(4, 5, 3) * 10 - 100
    _dicom_series(tmp_path / "dicom", values, "1.2.826.0.1.3680043.2.1125.1.1001")
    image = read_image(tmp_path / "dicom")
    assert image.values.shape == (4, 5, 3) and image.modality == "CT" and image.grid.frame == "LPS"
    np.testing.assert_allclose(image.grid.spacing_mm, [0.8, 0.8, 2.0], atol=1e-6)
    assert image.values[2, 3, 1] == values[2, 3, 1]
    np.testing.assert_allclose(image.grid.to_mm([[2, 3, 1]])[0], [-10 + 1.6, -20 + 2.4, 32.0], atol=1e-4)
    _dicom_series(tmp_path / "dicom", values, "1.2.826.0.1.3680043.2.1125.1.2002")
    with pytest.raises(ValidationError, match=r"2 DICOM series mixed in one folder"):
        read_image(tmp_path / "dicom")


# ----------------------------------------------------------------------------- bad input
def _bad(tmp_path, name: str, data, affine=None) -> Path:
    path = tmp_path / name
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _bad(p, "flat.nii.gz", np.ones((5, 5), np.uint8)), "must be 3D"),
        (lambda p: _bad(p, "time.nii.gz", np.ones((4, 4, 4, 3), np.uint8)), "must be 3D"),
        (lambda p: _bad(p, "float.nii.gz", np.full((4, 4, 4), 0.5, np.float32)), "must hold integer labels"),
        (lambda p: _bad(p, "negative.nii.gz", np.full((4, 4, 4), -2, np.int16)), "is negative"),
        (lambda p: _bad(p, "empty.nii.gz", np.zeros((4, 4, 4), np.uint8)), "empty segmentation"),
        (lambda p: (p / "garbage.nii.gz", (p / "garbage.nii.gz").write_bytes(b"not an image at all"))[0], "not a readable image"),
        (lambda p: (p / "empty_folder", (p / "empty_folder").mkdir())[0], "a folder with no mask files"),
        (lambda p: p / "missing.nii.gz", "no such file or folder"),
        (lambda p: _bad(p, "coarse.nii.gz", np.ones((4, 4, 4), np.uint8), np.diag([6.0, 1, 1, 1])), "voxel spacing"),
        (lambda p: _infinite_sform(p / "inf_sform.nii.gz"), "holds inf or NaN"),  # ITK 5.4 never returns from reading it
    ],
)
def test_bad_segmentations_are_refused_in_one_line(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ValidationError) as err:
        load_anatomy(str(path), "totalsegmentator")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(path.name) in str(err.value) or "anatomy" in str(err.value)


def test_truncated_voxel_data_is_refused(tmp_path):
    path = _nifti(tmp_path / "s.nii", np.eye(4), np.ones((30, 30, 30), np.uint8))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValidationError, match=r"truncated or damaged|not a readable"):
        read_segmentation(path)


def test_inspect_json_is_one_object(tmp_path, capsys):
    from neurolysis.cli import main

    path = _nifti(tmp_path / "s.nii.gz", np.diag([1.0, 1.0, 1.0, 1.0]))
    assert main(["anatomy", "inspect", str(path), "--names", "totalsegmentator", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {s["name"] for s in d["structures"]} == {"spleen", "pancreas"} and d["targets"] == []
    assert main(["anatomy", "inspect", str(path), "--names", "totalsegmentator", "--tissue", "spleen=granite"]) == 2
    assert "granite" in capsys.readouterr().err


def test_a_relative_plan_folder_is_joined_once(monkeypatch):
    """A plan in a relative folder: its segmentation is base_dir / path, not base_dir / base_dir / path."""
    from neurolysis.anatomy.imaging import segmentation_scene

    monkeypatch.chdir(Path(__file__).parents[2] / "examples")
    scene = segmentation_scene("seg.nii.gz", "totalsegmentator", None, "left", "L4 medial branch", base_dir="anatomy/totalsegmentator-example")
    assert "L4 medial branch" in {n.name for n in scene.nerves}


def test_a_label_near_two_to_the_31_is_counted_without_a_table_that_long(tmp_path):
    data = np.zeros((6, 6, 6), np.int32)
    data[1:4, 1:4, 1:4] = 2**31 - 1
    (tmp_path / "names.tsv").write_text(f"{2**31 - 1}\tvertebrae_L4\n", encoding="utf-8")
    anatomy = load_anatomy(str(_nifti(tmp_path / "big.nii.gz", np.eye(4), data)), "names.tsv", base_dir=tmp_path)
    assert [(s.label, s.name, s.kind, s.level) for _, s in anatomy.structures()] == [(2**31 - 1, "vertebrae_L4", "vertebra", "L4")]
    assert anatomy.layers[0].segmentation.present() == {2**31 - 1: 27}
