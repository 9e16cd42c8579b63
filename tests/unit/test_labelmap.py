"""Label-map import: a NIfTI volume written here round-trips to a Scene; every bad input
gives a one-line ValidationError naming the field."""

import json
import re

import nibabel as nib
import numpy as np
import pytest

from neurolysis.anatomy import APPROACHES
from neurolysis.anatomy.labelmap import load_label_map
from neurolysis.anatomy.placement import needle_path
from neurolysis.anatomy.primitives import polyline_distance
from neurolysis.validation import ValidationError

SHAPE = (40, 30, 36)
SPACING_MM = 1.0
ORIGIN_MM = np.array([-20.0, -15.0, -18.0])  # world position of voxel (0, 0, 0)

LABELS_TOML = """
name = "test-case"
description = "a bone block, an artery and a nerve"
target = "test nerve"
outside_tissue = "muscle"

[labels]
0 = { region = "soft tissue", tissue = "muscle" }
1 = { region = "bone", tissue = "bone" }
2 = { region = "artery", tissue = "blood", critical = "artery" }
3 = { region = "soft tissue", tissue = "muscle" }
"""

NERVES = {
    "nerves": [
        {
            "name": "test nerve",
            "centerline_mm": [[-15.0, 5.0, 0.0], [0.0, 5.0, 0.0], [15.0, 5.0, 0.0]],
            "radius_mm": 0.5,
            "fibres": "lumbar medial branch",
            "end_organ_mm": 12.0,
        },
        {
            "name": "motor nerve",
            "centerline_mm": [[-15.0, -10.0, 10.0], [15.0, -10.0, 10.0]],
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


def _volume() -> np.ndarray:
    v = np.zeros(SHAPE, dtype=np.int16)
    world = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1) * SPACING_MM + ORIGIN_MM
    x, y, z = world[..., 0], world[..., 1], world[..., 2]
    v[(y < 2.0) & (y > -6.0) & (np.abs(z) < 8.0)] = 1  # bone slab below the nerve (y = 5)
    v[(np.hypot(y - 10.0, z) < 2.0)] = 2  # artery along x, 5 mm above the nerve
    v[(x > 15) & (y > 10)] = 3  # a second label for the same region
    return v


def _write(tmp_path, volume=None, affine=None, labels=LABELS_TOML, nerves=NERVES, name="labels.nii.gz"):
    volume = _volume() if volume is None else volume
    if affine is None:
        affine = np.eye(4)
        affine[:3, :3] *= SPACING_MM
        affine[:3, 3] = ORIGIN_MM
    paths = (tmp_path / name, tmp_path / "labels.toml", tmp_path / "nerves.json")
    try:
        img = nib.Nifti1Image(volume, affine)
    except Exception:  # nibabel cannot decompose a singular affine into a qform: store it as sform only
        img = nib.Nifti1Image(volume, None)
        img.header.set_sform(affine, code=1)
    nib.save(img, str(paths[0]))
    paths[1].write_text(labels, encoding="utf-8")
    paths[2].write_text(nerves if isinstance(nerves, str) else json.dumps(nerves), encoding="utf-8")
    return paths


def test_round_trip_to_scene(tmp_path):
    scene = load_label_map(*_write(tmp_path))
    assert scene.name == "test-case" and scene.target == "test nerve"
    assert scene.region_names == ("outside", "soft tissue", "bone", "artery", "test nerve", "motor nerve")
    assert scene.region_tissue == ("muscle", "muscle", "bone", "blood", "nerve", "nerve")
    lo, hi = scene.bounds_m
    np.testing.assert_allclose(lo, (ORIGIN_MM - 0.5) * 1e-3)
    np.testing.assert_allclose(hi, (ORIGIN_MM + np.array(SHAPE) - 0.5) * 1e-3)
    pts_mm = np.array([[0, 0, 0], [0, 10, 0], [0, -12, 0], [18, 12, 0], [100, 0, 0], [0.4, -1.6, 0.3], [3, 5.3, 0.2], [0, -10, 10.9]])
    got = [scene.region_names[i] for i in scene.label_at(pts_mm * 1e-3)]
    assert got == ["bone", "artery", "soft tissue", "soft tissue", "outside", "bone", "test nerve", "motor nerve"]
    kinds = {c.name: c.kind for c in scene.critical}
    assert kinds == {"artery": "artery", "motor nerve": "motor-nerve"}
    nerve = scene.nerve("test nerve")
    assert nerve.kind == "mixed" and nerve.end_organ_m == pytest.approx(12e-3)
    assert scene.nerve("motor nerve").fibres[1].myelinated is False


def test_label_at_matches_every_voxel_under_a_general_affine(tmp_path):
    """Rotated, flipped, 0.5 mm voxels: each voxel centre maps back to its own label."""
    volume = np.random.default_rng(3).integers(0, 4, SHAPE).astype(np.int32)
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, -1]]) * 0.5
    affine[:3, 3] = [5.0, -3.0, 7.0]
    nerves = {"nerves": [{"name": "test nerve", "centerline_mm": [[5, -3, 3], [5, 1, 3]], "radius_mm": 0.3, "fibres": "intercostal", "end_organ_mm": 5}]}
    scene = load_label_map(*_write(tmp_path, volume, affine, labels=LABELS_TOML.replace("[labels]", "paint_nerves = false\n[labels]"), nerves=nerves))
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1).reshape(-1, 3)
    world_m = (ijk @ affine[:3, :3].T + affine[:3, 3]) * 1e-3
    lut = {0: "soft tissue", 1: "bone", 2: "artery", 3: "soft tissue"}
    expected = np.array([scene.region_names.index(lut[v]) for v in range(4)])[volume.reshape(-1)]
    assert np.array_equal(scene.label_at(world_m), expected)


def test_placements_derived_from_the_centerline(tmp_path):
    scene = load_label_map(*_write(tmp_path))
    nerve = scene.nerve("test nerve")
    bone = scene.regions_of_tissue("bone")
    for approach in APPROACHES:
        pose = scene.placements[("test nerve", approach)]
        gap = polyline_distance(pose.tip_m[None], nerve.centerline_m)[0] - nerve.radius_m
        assert gap <= 1.5e-3
        cos = abs(pose.direction @ np.array([1.0, 0, 0]))
        assert cos > 0.98 if approach == "parallel" else cos < 0.17
        assert not np.isin(scene.label_at(needle_path(pose, 20e-3, 0.25e-3)), bone).any()
    assert ("motor nerve", "parallel") not in scene.placements


def test_nerves_and_placement_hints_in_the_labels_map(tmp_path):
    labels = LABELS_TOML + """
[[nerve]]
name = "test nerve"
centerline_mm = [[-15.0, 5.0, 0.0], [15.0, 5.0, 0.0]]
radius_mm = 0.5
fibres = "genicular articular"
end_organ_mm = 10.0

[[placement]]
nerve = "test nerve"
approach = "perpendicular"
toward = [0.0, 0.0, -1.0]
"""
    labels_path, map_path, _ = _write(tmp_path, labels=labels)
    scene = load_label_map(labels_path, map_path)
    pose = scene.placements[("test nerve", "perpendicular")]
    np.testing.assert_allclose(pose.direction, [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(pose.tip_m, [0, 5e-3, 0.5e-3], atol=1e-9)


def test_float_volume_with_integer_values_is_accepted(tmp_path):
    scene = load_label_map(*_write(tmp_path, volume=_volume().astype(np.float32)))
    assert "bone" in scene.region_names


def _error(tmp_path, match, **kwargs):
    paths = _write(tmp_path, **{k: v for k, v in kwargs.items() if k in ("volume", "affine", "labels", "nerves", "name")})
    paths = kwargs.get("paths", lambda p: p)(paths)
    with pytest.raises(ValidationError, match=match) as info:
        load_label_map(*paths)
    assert "\n" not in str(info.value)


def _singular():
    a = np.eye(4)
    a[2, 2] = 0.0
    return a


def _nan_affine():
    a = np.eye(4)
    a[0, 3] = np.nan
    return a


def _aniso():
    a = np.eye(4)
    a[2, 2] = 5.0
    return a


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # nibabel writing a NaN affine
@pytest.mark.parametrize(
    "case, kwargs, match",
    [
        ("missing labels", {"paths": lambda p: (p[0].with_name("nope.nii.gz"), p[1], p[2])}, r"anatomy.labels = '.*nope.nii.gz': file not found"),
        ("missing map", {"paths": lambda p: (p[0], p[1].with_name("nope.toml"), p[2])}, r"anatomy.labels_map = .*: file not found"),
        ("missing nerves", {"paths": lambda p: (p[0], p[1], p[2].with_name("nope.json"))}, r"anatomy.nerves = .*: file not found"),
        ("not 3D", {"volume": np.zeros((4, 4), np.int16)}, r"shape = \(4, 4\): must be a 3D volume"),
        ("4D", {"volume": np.zeros((4, 4, 4, 2), np.int16)}, r"shape = \(4, 4, 4, 2\): must be a 3D volume"),
        ("non-integer", {"volume": np.full((8, 8, 8), 0.5, np.float32)}, r"dtype = float32: must hold integer labels"),
        ("singular affine", {"affine": _singular()}, r"affine determinant = 0: must be non-singular"),
        ("non-finite affine", {"affine": _nan_affine()}, r"affine = .*: must be a finite 4x4 matrix"),
        ("anisotropic", {"affine": _aniso()}, r"voxel spacing = \[1.0, 1.0, 5.0\] mm: anisotropy 5 exceeds the supported 4"),
        ("unmapped label", {"labels": LABELS_TOML.replace('3 = { region = "soft tissue", tissue = "muscle" }', "")}, r"anatomy.labels values = \[3\]: absent from labels_map.labels"),
        ("unknown tissue", {"labels": LABELS_TOML.replace('tissue = "blood"', 'tissue = "plasma"')}, r"labels_map.labels.2.tissue = 'plasma': allowed values are"),
        ("conflicting tissue", {"labels": LABELS_TOML.replace('3 = { region = "soft tissue", tissue = "muscle" }', '3 = { region = "soft tissue", tissue = "fat" }')}, r"region 'soft tissue' is already 'muscle'"),
        ("malformed toml", {"labels": "target = \n[labels"}, r"anatomy.labels_map = .*: malformed TOML"),
        ("malformed json", {"nerves": "{\"nerves\": [}"}, r"anatomy.nerves = .*: malformed JSON"),
        ("nerve outside", {"nerves": {"nerves": [dict(NERVES["nerves"][0], centerline_mm=[[0, 5, 0], [0, 5, 40]])]}}, r"nerves \(test nerve\).centerline_mm\[1\] = \[0.0, 5.0, 40.0\]: outside the label volume"),
        ("bad radius", {"nerves": {"nerves": [dict(NERVES["nerves"][0], radius_mm=-1)]}}, r"radius_mm = -1: must be a finite number > 0"),
        ("unknown composition", {"nerves": {"nerves": [dict(NERVES["nerves"][0], fibres="sciatic")]}}, r"fibres = 'sciatic': allowed values are"),
        ("unknown target", {"labels": LABELS_TOML.replace('target = "test nerve"', 'target = "sciatic"')}, r"labels_map.target = 'sciatic': allowed values are 'test nerve', 'motor nerve'"),
        ("nerve named like a region", {"nerves": {"nerves": [dict(NERVES["nerves"][0], name="bone")]}, "labels": LABELS_TOML.replace('"test nerve"', '"bone"')}, r"nerves name = 'bone': already a region"),
        ("not nifti", {"name": "labels.npy"}, r"must be a NIfTI file"),
    ],
)
def test_errors_are_one_line_and_name_the_field(tmp_path, case, kwargs, match):
    if case == "not nifti":
        labels_path, map_path, nerves_path = _write(tmp_path)
        bad = tmp_path / "labels.npy"
        bad.write_bytes(b"x")
        with pytest.raises(ValidationError, match=match):
            load_label_map(bad, map_path, nerves_path)
        return
    _error(tmp_path, match, **kwargs)


def test_no_nerves_anywhere(tmp_path):
    labels_path, map_path, _ = _write(tmp_path)
    with pytest.raises(ValidationError, match=r"anatomy.nerves = None"):
        load_label_map(labels_path, map_path)


def test_damaged_nifti(tmp_path):
    labels_path, map_path, nerves_path = _write(tmp_path)
    labels_path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValidationError, match=r"not a readable NIfTI file"):
        load_label_map(labels_path, map_path, nerves_path)


def test_documented_example_loads(tmp_path):
    """The labels TOML and nerves JSON printed in docs/models/anatomy.md import as written."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "models" / "anatomy.md").read_text(encoding="utf-8")
    section = doc[doc.index("### Complete example") :]
    labels = re.search(r"`labels.toml`:\s*```toml\n(.*?)```", section, re.S).group(1)
    nerves = re.search(r"`nerves.json`:\s*```json\n(.*?)```", section, re.S).group(1)
    volume = np.zeros((60, 60, 50), dtype=np.uint8)
    volume[:3, :3, :3] = 1  # a few voxels of each label, far from the nerves
    volume[-3:, :3, :3] = 6
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = [-15.0, -28.0, -20.0]
    scene = load_label_map(*_write(tmp_path, volume, affine, labels=labels, nerves=nerves))
    assert scene.target == "L4 medial branch"
    assert {c.kind for c in scene.critical} >= {"spinal-cord", "artery", "motor-nerve"}
    assert set(APPROACHES) == {a for (_, a) in scene.placements}


# --- inputs found by the fuzz (tests/fuzz/test_labelmap_fuzz.py): each fails with one line naming the field


def _one_line_error(*paths) -> str:
    with pytest.raises(ValidationError) as info:
        load_label_map(*paths)
    message = str(info.value)
    assert message and len(message.splitlines()) == 1, repr(message)
    return message


def test_path_too_long_for_the_file_system(tmp_path):
    """Path.is_file() raised OSError (ENAMETOOLONG) for a 300-character name."""
    _, map_path, nerves_path = _write(tmp_path)
    assert "cannot be read (File name too long)" in _one_line_error(tmp_path / ("a" * 300 + ".nii.gz"), map_path, nerves_path)


@pytest.mark.parametrize(
    "volume",
    [
        np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]),  # RGB24: np.isfinite raised TypeError
        _volume().astype(np.complex64),  # whole-number complex labels were cast to int with a ComplexWarning
        np.where(_volume() == 3, 1e20, _volume()).astype(np.float64),  # beyond int64: "invalid value encountered in cast"
    ],
    ids=["rgb", "complex", "float-1e20"],
)
def test_labels_of_a_non_integer_kind_are_refused(tmp_path, volume):
    assert "anatomy.labels dtype = " in _one_line_error(*_write(tmp_path, volume=volume))


def _patched_header(tmp_path, offset: int, data: bytes):
    paths = _write(tmp_path, name="labels.nii")
    raw = bytearray(paths[0].read_bytes())
    raw[offset : offset + len(data)] = data
    paths[0].write_bytes(bytes(raw))
    return paths


def test_header_claiming_a_huge_volume_is_refused_before_reading(tmp_path):
    """A damaged dim field (20 x 30000 x 30000 voxels) made the reader allocate gigabytes (the fuzz run was killed)."""
    paths = _patched_header(tmp_path, 42, np.array([40, 30000, 30000], "<i2").tobytes())
    assert "anatomy.labels shape = (40, 30000, 30000): 36000000000 voxels, more than the supported 268435456" in _one_line_error(*paths)


def test_nibabel_header_repairs_are_not_logged_to_stderr(tmp_path, caplog):
    """nibabel logged "data code 11196 not recognized; not attempting fix" (and "sizeof_hdr should be 348")
    to stderr itself: a second line next to the error."""
    with caplog.at_level("WARNING"):
        message = _one_line_error(*_patched_header(tmp_path, 70, np.array([11196], "<i2").tobytes()))
        assert "not a readable NIfTI file" in message
        load_label_map(*_patched_header(tmp_path, 0, np.array([347], "<i4").tobytes()))  # repaired and loaded
    assert not [r for r in caplog.records if r.name.startswith("nibabel")]


@pytest.mark.parametrize(
    "labels, nerves, match",
    [
        (LABELS_TOML + "huge = 1" + "0" * 5000 + "\n", NERVES, r"anatomy.labels_map = .*: malformed TOML \(an integer of more than 4300 digits\)"),
        (LABELS_TOML.replace("[labels]", "deep = " + "[" * 600 + "]" * 600 + "\n[labels]"), NERVES, r"malformed TOML \(arrays or tables nested too deeply\)"),
        (LABELS_TOML, '{"nerves": [], "x": 1' + "0" * 5000 + "}", r"anatomy.nerves = .*: malformed JSON \(an integer of more than 4300 digits\)"),
        (LABELS_TOML, "[" * 5000 + "]" * 5000, r"malformed JSON \(arrays or tables nested too deeply\)"),
        (LABELS_TOML.replace("[labels]", "critical = [[1]]\n[labels]"), NERVES, r"labels_map.critical\[0\] = \[1\]: must be a table"),
        (LABELS_TOML.replace("[labels]", 'critical = "text"\n[labels]'), NERVES, r"labels_map.critical = 'text': must be a list of tables"),
        (LABELS_TOML.replace("[labels]", "critical = [{ name = \"c\", kind = \"artery\", regions = 5 }]\n[labels]"), NERVES, r"labels_map.critical\[0\] \(c\).regions = 5: must be a list"),
        (LABELS_TOML.replace("[labels]", 'placement = "text"\n[labels]'), NERVES, r"labels_map.placement = 'text': must be a list of tables"),
        (LABELS_TOML.replace("[labels]", "placement = [[1, 2]]\n[labels]"), NERVES, r"labels_map.placement\[0\] = \[1, 2\]: must be a table"),
        (LABELS_TOML.replace("[labels]", 'placement = { nerve = "test nerve", approach = "parallel" }\n[labels]'), NERVES, r"labels_map.placement = \{.*\}: must be a list of tables"),
        (LABELS_TOML.replace("[labels]", "targets = 5\n[labels]"), NERVES, r"labels_map.targets = 5: must be a list of nerve names"),
        (LABELS_TOML.replace("[labels]", "nerve = 5\n[labels]"), NERVES, r"labels_map.nerve = 5: must be a list of nerve tables"),
        (LABELS_TOML.replace('name = "test-case"', "name = 0x" + "f" * 5000), NERVES, r"labels_map.name = <integer of 19 or more digits>: allowed range is"),
    ],
    ids=["toml-long-int", "toml-deep", "json-long-int", "json-deep", "critical-not-table", "critical-text", "regions-int",
         "placement-text", "placement-not-table", "placement-one-table", "targets-int", "nerve-int", "hex-name"],  # fmt: skip
)
def test_labels_map_and_nerves_of_the_wrong_shape(tmp_path, labels, nerves, match):
    assert re.search(match, _one_line_error(*_write(tmp_path, labels=labels, nerves=nerves)))


def _nerve(**changes) -> dict:
    return {"nerves": [dict(NERVES["nerves"][0], **changes)]}


@pytest.mark.parametrize(
    "nerves, match",
    [
        (_nerve(fibres=[1]), r"fibres\[0\] = 1: must be a table"),  # 'int' object has no attribute 'get'
        (_nerve(fibres=[{"class": [], "diameter_um": 14.0, "fraction": 1.0}]), r"fibres\[0\].role = None"),  # unhashable list
        (_nerve(fibres=[{"class": "C", "diameter_um": 10**400, "fraction": 1.0}]), r"fibres\[0\].diameter_um = 1000+: allowed range is \(0, 30\]"),
        (_nerve(radius_mm=10**400), r"radius_mm = 1000+: must be a finite number > 0"),
        (_nerve(centerline_mm=[[10**400, 5.0, 0.0], [0.0, 5.0, 0.0]]), r"centerline_mm = .*: must be at least 2 finite"),  # OverflowError
        (_nerve(end_organ_mm=5000.0), r"end_organ_mm = 5000.0: allowed range is \[0, 2000\] mm"),  # passed the import, failed the solve
    ],
    ids=["fibre-int", "fibre-class-list", "diameter-huge-int", "radius-huge-int", "centerline-huge-int", "end-organ-5-m"],
)
def test_nerve_fields_of_the_wrong_type_or_size(tmp_path, nerves, match):
    assert re.search(match, _one_line_error(*_write(tmp_path, nerves=nerves)))
