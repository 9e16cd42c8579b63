"""Hypothesis fuzz of the label-map import: damaged NIfTI volumes, labels maps and nerves files.

Every input either loads (a scene) or raises ``ValidationError`` with a one-line message,
directly (``load_label_map``) and through a plan (``neurolysis simulate PLAN --check``,
exit 0, or exit 2 with one error line). Inputs: truncated and byte-flipped ``.nii`` /
``.nii.gz`` files, random bytes under a NIfTI name, wrong dtypes (fractional, NaN, complex,
RGB, huge and negative labels), 2D/4D/empty volumes, NaN/inf/singular/huge affines,
malformed or mistyped labels TOML, and nerves JSON that does not parse or has the wrong
shape (NaN, one point, strings, deep nesting, huge numbers).
"""

from __future__ import annotations

import atexit
import copy
import gzip
import itertools
import json
import tempfile
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurolysis.anatomy.labelmap import load_label_map
from neurolysis.validation import ValidationError
from tests.fuzz import FUZZ_SCALE

from .test_plan_fuzz import Raw, assert_entrance, other_stderr, plan_text, toml_key, toml_value

SHAPE = (20, 16, 18)
ORIGIN_MM = np.array([-10.0, -8.0, -9.0])  # world position of voxel (0, 0, 0), 1 mm voxels

LABELS = {
    "name": "fuzz-case",
    "target": "test nerve",
    "outside_tissue": "muscle",
    "labels": {
        "0": {"region": "soft tissue", "tissue": "muscle"},
        "1": {"region": "bone", "tissue": "bone"},
        "2": {"region": "artery", "tissue": "blood", "critical": "artery"},
        "3": {"region": "soft tissue", "tissue": "muscle"},
    },
}
NERVES = {
    "nerves": [
        {
            "name": "test nerve",
            "centerline_mm": [[-8.0, 4.0, 0.0], [0.0, 4.0, 0.0], [8.0, 4.0, 0.0]],
            "radius_mm": 0.5,
            "fibres": "lumbar medial branch",
            "end_organ_mm": 12.0,
        },
        {
            "name": "motor nerve",
            "centerline_mm": [[-8.0, -5.0, 5.0], [8.0, -5.0, 5.0]],
            "radius_mm": 1.0,
            "fibres": [
                {"class": "A-alpha", "diameter_um": 14.0, "fraction": 0.6},
                {"name": "small", "role": "pain", "diameter_um": 1.0, "fraction": 0.4, "myelinated": False},
            ],
            "end_organ_mm": 50.0,
            "kind": "motor",
            "critical": "motor-nerve",
        },
    ]
}


def base_volume() -> np.ndarray:
    v = np.zeros(SHAPE, dtype=np.int16)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1)
    x, y, z = (ijk + ORIGIN_MM).transpose(3, 0, 1, 2)
    v[(y < 1.0) & (y > -3.0) & (np.abs(z) < 4.0)] = 1  # bone slab below the nerve (y = 4)
    v[np.hypot(y - 7.0, z) < 1.5] = 2  # artery along x, 3 mm above the nerve
    v[(x > 7) & (y > 5)] = 3  # a second label of the same region
    return v


def base_affine() -> np.ndarray:
    a = np.eye(4)
    a[:3, 3] = ORIGIN_MM
    return a


BASE_VOLUME = base_volume()

# ------------------------------------------------------------------------- writing files


def toml_document(table: dict) -> str:
    """Top-level values, then tables; lists of tables as ``[[name]]``."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict) and not _table_list(v)]
    for k, v in table.items():
        if isinstance(v, dict):
            lines.append(f"[{toml_key(k)}]")
            lines += [f"{toml_key(kk)} = {toml_value(vv)}" for kk, vv in v.items()]
        elif _table_list(v):
            for item in v:
                lines.append(f"[[{toml_key(k)}]]")
                lines += [f"{toml_key(kk)} = {toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


def _table_list(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(i, dict) for i in v)


def json_text(value) -> str:
    """JSON as Python writes it (NaN and Infinity included), with ``Raw`` pieces verbatim."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {json_text(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def write_nifti(path: Path, volume: np.ndarray, affine: np.ndarray) -> bytes:
    """The volume as NIfTI-1 (gzipped when the name ends in ``.gz``, any case); returns the file's bytes."""
    dtype = volume.dtype if volume.dtype in (np.int64, np.uint64) else None  # nibabel wants 64-bit ints named
    staged = path.with_name("staged.nii.gz" if path.name.lower().endswith(".gz") else "staged.nii")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel on NaN / singular affines
        try:
            img = nib.Nifti1Image(volume, affine, dtype=dtype)
        except Exception:  # an affine nibabel cannot decompose into a qform: store it as sform only
            img = nib.Nifti1Image(volume, None, dtype=dtype)
            img.header.set_sform(affine, code=1)
        nib.save(img, str(staged))
    staged.replace(path)
    return path.read_bytes()


# -------------------------------------------------------------------------- strategies

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
wild_numbers = st.one_of(
    st.floats(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 1e-300, 2**63, 10**300]),
    st.sampled_from([Raw("1" + "0" * 400), Raw("0x" + "f" * 5000), Raw("1e400"), Raw("-1e400")]),
)
wild_scalars = st.one_of(wild_numbers, texts, st.booleans())
wild = st.recursive(wild_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)), max_leaves=6)
wild_json = st.recursive(st.one_of(wild_scalars, st.none()), lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)), max_leaves=6)
DTYPES = ("uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "complex64", "complex128", "rgb")


@st.composite
def volumes(draw, damage: bool = True) -> np.ndarray:
    """The base labels, or with a changed dtype, values or shape."""
    v = BASE_VOLUME.copy()
    if not damage:
        return v
    kind = draw(st.sampled_from(("dtype", "dtype", "fraction", "nonfinite", "huge", "negative", "unmapped", "shape", "tiny")))
    if kind == "dtype":
        name = draw(st.sampled_from(DTYPES))
        if name == "rgb":
            out = np.zeros(v.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
            out["R"] = v
            return out
        return v.astype(name)
    if kind == "fraction":
        return v.astype(draw(st.sampled_from(("float32", "float64")))) + draw(st.sampled_from((0.5, 1e-6, 0.999)))
    if kind == "nonfinite":
        f = v.astype(draw(st.sampled_from(("float32", "float64"))))
        f.flat[draw(st.integers(0, f.size - 1))] = draw(st.sampled_from((np.nan, np.inf, -np.inf)))
        return f
    if kind == "huge":
        big = draw(st.sampled_from((2**62, -(2**62), 2**31, 1e20, -1e20, 3.0e38, 2.0**53 + 2)))
        f = v.astype(np.float64 if isinstance(big, float) else np.int64)
        f.flat[draw(st.integers(0, f.size - 1))] = big
        return f
    if kind == "negative":
        return (v - draw(st.integers(1, 5))).astype(draw(st.sampled_from(("int8", "int16", "int32", "float32"))))
    if kind == "unmapped":
        v.flat[draw(st.integers(0, v.size - 1))] = draw(st.integers(4, 30000))
        return v
    if kind == "shape":
        shape = draw(st.sampled_from(((20, 16), (20, 16, 18, 1), (20, 16, 18, 2), (0, 16, 18), (20, 0, 18), (1, 1, 1), (20,), (2, 2, 2, 2, 2))))
        return np.zeros(shape, dtype=np.int16)
    if kind == "tiny":
        return v[: draw(st.integers(1, 4)), :, :]
    return v


@st.composite
def affines(draw, damage: bool = True) -> np.ndarray:
    a = base_affine()
    if not damage:
        return a
    kind = draw(st.sampled_from(("nonfinite", "singular", "scale", "aniso", "rotate", "entry")))
    if kind == "nonfinite":
        a[draw(st.integers(0, 2)), draw(st.integers(0, 3))] = draw(st.sampled_from((np.nan, np.inf, -np.inf)))
    elif kind == "singular":
        a[:, draw(st.integers(0, 2))] = 0.0
        a[3, 3] = 1.0
    elif kind == "scale":
        a[:3, :3] *= draw(st.sampled_from((1e-300, 1e-12, 1e-6, 0.1, 0.5, 4.9, 5.1, 1e3, 1e300, -1.0)))
    elif kind == "aniso":
        a[2, 2] = draw(st.floats(0.01, 10.0))
    elif kind == "rotate":
        c, s = np.cos(draw(st.floats(0, 6.3))), np.sin(draw(st.floats(0, 6.3)))
        a[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ a[:3, :3]
    elif kind == "entry":
        a[draw(st.integers(0, 2)), draw(st.integers(0, 3))] = draw(st.one_of(st.floats(-1e6, 1e6), st.sampled_from((1e300, -1e300, 1e-300))))
    return a


@st.composite
def nifti_files(draw, path: Path, damage: frozenset = frozenset({"file", "volume", "affine"})) -> None:
    """Write a label volume to ``path``, its data, affine or bytes damaged as ``damage`` says."""
    kind = "valid" if "file" not in damage else draw(st.sampled_from(("truncate", "truncate", "flip", "random", "empty", "gzip-random", "header-field")))
    if kind == "random":
        path.write_bytes(draw(st.binary(max_size=800)))
        return
    if kind == "empty":
        path.write_bytes(b"")
        return
    if kind == "gzip-random":
        path.write_bytes(gzip.compress(draw(st.binary(max_size=800))))
        return
    data = write_nifti(path, draw(volumes("volume" in damage)), draw(affines("affine" in damage)))
    gz = path.name.lower().endswith(".gz")
    raw = gzip.decompress(data) if gz else data
    if kind == "truncate":  # cut the stored file (compressed or not) at any byte
        path.write_bytes(data[: draw(st.integers(0, len(data) - 1))])
    elif kind == "flip":  # damage bytes of the uncompressed image, then store it as named
        raw = bytearray(raw)
        for _ in range(draw(st.integers(1, 8))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        path.write_bytes(gzip.compress(bytes(raw)) if gz else bytes(raw))
    elif kind == "header-field":  # NIfTI-1 header: dim (40), datatype (70), bitpix (72), pixdim (76), vox_offset (108)
        raw = bytearray(raw)
        offset = draw(st.sampled_from((40, 42, 44, 46, 48, 70, 72, 76, 80, 108, 252, 254, 280)))
        raw[offset : offset + 4] = draw(st.binary(min_size=4, max_size=4))
        path.write_bytes(gzip.compress(bytes(raw)) if gz else bytes(raw))


@st.composite
def labels_maps(draw, damage: bool = True) -> str:
    """The labels map (TOML text): valid (sometimes with valid extras), mutated, or malformed."""
    table = copy.deepcopy(LABELS)
    kind = draw(st.sampled_from(("mutate", "mutate", "mutate", "label-spec", "nerve-tables", "placement", "critical", "malformed") if damage else ("valid", "valid-extras")))
    if kind == "valid-extras":
        table["paint_nerves"] = draw(st.booleans())
        table["placement"] = [{"nerve": "test nerve", "approach": draw(st.sampled_from(("parallel", "perpendicular"))), "toward": draw(st.lists(st.floats(-1, 1), min_size=3, max_size=3))}]
        table["critical"] = [{"name": "motor", "kind": "motor-nerve", "nerve": "motor nerve"}]
    if kind == "mutate":
        key = draw(st.sampled_from(("name", "target", "targets", "outside_tissue", "labels", "paint_nerves", "description", "frame", "nerve", "placement", "critical")))
        if draw(st.booleans()) and key in table:
            del table[key]
        else:
            table[key] = draw(wild)
    elif kind == "label-spec":
        labels = table["labels"]
        key = draw(st.one_of(st.sampled_from(sorted(labels)), st.sampled_from(("-1", "1.5", "a", "", "1e3", "0x1", " 2", "9" * 5000, "99999999999999999999"))))
        labels[key] = draw(st.one_of(wild, st.fixed_dictionaries({"region": st.one_of(texts, wild), "tissue": st.one_of(st.sampled_from(("muscle", "bone", "fat", "nerve", "blood")), wild)}, optional={"critical": wild})))
    elif kind == "nerve-tables":  # nerves given in the labels map instead
        table["nerve"] = copy.deepcopy(NERVES["nerves"])
        table["nerve"][draw(st.integers(0, 1))][draw(st.sampled_from(("name", "centerline_mm", "radius_mm", "fibres", "end_organ_mm", "kind")))] = draw(wild)
    elif kind == "placement":
        hint = {"nerve": "test nerve", "approach": "perpendicular", "toward": [0.0, 0.0, -1.0]}
        hint[draw(st.sampled_from(("nerve", "approach", "toward", "side", "at", "at_mm")))] = draw(wild)
        table["placement"] = draw(st.sampled_from(([hint], hint, [hint, hint], ["text"], [[1, 2]])))
    elif kind == "critical":
        entry = {"name": "cord", "kind": "spinal-cord", "regions": ["bone"]}
        entry[draw(st.sampled_from(("name", "kind", "regions", "nerve")))] = draw(wild)
        table["critical"] = draw(st.sampled_from(([entry], entry, ["text"], [[1]])))
    text = toml_document(table)
    if kind == "malformed":
        data = bytearray(text.encode("utf-8"))
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.sampled_from((b"[", b"]", b"=", b'"', b"\n", b"\xff", b"\x00", b"{", b"1" + b"0" * 5000, b"[" * 600)))
        return data.decode("utf-8", errors="surrogateescape")
    return text


@st.composite
def nerves_files(draw, damage: bool = True) -> bytes | None:
    """The nerves JSON: valid, None (no file), wrong shape, wrong fields, or not JSON."""
    kind = draw(st.sampled_from(("none", "shape", "field", "field", "field", "fibre", "points", "points", "not-json", "bytes") if damage else ("valid",)))
    data = copy.deepcopy(NERVES)
    if kind == "none":
        return None
    if kind == "shape":
        data = draw(st.sampled_from((data["nerves"], {"nerves": {}}, {"nerve": []}, [], {}, "nerves", 3, None, [1, 2], {"nerves": [None]}, {"nerves": ["x"]})))
    elif kind == "field":
        nerve = data["nerves"][draw(st.integers(0, 1))]
        key = draw(st.sampled_from(("name", "centerline_mm", "radius_mm", "fibres", "end_organ_mm", "kind", "critical", "source")))
        if draw(st.booleans()):
            nerve.pop(key, None)
        else:
            nerve[key] = draw(wild_json)
        if draw(st.booleans()) and "name" in data["nerves"][0]:
            data["nerves"][1]["name"] = data["nerves"][0]["name"]  # a name given twice
    elif kind == "fibre":
        fibres = data["nerves"][1]["fibres"]
        fibres[draw(st.integers(0, 1))][draw(st.sampled_from(("class", "name", "role", "diameter_um", "fraction", "myelinated")))] = draw(wild_json)
        if draw(st.booleans()):
            fibres.append(draw(wild_json))
    elif kind == "points":
        line = draw(st.one_of(
            st.lists(st.lists(st.one_of(st.floats(-12, 12), wild_numbers, st.sampled_from((Raw("NaN"), Raw("Infinity"), Raw("-Infinity")))), min_size=3, max_size=3), max_size=4),
            st.sampled_from(([[0.0, 4.0, 0.0]], [[0.0, 4.0, 0.0], [0.0, 4.0, 0.0]], [], [[]], "line", [[1, 2]], [[0, 4, 0], [1, 4, 0, 0]], [["0", "4", "0"], ["1", "4", "0"]])),
        ))  # fmt: skip
        data["nerves"][0]["centerline_mm"] = line
    text = json_text(data)
    if kind == "not-json":
        cut = draw(st.integers(0, len(text)))
        return (text[:cut] + draw(st.sampled_from(("", "}", "]]", ",", "NaN", "nul", "[" * 5000, "1" * 5000, '"\\ud800"')))).encode("utf-8")
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    return text.encode("utf-8")


# ----------------------------------------------------------------------------- the test

PARTS = ("file", "volume", "affine", "labels", "nerves")
DAMAGE = st.one_of(
    st.just(frozenset()),  # all valid: loads
    st.sampled_from(PARTS).map(lambda part: frozenset({part})),
    st.sampled_from(PARTS).map(lambda part: frozenset({part})),
    st.sets(st.sampled_from(PARTS), min_size=2).map(frozenset),
)

_TMP = tempfile.TemporaryDirectory(prefix="neurolysis-fuzz-labels-")
atexit.register(_TMP.cleanup)
_COUNTER = itertools.count()


def _case_dir() -> Path:
    d = Path(_TMP.name) / f"case-{next(_COUNTER)}"
    d.mkdir()
    return d


def _remove(d: Path) -> None:
    for f in d.iterdir():
        f.unlink()
    d.rmdir()


@settings(
    max_examples=max(1, int(2000 * FUZZ_SCALE)),
    derandomize=True,  # the same examples in CI and on every machine
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), name=st.sampled_from(("labels.nii.gz", "labels.nii.gz", "labels.nii", "labels.NII.GZ", "labels.nii.gz.bak")))
def test_label_maps_load_or_fail_in_one_line(data, name):
    d = _case_dir()
    try:
        labels, labels_map, nerves = d / name, d / "labels.toml", d / "nerves.json"
        damage = data.draw(DAMAGE)
        data.draw(nifti_files(labels, damage))
        labels_map.write_text(data.draw(labels_maps("labels" in damage)), encoding="utf-8", errors="surrogateescape")
        nerves_bytes = data.draw(nerves_files("nerves" in damage))
        if nerves_bytes is not None:
            nerves.write_bytes(nerves_bytes)
        with other_stderr() as extra:
            try:
                scene = load_label_map(labels, labels_map, nerves if nerves_bytes is not None else None)
            except ValidationError as error:
                message = str(error)
                loaded = False
            else:
                loaded = True
        if loaded:
            assert scene.nerves and scene.target in {n.name for n in scene.nerves}
        else:
            assert message.strip() and len(message.splitlines()) == 1, f"not one line: {message!r}"
            assert not extra, f"more than the error reaches stderr: {extra}"
        anatomy = {"labels": name, "labels_map": "labels.toml"} | ({"nerves": "nerves.json"} if nerves_bytes is not None else {})
        plan = d / "plan.toml"
        plan.write_text(plan_text({"anatomy": anatomy}), encoding="utf-8")
        code, _ = assert_entrance(["simulate", str(plan), "--check"])
        if not loaded:
            assert code == 2, "the CLI accepted a label map load_label_map refused"
    finally:
        _remove(d)
