"""Hypothesis fuzz of reading a patient's segmentation (issue 17): headers, affines, dtypes, label
tables and damaged files. Every input either loads (a SegmentedAnatomy; a scan with its landmarks may
even plan) or raises ``ValidationError`` with a one-line message: never another exception, never a
warning. 10 500 derandomized cases in all (the same in CI and on every machine)."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurolysis.anatomy.imaging.landmarks import supported_targets
from neurolysis.anatomy.imaging.load import load_anatomy
from neurolysis.validation import ValidationError
from tests.fuzz import FUZZ_SCALE

SETTINGS = {"derandomize": True, "database": None, "deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
NAMES = ("totalsegmentator", "totalsegmentator-mr", "totalsegmentator:vertebrae_body", "embedded", None, "names.tsv", "names.ctbl", "nothing.txt")
DTYPES = (np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.float32, np.float64, np.complex64, np.bool_)


@pytest.fixture(scope="module")
def folder():
    path = Path(tempfile.mkdtemp(prefix="scan-fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _load(paths, names, image=None) -> None:
    """Load and list the targets; anything but a one-line ValidationError fails the case."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            anatomy = load_anatomy(paths, names, image)
            supported_targets(anatomy)
        except ValidationError as error:
            text = str(error)
            assert text and "\n" not in text, repr(text)


def _tables(folder: Path) -> None:
    (folder / "names.tsv").write_text("label\tname\n1\tvertebrae_L4\n2\taorta\n3\tspinal_cord\n", encoding="utf-8")
    (folder / "names.ctbl").write_text("# 3 values\n1 femur 1 2 3 255\n2 tibia 1 2 3 255\n3 peroneus_nerve 1 2 3 255\n", encoding="utf-8")
    (folder / "nothing.txt").write_text("200 liver\n", encoding="utf-8")


affines = st.one_of(
    st.just(np.eye(4)),
    st.builds(lambda d, o: np.c_[np.r_[np.diag(d), np.zeros((1, 3))], np.r_[o, 1.0]], st.lists(st.floats(-10, 10), min_size=3, max_size=3), st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3)),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=16, max_size=16).map(lambda v: np.asarray(v, float).reshape(4, 4)),
    st.permutations([0, 1, 2]).map(lambda p: np.r_[np.eye(4)[list(p) + [3]][:, :]]),
)


@settings(max_examples=max(1, int(4000 * FUZZ_SCALE)), **SETTINGS)
@given(
    shape=st.one_of(
        st.tuples(*[st.integers(1, 7)] * 3), st.tuples(st.integers(1, 6), st.integers(1, 6)), st.tuples(*[st.integers(1, 4)] * 4), st.tuples(st.integers(0, 3), st.integers(1, 3), st.integers(1, 3))
    ),
    dtype=st.sampled_from(DTYPES),
    values=st.lists(st.one_of(st.integers(-3, 300), st.floats(allow_nan=True, allow_infinity=True), st.just(2**40)), min_size=1, max_size=6),
    affine=affines,
    names=st.sampled_from(NAMES),
    suffix=st.sampled_from((".nii.gz", ".nii", ".nrrd")),
)
def test_volumes_headers_affines_and_dtypes(folder, shape, dtype, values, affine, names, suffix):
    _tables(folder)
    rng = np.random.default_rng(len(values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # building the fuzz input, not reading it
        data = np.asarray(rng.choice(np.asarray(values, dtype=object), size=shape), dtype=object)
        try:
            data = data.astype(dtype)
        except (OverflowError, ValueError, TypeError):
            data = np.zeros(shape, dtype)
    path = folder / f"case{suffix}"
    try:
        if suffix == ".nrrd":
            if data.ndim not in (2, 3) or data.dtype in (np.bool_, np.complex64) or data.size == 0:
                return
            image = sitk.GetImageFromArray(np.ascontiguousarray(data.T))
            image.SetSpacing([float(abs(affine[i, i])) or 1.0 for i in range(data.ndim)] if np.all(np.isfinite(affine)) else [1.0] * data.ndim)
            sitk.WriteImage(image, str(path))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nib.save(nib.Nifti1Image(data, affine), str(path))
    except Exception:  # noqa: BLE001 - nibabel/ITK refused to write this input: nothing to read
        return
    _load(str(path), names)


def _valid_volume(folder: Path) -> Path:
    data = np.zeros((24, 20, 30), np.uint8)
    data[6:14, 5:12, 2:10] = 1
    data[15:18, 14:17, :] = 2
    data[2:4, 2:4, 2:4] = 3
    path = folder / "valid.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0])), str(path))
    return path


lines = st.lists(
    st.one_of(
        st.tuples(st.integers(-5, 2**70), st.text(max_size=30)).map(lambda t: f"{t[0]}\t{t[1]}"),
        st.tuples(st.integers(0, 5), st.sampled_from(("femur", "aorta", "L4", "rib_left_11", "", " ", "x" * 300)), st.sampled_from(("", "bone", "granite", "csf"))).map(
            lambda t: f"{t[0]}\t{t[1]}\t{t[2]}"
        ),
        st.text(max_size=40),
    ),
    max_size=8,
)


@settings(max_examples=max(1, int(3000 * FUZZ_SCALE)), **SETTINGS)
@given(rows=lines, raw=st.binary(max_size=40), use_raw=st.booleans(), suffix=st.sampled_from((".tsv", ".txt", ".csv", ".ctbl")))
def test_names_tables(folder, rows, raw, use_raw, suffix):
    path = _valid_volume(folder)
    table = folder / f"table{suffix}"
    if use_raw:
        table.write_bytes(raw)
    else:
        table.write_text("\n".join(rows), encoding="utf-8", errors="surrogatepass") if all("\ud800" > c or c > "\udfff" for r in rows for c in r) else table.write_bytes(b"")
    _load(str(path), str(table))


@settings(max_examples=max(1, int(3000 * FUZZ_SCALE)), **SETTINGS)
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4), kind=st.sampled_from(("nii.gz", "nii", "nrrd", "image", "folder")))
def test_damaged_files(folder, cut, flips, kind):
    base = _valid_volume(folder)
    if kind == "nii":
        path = folder / "damaged.nii"
        nib.save(nib.load(str(base)), str(path))
    elif kind == "nrrd":
        path = folder / "damaged.nrrd"
        sitk.WriteImage(sitk.ReadImage(str(base)), str(path))
    else:
        path = folder / "damaged.nii.gz"
        shutil.copy(base, path)
    data = bytearray(path.read_bytes())
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] = value
    data = data[: max(1, int(cut * len(data)))] if cut < 0.98 else data
    path.write_bytes(bytes(data))
    if kind == "image":
        _load(str(base), "totalsegmentator", str(path))
    elif kind == "folder":
        masks = folder / "masks"
        shutil.rmtree(masks, ignore_errors=True)
        masks.mkdir()
        shutil.copy(path, masks / "aorta.nii.gz")
        shutil.copy(base, masks / "vertebrae_L4.nii.gz")
        _load(str(masks), None)
    else:
        _load(str(path), "totalsegmentator")


@settings(max_examples=max(1, int(500 * FUZZ_SCALE)), **SETTINGS)
@given(header=st.lists(st.sampled_from((
    "type: unsigned char", "type: float", "type: int16", "dimension: 3", "dimension: 2", "dimension: 4", "sizes: 4 4 4", "sizes: 4 4", "sizes: 0 4 4", "sizes: 99999 99999 99999",
    "space: left-posterior-superior", "space: right-anterior-superior", "space: scanner-xyz", "space directions: (1,0,0) (0,1,0) (0,0,1)", "space directions: (0,0,0) (0,0,0) (0,0,0)",
    "space directions: (nan,0,0) (0,1,0) (0,0,1)", "encoding: raw", "encoding: gzip", "space origin: (0,0,0)", "space origin: (inf,0,0)", "kinds: domain domain domain", "endian: big")),
    max_size=9), payload=st.binary(max_size=80))  # fmt: skip
def test_nrrd_headers(folder, header, payload):
    path = folder / "header.nrrd"
    path.write_bytes(b"NRRD0004\n" + "\n".join(header).encode() + b"\n\n" + payload)
    _load(str(path), "totalsegmentator")
