"""Landmark rules (issue 17): where each rule puts its target nerve relative to the landmarks it
names, on the two real data sets and on small synthetic volumes whose answer is known by hand."""

from functools import cache
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial import cKDTree

from neurolysis.anatomy.imaging.landmarks import place_target, supported_targets
from neurolysis.anatomy.imaging.load import load_anatomy
from neurolysis.anatomy.imaging.scene import scene_from_anatomy
from neurolysis.validation import ValidationError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "anatomy"
CT = EXAMPLES / "totalsegmentator-example"
KNEE = EXAMPLES / "spl-knee-atlas"
GENICULAR = ("superomedial genicular nerve", "superolateral genicular nerve", "inferomedial genicular nerve")


@cache
def ct():
    return load_anatomy([str(CT / "seg.nii.gz"), str(CT / "vertebrae_body.nii.gz")], ["totalsegmentator", "totalsegmentator:vertebrae_body"])


@cache
def knee():
    return load_anatomy(str(KNEE / "knee_seg.nrrd"), str(KNEE / "knee.ctbl"))


def _line(placed) -> np.ndarray:
    return np.asarray(placed.nerves[0]["centerline_mm"], float)


def _tree(anatomy, kind=None, name=None) -> cKDTree:
    found = anatomy.structures(lambda s: (kind is None or s.kind == kind) and (name is None or s.name == name))
    return cKDTree(anatomy.voxels_mm(found))


# ----------------------------------------------------------------------------- the shared CT
def test_the_ct_supports_the_spine_and_trunk_targets():
    found = {c.target: c.sides for c in supported_targets(ct())}
    for level in ("L1", "L2", "L3", "L4", "L5"):
        assert found[f"{level} medial branch"] == ("left", "right")
    assert "celiac plexus" in found and "superior hypogastric plexus" in found
    assert found["T10 intercostal nerve"] == ("left", "right") and found["T11 intercostal nerve"] == ("left", "right")
    assert not any("genicular" in t for t in found)


def test_celiac_plexus_lies_anterolateral_to_the_aorta_at_t12_l1():
    a = ct()
    line = _line(place_target(a, "celiac plexus", None))
    sup, ant = a.axis("superior"), a.axis("anterior")
    t12 = a.voxels_mm(a.find("vertebra", "T12")).mean(axis=0) @ sup
    l1 = a.voxels_mm(a.find("vertebra", "L1")).mean(axis=0) @ sup
    assert np.all((line @ sup >= min(t12, l1)) & (line @ sup <= max(t12, l1)))
    aorta = a.voxels_mm(a.structures(lambda s: s.name == "aorta"))
    distance = _tree(a, name="aorta").query(line)[0]
    assert np.all((distance > 1.5) & (distance < 8.0)), distance  # outside the lumen's voxels, within a few mm of the wall
    level = aorta[np.abs(aorta @ sup - line[0] @ sup) <= 1.6]
    assert np.all(line @ ant > level.mean(axis=0) @ ant)  # in front of the aorta's centre


def test_superior_hypogastric_plexus_lies_in_front_of_l5_s1_below_the_bifurcation():
    a = ct()
    line = _line(place_target(a, "superior hypogastric plexus", None))
    sup, ant = a.axis("superior"), a.axis("anterior")
    aorta = a.voxels_mm(a.structures(lambda s: s.name == "aorta"))
    assert (line @ sup).max() <= (aorta @ sup).min() + 0.01
    l5 = a.voxels_mm(a.find("vertebra", "L5"))
    assert np.all(line @ ant > np.percentile(l5 @ ant, 95))  # anterior to the vertebral bodies
    distance = _tree(a, kind="vertebra").query(line)[0]
    assert np.median(distance) < 8.0


@pytest.mark.parametrize(("number", "side"), [(10, "left"), (10, "right"), (11, "right")])
def test_intercostal_nerve_runs_just_below_its_rib(number, side):
    a = ct()
    line = _line(place_target(a, f"T{number} intercostal nerve", side))
    rib = a.voxels_mm(a.find("rib", str(number), side))
    distance = cKDTree(rib).query(line)[0]
    assert np.all(distance < 7.0) and np.all(distance > 1.5), distance  # 3 mm voxels: within two voxel diagonals of a rib voxel centre
    sup = a.axis("superior")
    for point in line:  # not above the rib voxels straight above or below it (within 2 mm across; a sloping rib's next station may be level)
        rel = rib - point
        across = np.linalg.norm(rel - np.outer(rel @ sup, sup), axis=1)
        assert np.all(rel[across <= 2.0] @ sup > -0.5)
    assert np.linalg.norm(np.diff(line, axis=0), axis=1).sum() >= 20.0


def test_missing_landmarks_are_named_in_one_line(tmp_path):
    a = ct()
    with pytest.raises(ValidationError, match=r"the right rib 3 is not in the segmentation") as err:
        place_target(a, "T3 intercostal nerve", "right")
    assert "\n" not in str(err.value)
    with pytest.raises(ValidationError, match=r"target.nerve = 'L9 medial branch': no landmark rule places it"):
        place_target(a, "L9 medial branch", "right")
    with pytest.raises(ValidationError, match=r"anatomy.side = None: 'L4 medial branch' needs a side"):
        place_target(a, "L4 medial branch", None)


# ----------------------------------------------------------------------------- the knee atlas
def test_the_knee_is_a_left_knee_and_supports_the_genicular_and_peroneal_targets():
    from neurolysis.anatomy.imaging.landmarks.knee import knee_side

    assert knee_side(knee(), "test") == "left"
    found = {c.target for c in supported_targets(knee())}
    assert set(GENICULAR) | {"common peroneal nerve"} <= found


@pytest.mark.parametrize("target", GENICULAR)
def test_genicular_nerves_lie_beside_the_bone_at_the_metaphysis_diaphysis_junction(target):
    a = knee()
    placed = place_target(a, target, None)
    line = _line(placed)
    bone = "tibia" if target.startswith("inferomedial") else "femur"
    points = a.voxels_mm(a.find(bone))
    distance = cKDTree(points).query(line)[0]
    assert np.all((distance > 0.3) & (distance < 2.5)), distance  # on the surface, outside the bone
    right, sup = a.axis("right"), a.axis("superior")
    medial_is_right = True  # a left knee: medial is the patient's right
    medial = target.startswith(("superomedial", "inferomedial"))
    centre = points.mean(axis=0)
    assert np.all(((line - centre) @ right > 0) == (medial == medial_is_right))
    # the level lies between the diaphysis and the widest (condylar or plateau) level: the bone there
    # is wider than the shaft and narrower than at its widest
    level = float(np.median(line @ sup))
    width = lambda z: np.ptp(points[np.abs(points @ sup - z) <= 0.5] @ right)  # noqa: E731
    levels = np.unique(np.round(points @ sup))
    widths = np.array([width(z) for z in levels])
    far = levels.max() if bone == "femur" else levels.min()
    assert width(far) < width(level) < widths.max()


def test_superior_genicular_nerves_run_with_their_segmented_arteries():
    a = knee()
    for target, artery in (("superomedial genicular nerve", "superior_medial_genicular_artery"), ("superolateral genicular nerve", "superior_lateral_genicular_artery")):
        distance = _tree(a, name=artery).query(_line(place_target(a, target, None)))[0]
        assert distance.min() < 5.0, (target, distance)


def test_common_peroneal_nerve_from_its_label():
    a = knee()
    placed = place_target(a, "common peroneal nerve", None)
    line = _line(placed)
    assert 0.8 <= placed.nerves[0]["radius_mm"] <= 2.5
    label = _tree(a, name="peroneus_nerve")
    assert np.median(label.query(line)[0]) < 2.0  # along the label
    assert _tree(a, kind="fibula").query(line)[0].min() < 4.0  # it crosses the fibular head and neck
    assert placed.critical[0]["kind"] == "motor-nerve"


def test_a_side_that_disagrees_with_the_knee_is_refused():
    with pytest.raises(ValidationError, match=r"anatomy.side = 'right': the segmentation holds a left knee"):
        place_target(knee(), "superomedial genicular nerve", "right")


def test_three_genicular_targets_share_one_scene():
    scene = scene_from_anatomy(knee(), GENICULAR, None)
    assert scene.targets == GENICULAR and scene.convention == "LPS"
    assert {("superomedial genicular nerve", "parallel"), ("inferomedial genicular nerve", "perpendicular")} <= set(scene.placements)
    for pose in scene.placements.values():
        assert scene.region_tissue[scene.label_at(pose.tip_m[None])[0]] not in ("bone", "blood")


# ----------------------------------------------------------------------------- synthetic knees
def _synthetic_knee(path: Path, frame: str, mirror: bool) -> Path:
    """A femur (shaft radius 12 mm above z = 30, flaring linearly to 30 mm at z = 0), a tibia below, and
    a fibula on the lateral side (patient left unless ``mirror``); 1 mm voxels; RAS NIfTI or LPS NRRD."""
    n = 100
    c = np.arange(n) - n / 2 + 0.5
    x, y, z = np.meshgrid(c, c, np.arange(120) - 30.0, indexing="ij")  # patient axes: x right, y anterior, z superior (RAS)
    labels = np.zeros(x.shape, np.uint8)
    radius = np.where(z >= 30, 12.0, 12.0 + (30 - z) * 0.6)
    labels[(x**2 + y**2 <= radius**2) & (z >= 0)] = 1
    labels[(x**2 + y**2 <= 28**2) & (z < -3) & (z > -25)] = 2
    lateral = 1.0 if mirror else -1.0
    labels[((x - lateral * 30) ** 2 + y**2 <= 5**2) & (z < -8) & (z > -28)] = 3
    table = path.parent / "names.tsv"
    table.write_text("label\tname\n1\tfemur\n2\ttibia\n3\tfibula\n", encoding="utf-8")
    affine = np.eye(4)
    affine[:3, 3] = [c[0], c[0], -30.0]
    if frame == "RAS":
        nibabel.save(nibabel.Nifti1Image(labels, affine), str(path))
        return path
    image = sitk.GetImageFromArray(np.ascontiguousarray(labels[::-1, ::-1, :].transpose(2, 1, 0)))  # LPS: x and y reversed
    image.SetOrigin((-c[-1], -c[-1], -30.0))
    sitk.WriteImage(image, str(path))
    return path


@pytest.mark.parametrize(("frame", "mirror"), [("RAS", False), ("LPS", False), ("RAS", True)])
def test_synthetic_junction_is_found_where_it_was_built(tmp_path, frame, mirror):
    path = _synthetic_knee(tmp_path / ("knee.nii.gz" if frame == "RAS" else "knee.nrrd"), frame, mirror)
    a = load_anatomy(str(path), str(tmp_path / "names.tsv"))
    assert a.frame == frame
    from neurolysis.anatomy.imaging.landmarks import rule_data
    from neurolysis.anatomy.imaging.landmarks.knee import knee_side

    assert knee_side(a, "test") == ("right" if mirror else "left")
    line = _line(place_target(a, "superomedial genicular nerve", None))
    f = float(rule_data("knee", "genicular")["flare_fraction"])
    # half-width 12 at the shaft, 30 at z = 0 (the widest femur level): the threshold 12 + f * 18 is reached at z = 30 - f * 18 / 0.6
    expected = 30.0 - f * 18.0 / 0.6
    level = float(np.median(line @ a.axis("superior")))
    assert abs(level - expected) <= 1.5, (level, expected)
    medial_x = float(np.median(line @ a.axis("right")))
    assert (medial_x > 0) == (not mirror)  # a left knee's medial side is the patient's right


def test_synthetic_knee_without_a_femur_names_it(tmp_path):
    path = _synthetic_knee(tmp_path / "knee.nii.gz", "RAS", False)
    (tmp_path / "names.tsv").write_text("label\tname\n1\tpatella_like_thing\n2\ttibia\n3\tfibula\n", encoding="utf-8")
    a = load_anatomy(str(path), str(tmp_path / "names.tsv"))
    with pytest.raises(ValidationError, match=r"the femur is not in the segmentation"):
        place_target(a, "superomedial genicular nerve", None)
