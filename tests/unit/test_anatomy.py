"""Anatomy templates: they load, their nerves and placements sit where the template says,
needles reach the nerve through soft tissue, and label_at is vectorised and fast."""

import subprocess
import sys
import time

import numpy as np
import pytest

from neurolysis.anatomy import APPROACHES, primitives
from neurolysis.anatomy._build import composition_names, fibres_from_spec
from neurolysis.anatomy.placement import needle_path, point_and_tangent, recommended_pose
from neurolysis.anatomy.primitives import polyline_distance, shape_from_spec
from neurolysis.anatomy.templates import load_template, template_names, template_summary
from neurolysis.tissue import tissue_ids
from neurolysis.validation import ValidationError

REQUIRED = {"lumbar-medial-branch", "genicular", "intercostal", "celiac-plexus", "common-peroneal"}
NAMES = sorted(template_names())
TIP_M = 10e-3
NEAR_NERVE_M = 1.5e-3  # needle tip to nerve surface
PARALLEL_COS = np.cos(np.radians(10))
PERPENDICULAR_COS = np.cos(np.radians(80))


def _bone(scene):
    return np.array(scene.regions_of_tissue("bone"))


def test_required_templates_present():
    assert REQUIRED <= set(NAMES)


def test_unknown_template_names_value_and_choices():
    with pytest.raises(ValidationError, match=r"anatomy.template = 'knee': allowed values are .*genicular"):
        load_template("knee")


@pytest.mark.parametrize("name", NAMES)
def test_template_loads_with_targets_and_critical(name):
    scene = load_template(name)
    nerves = {n.name for n in scene.nerves}
    assert scene.target in nerves and set(scene.targets) <= nerves
    assert scene.critical, "every template names its critical structures"
    for c in scene.critical:
        assert c.kind and (c.regions or c.nerve in nerves)
        assert set(c.regions) <= set(scene.region_names)
    assert set(scene.region_tissue) <= set(tissue_ids())
    assert scene.region_names[0] == "background"
    lo, hi = scene.bounds_m
    assert np.all(hi - lo >= 50e-3) and np.all(hi - lo <= 130e-3)
    assert scene.frame


@pytest.mark.parametrize("name", NAMES)
def test_nerves_lie_in_bounds_outside_bone_with_sane_fibres(name):
    scene = load_template(name)
    lo, hi = scene.bounds_m
    bone = _bone(scene)
    for nerve in scene.nerves:
        line = nerve.centerline_m
        s = np.linspace(0, 1, 200)
        seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
        arc = np.concatenate([[0], np.cumsum(seg)]) / seg.sum()
        pts = np.column_stack([np.interp(s, arc, line[:, i]) for i in range(3)])
        inside = np.all((pts >= lo) & (pts <= hi), axis=1)
        assert inside.mean() > 0.5, f"{nerve.name} mostly outside the box"
        assert not np.isin(scene.label_at(pts), bone).any(), f"{nerve.name} passes through bone"
        assert sum(f.fraction for f in nerve.fibres) == pytest.approx(1.0, abs=1e-3)
        assert nerve.end_organ_m >= 0 and 0.1e-3 <= nerve.radius_m <= 4e-3


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("approach", APPROACHES)
def test_placements_point_where_intended(name, approach):
    scene = load_template(name)
    for target in scene.targets:
        nerve = scene.nerve(target)
        pose = scene.placements[(target, approach)]
        _, tangent = point_and_tangent(nerve, 0.5)
        # the tangent where the needle actually is: nearest centerline segment to the tip centre
        centre = pose.tip_m - 0.5 * TIP_M * pose.direction if approach == "parallel" else pose.tip_m
        line = nerve.centerline_m
        k = int(np.argmin([polyline_distance(centre[None], line[i : i + 2])[0] for i in range(len(line) - 1)]))
        t = (line[k + 1] - line[k]) / np.linalg.norm(line[k + 1] - line[k])
        cos = abs(float(pose.direction @ t))
        gap = polyline_distance(pose.tip_m[None], line)[0] - nerve.radius_m
        assert gap <= NEAR_NERVE_M, f"tip {gap * 1e3:.2f} mm from the nerve surface"
        if approach == "parallel":
            assert cos >= PARALLEL_COS, f"needle at {np.degrees(np.arccos(cos)):.1f} deg to the nerve"
            # the whole active tip runs alongside the nerve
            tip_axis = needle_path(pose, TIP_M, 1e-3)
            assert np.all(polyline_distance(tip_axis, line) - nerve.radius_m <= NEAR_NERVE_M)
        else:
            assert cos <= PERPENDICULAR_COS, f"needle at {np.degrees(np.arccos(cos)):.1f} deg to the nerve"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("approach", APPROACHES)
def test_needle_tip_and_shaft_not_in_bone(name, approach):
    """The tip and the tip-side 20 mm of the shaft, and the whole path inside the box,
    run through soft tissue (the needle approaches from the skin)."""
    scene = load_template(name)
    lo, hi = scene.bounds_m
    bone = _bone(scene)
    for target in scene.targets:
        pose = scene.placements[(target, approach)]
        path = needle_path(pose, 150e-3, 0.25e-3)
        near = path[:81]  # tip + 20 mm
        assert np.all((pose.tip_m >= lo) & (pose.tip_m <= hi))
        assert not np.isin(scene.label_at(near), bone).any()
        in_box = path[np.all((path >= lo) & (path <= hi), axis=1)]
        assert not np.isin(scene.label_at(in_box), bone).any()


def test_label_at_is_vectorised_and_fast():
    scene = load_template("lumbar-medial-branch")
    lo, hi = scene.bounds_m
    pts = np.random.default_rng(1).uniform(lo - 5e-3, hi + 5e-3, (300_000, 3))
    scene.label_at(pts[:10])
    t0 = time.perf_counter()
    labels = scene.label_at(pts)
    elapsed = time.perf_counter() - t0
    assert labels.shape == (300_000,) and np.issubdtype(labels.dtype, np.integer)
    assert labels.min() >= 0 and labels.max() < len(scene.region_names)
    outside = ~np.all((pts >= lo) & (pts <= hi), axis=1)
    assert np.all(labels[outside] == 0)
    single = np.array([scene.label_at(p[None])[0] for p in pts[:200]])
    assert np.array_equal(single, labels[:200])
    assert elapsed < 0.4, f"label_at took {elapsed:.3f} s for 300k points (target < 0.2 s)"


# points (mm) and the region each template says is there
KEY_POINTS = {
    "lumbar-medial-branch": [
        ((0, 5, 0), "csf"),
        ((0, -1.5, 0), "cauda equina"),
        ((30, -1, 0), "L5 transverse process"),
        ((19, -9, 10), "L5 superior articular process"),
        ((0, 25, -5), "L5 vertebral body"),
        ((0, -54, 0), "skin"),
        ((10, -30, 0), "multifidus"),
        ((24.95, -6.95, 1.0), "L4 medial branch"),
    ],
    "genicular": [
        ((0, 0, 60), "femur"),
        ((0, -5, -10), "tibia"),
        ((-49, 0, 0), "skin"),
        ((-22.6, 0, 42), "superomedial genicular nerve"),
        ((22.6, 0, 42), "superolateral genicular nerve"),
        ((-28.3, 0, -28), "inferomedial genicular nerve"),
    ],
    "intercostal": [
        ((0, 0, 0), "rib"),
        ((0, -3.0, -8.3), "intercostal nerve"),
        ((0, -20, 0), "lung"),
        ((0, 24, 0), "skin"),
    ],
    "celiac-plexus": [
        ((0, 0, 0), "L1 vertebral body"),
        ((-8, 30, 0), "aorta"),
        ((0, -24, 0), "spinal cord"),
        ((-8, 43.5, 0), "celiac plexus"),
    ],
    "common-peroneal": [
        ((0, 0, -12), "fibula"),
        ((17.5, 0, -20), "skin"),
    ],
}


@pytest.mark.parametrize("name", sorted(KEY_POINTS))
def test_key_structures_are_labelled_where_the_template_says(name):
    scene = load_template(name)
    pts = np.array([p for p, _ in KEY_POINTS[name]], dtype=float) * 1e-3
    got = [scene.region_names[i] for i in scene.label_at(pts)]
    assert got == [r for _, r in KEY_POINTS[name]]


def test_lumbar_cord_region_far_from_medial_branch_placement():
    scene = load_template("lumbar-medial-branch")
    assert "cauda equina" in scene.region_names
    assert any(c.kind == "spinal-cord" for c in scene.critical)
    lo, hi = scene.bounds_m
    g = np.stack(np.meshgrid(*[np.arange(a, b, 1e-3) for a, b in zip(lo, hi, strict=True)], indexing="ij"), -1).reshape(-1, 3)
    cord = g[scene.label_at(g) == scene.region_index("cauda equina")]
    assert len(cord) > 100
    for approach in APPROACHES:
        pose = scene.placements[("L4 medial branch", approach)]
        tip_axis = needle_path(pose, TIP_M, 0.5e-3)
        d = np.min(np.linalg.norm(cord[:, None, :] - tip_axis[None, :, :], axis=2))
        assert d > 5e-3, f"{approach}: cord {d * 1e3:.1f} mm from the active tip"


def test_medial_branch_is_a_mixed_nerve_under_2_mm():
    nerve = load_template("lumbar-medial-branch").nerve("L4 medial branch")
    assert nerve.kind == "mixed"
    assert {f.role for f in nerve.fibres} == {"motor", "touch", "pain"}
    assert 2 * nerve.radius_m < 2e-3  # Cohen 2011: < 2 mm


def test_genicular_fibres_follow_hines_1996():
    nerve = load_template("genicular").nerve("superomedial genicular nerve")
    unmyelinated = sum(f.fraction for f in nerve.fibres if not f.myelinated)
    assert unmyelinated == pytest.approx(0.696, abs=0.01)
    assert not any(f.role == "motor" for f in nerve.fibres)


@pytest.mark.parametrize("name", NAMES)
def test_summary_is_json_ready(name):
    import json

    summary = template_summary(name)
    assert json.loads(json.dumps(summary)) == summary
    assert {"name", "description", "targets", "critical", "approaches", "bounds_mm"} <= set(summary)
    assert set(summary["approaches"]) == set(APPROACHES)


def test_every_fibre_composition_is_valid():
    for name in composition_names():
        fibres = fibres_from_spec(name, "fibres")
        assert all(f.diameter_um > 0 for f in fibres)


def test_fibre_fractions_must_sum_to_one():
    with pytest.raises(ValidationError, match="must sum to 1"):
        fibres_from_spec([{"class": "C", "diameter_um": 1.0, "fraction": 0.5}], "fibres")


def test_primitives_contain_what_they_should():
    pts = np.array([[0, 0, 0], [0.009, 0, 0], [0.011, 0, 0], [0, 0.004, 0]], float)
    box = shape_from_spec({"shape": "box", "min_mm": [-10, -5, -5], "max_mm": [10, 5, 5]})
    assert box.contains(pts).tolist() == [True, True, False, True]
    rot = shape_from_spec({"shape": "box", "center_mm": [0, 0, 0], "size_mm": [20, 2, 2], "x_axis": [0, 1, 0]})
    assert rot.contains(pts).tolist() == [True, False, False, True]
    ell = shape_from_spec({"shape": "ellipsoid", "center_mm": [0, 0, 0], "radii_mm": [10, 3, 3]})
    assert ell.contains(pts).tolist() == [True, True, False, False]
    cyl = shape_from_spec({"shape": "cylinder", "a_mm": [-10, 0, 0], "b_mm": [10, 0, 0], "radius_mm": 4.5})
    assert cyl.contains(pts).tolist() == [True, True, False, True]
    ecyl = shape_from_spec({"shape": "elliptic-cylinder", "a_mm": [0, 0, -1], "b_mm": [0, 0, 1], "radii_mm": [10, 3], "u_axis": [1, 0, 0]})
    assert ecyl.contains(pts).tolist() == [True, True, False, False]
    tube = shape_from_spec({"shape": "tube", "points_mm": [[-5, 0, 0], [5, 0, 0], [5, 10, 0]], "radius_mm": 4.5})
    assert tube.contains(pts).tolist() == [True, True, False, True]
    half = shape_from_spec({"shape": "half-space", "point_mm": [10, 0, 0], "normal": [1, 0, 0]})
    assert half.contains(pts).tolist() == [True, True, False, True]
    slab = shape_from_spec({"shape": "slab", "point_mm": [0, -1, 0], "normal": [0, 1, 0], "thickness_mm": 2, "within": [{"shape": "half-space", "point_mm": [10, 0, 0], "normal": [1, 0, 0]}]})
    assert slab.contains(pts).tolist() == [True, True, False, False]
    for shape in (box, rot, ell, cyl, ecyl, tube, half, slab):
        lo, hi = shape.bbox_m
        inside = pts[shape.contains(pts)]
        assert np.all((inside >= lo - 1e-12) & (inside <= hi + 1e-12))


def test_painter_later_layer_wins():
    a = shape_from_spec({"shape": "box", "min_mm": [-10, -10, -10], "max_mm": [10, 10, 10]})
    b = shape_from_spec({"shape": "ellipsoid", "center_mm": [0, 0, 0], "radii_mm": [2, 2, 2]})
    pts = np.array([[0, 0, 0], [0.005, 0, 0], [0.05, 0, 0]])
    assert primitives.paint(pts, 7, [(1, a), (2, b)]).tolist() == [2, 1, 7]


@pytest.mark.parametrize("spec, match", [
    ({"shape": "sphere"}, "allowed values are box"),
    ({"shape": "box", "min_mm": [0, 0, 0], "max_mm": [1, -1, 1]}, "must exceed"),
    ({"shape": "tube", "points_mm": [[0, 0, 0]], "radius_mm": 1}, "points_mm"),
    ({"shape": "cylinder", "a_mm": [0, 0, 0], "b_mm": [0, 0, 1], "radius_mm": float("nan")}, "radius_mm = nan"),
])
def test_bad_shapes_raise_one_line(spec, match):
    with pytest.raises(ValidationError, match=match):
        shape_from_spec(spec)


def test_pose_derivation_without_hints_avoids_bone():
    """With no hints the pose is chosen around the nerve so that the path misses bone."""
    scene = load_template("intercostal")
    nerve = scene.nerve("intercostal nerve")
    bone = scene.regions_of_tissue("bone")
    for approach in APPROACHES:
        pose = recommended_pose(nerve, approach, label_at=scene.label_at, bounds_m=scene.bounds_m, blocked=bone)
        path = needle_path(pose, 20e-3, 0.25e-3)
        assert not np.isin(scene.label_at(path), bone).any()
        assert polyline_distance(pose.tip_m[None], nerve.centerline_m)[0] - nerve.radius_m <= NEAR_NERVE_M


def test_importing_anatomy_stays_light():
    code = (
        "import sys; import neurolysis.anatomy.templates, neurolysis.anatomy.labelmap; "
        "print(sorted(m for m in ('matplotlib', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", check=True).stdout.strip()
    assert out == "[]"
