"""`neurolysis templates | plan new | simulate` as a user runs them (issue 4 contract)."""

import json
import subprocess
import sys
import tomllib
from functools import cache

import numpy as np
import pytest

from neurolysis.anatomy.templates import load_template, template_names
from neurolysis.cli import main
from neurolysis.planning.plan import load_plan, new_plan, plan_toml
from neurolysis.planning.simulate import simulate
from tests.plans import one_needle_plan

TEMPLATES = ("lumbar-medial-branch", "genicular", "intercostal", "celiac-plexus", "common-peroneal")
TARGET_KEYS = {
    "nerve", "killed_fraction_by_class", "pain_fibres_killed_fraction", "motor_fibres_killed_fraction",
    "lesioned_length_mm", "pain_block", "relief_months",
}  # fmt: skip
CRITICAL_KEYS = {"name", "kind", "peak_temp_c", "omega", "cem43_min", "injured", "reason"}
SHORT = "procedure.time_s=40"
COARSE = "simulation.mesh_refinement=0.7"
"""Behaviour tests (block lost, cord flag, every template) need the right answer, not the
verified accuracy: a shorter lesion on a coarser mesh keeps the suite inside the CI budget."""


@cache
def _outcome(template: str, *overrides: str):
    from neurolysis.planning.plan import apply_overrides, plan_from_dict

    plan = one_needle_plan(template)
    data = apply_overrides(tomllib.loads(plan_toml(plan)), list(overrides))
    return simulate(plan_from_dict(data))


def _write_plan(tmp_path, template="lumbar-medial-branch"):
    path = tmp_path / "plan.toml"
    assert main(["plan", "new", "--template", template]) == 0
    return path


def test_templates_listed(capsys):
    assert main(["templates", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [t["name"] for t in out["templates"]]
    assert set(TEMPLATES) <= set(names) == set(template_names())
    for t in out["templates"]:
        assert t["targets"] and t["critical"]
    assert main(["templates"]) == 0
    assert "lumbar-medial-branch" in capsys.readouterr().out


def test_issue_command_lines(tmp_path):
    """The four command lines of the issue, as subprocesses (the real entry point)."""
    run = lambda *a: subprocess.run([sys.executable, "-m", "neurolysis.cli", *a], capture_output=True, text=True, encoding="utf-8", cwd=tmp_path)
    assert run("templates").returncode == 0
    new = run("plan", "new", "--template", "lumbar-medial-branch")
    assert new.returncode == 0, new.stderr
    (tmp_path / "plan.toml").write_text(new.stdout)
    table = run("simulate", "plan.toml", "--quiet", "--set", SHORT, "--set", COARSE)
    assert table.returncode == 0, table.stderr
    assert "L4 medial branch" in table.stdout and "not for clinical decisions" in table.stdout
    moved = run("simulate", "plan.toml", "--json", "--quiet", "--set", "placement.offset_mm=[3,0,0]", "--set", SHORT, "--set", COARSE, "--plot", "plan.png")
    assert moved.returncode == 0, moved.stderr
    out = json.loads(moved.stdout)
    assert out["settings"]["placement"]["offset_mm"] == [3.0, 0.0, 0.0]
    assert (tmp_path / "plan.png").stat().st_size > 10_000


def test_default_plan_json_contract():
    """The keys and their sense, on the short coarse lesion the behaviour tests share (the default
    plan's held-out relief, MacVicar 2013, is tests/validation/test_method_plans.py's lumbar case)."""
    out = _outcome("lumbar-medial-branch", SHORT, COARSE).to_dict()
    assert {"target", "critical", "lesion", "warnings", "settings", "disclaimer"} <= set(out)
    assert TARGET_KEYS <= set(out["target"])
    assert set(out["target"]["relief_months"]) >= {"median", "p10", "p90"}
    assert out["target"]["nerve"] == "L4 medial branch"
    assert out["target"]["pain_block"] is True
    assert out["target"]["pain_fibres_killed_fraction"] >= 0.95
    r = out["target"]["relief_months"]
    assert 0 < r["p10"] <= r["median"] <= r["p90"]
    assert out["target"]["injury_grades"]["sunderland-3"] > 0.5
    assert {"width_mm", "length_mm"} <= set(out["lesion"])
    assert out["critical"] and all(CRITICAL_KEYS <= set(c) for c in out["critical"])
    kinds = {c["kind"] for c in out["critical"]}
    assert "spinal-cord" in kinds
    cord = next(c for c in out["critical"] if c["kind"] == "spinal-cord")
    assert cord["injured"] is False
    assert out["disclaimer"] == "research and education tool, not for clinical decisions"
    json.dumps(out)  # serialisable


def _sideways(scene, nerve_name, distance_mm):
    """An offset (mm) perpendicular to the needle, away from the nerve, keeping the tip out of bone."""
    pose = scene.placements[(nerve_name, "parallel")]
    line = scene.nerve(nerve_name).centerline_m
    tangent = line[-1] - line[0]
    bone = [i for i, t in enumerate(scene.region_tissue) if t == "bone"]
    for angle in np.linspace(0.0, 2 * np.pi, 24, endpoint=False):
        e1 = np.cross(tangent, pose.direction)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(pose.direction, e1)
        side = np.cos(angle) * e1 + np.sin(angle) * e2
        tip = pose.tip_m + distance_mm * 1e-3 * side
        shaft = tip - np.linspace(0, 12e-3, 25)[:, None] * pose.direction
        if not np.isin(scene.label_at(shaft), bone).any():
            return [float(v) for v in distance_mm * side]
    raise AssertionError("no sideways offset keeps the needle out of bone")


def test_moving_the_needle_away_loses_the_block():
    scene = load_template("lumbar-medial-branch")
    offset = _sideways(scene, scene.target, 10.0)
    far = _outcome("lumbar-medial-branch", f"placement.offset_mm={offset}", SHORT, COARSE).target
    near = _outcome("lumbar-medial-branch", SHORT, COARSE).target
    assert near.pain_block and not far.pain_block
    assert far.pain_fibres_killed_fraction < near.pain_fibres_killed_fraction


def test_parallel_lesions_a_longer_segment_than_perpendicular():
    parallel = _outcome("lumbar-medial-branch", COARSE).target
    perpendicular = _outcome("lumbar-medial-branch", "placement.approach=perpendicular", COARSE).target
    assert parallel.lesioned_length_mm > perpendicular.lesioned_length_mm + 1.0


def test_placement_near_the_cord_raises_the_cord_flag():
    scene = load_template("lumbar-medial-branch")
    pose = scene.placements[(scene.target, "parallel")]
    lo, hi = (np.asarray(b) for b in scene.bounds_m)
    grid = np.stack(np.meshgrid(*(np.arange(a, b, 1e-3) for a, b in zip(lo, hi, strict=True)), indexing="ij"), -1).reshape(-1, 3)
    cord = next(c for c in scene.critical if c.kind == "spinal-cord")
    ids = [scene.region_names.index(r) for r in cord.regions]
    inside = grid[np.isin(scene.label_at(grid), ids)]
    nearest = inside[np.argmin(np.linalg.norm(inside - pose.tip_m, axis=1))]
    tip = nearest + 1.5e-3 * (pose.tip_m - nearest) / np.linalg.norm(pose.tip_m - nearest)
    overrides = ("placement.approach=explicit", f"placement.tip_mm={[float(v) for v in tip * 1e3]}", f"placement.direction={[float(v) for v in pose.direction]}")
    outcome = _outcome("lumbar-medial-branch", *overrides, SHORT, COARSE)
    cord_risk = next(r for r in outcome.critical if r.kind == "spinal-cord")
    assert cord_risk.injured
    assert any("SPINAL CORD" in w for w in outcome.warnings)


@pytest.mark.parametrize("template", TEMPLATES[1:])
def test_every_template_simulates(template):
    outcome = _outcome(template, SHORT, COARSE)
    out = outcome.to_dict()
    assert TARGET_KEYS <= set(out["target"])
    assert out["lesion"]["width_mm"] > 0
    assert out["target"]["pain_fibres_killed_fraction"] > 0.5, out["target"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["plan", "new", "--template", "spleen"], "anatomy.template = 'spleen'"),
        (["simulate", "PLAN", "--set", "target.nerve=L9 medial branch"], "target.nerve = 'L9 medial branch'"),
        (["simulate", "PLAN", "--set", "placement.offset_mm=[nan,0,0]"], "placement.offset_mm[0] = nan"),
        (["simulate", "PLAN", "--set", "placement.approach=explicit", "--set", "placement.tip_mm=[900,0,0]", "--set", "placement.direction=[0,0,1]"], "outside the anatomy"),
        (["simulate", "BAD"], "malformed TOML"),
        (["simulate", "PLAN", "--set", "placement.offset_mm=[-6.0,7.2,-3.4]"], "inside bone"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, argv, fragment):
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_toml(new_plan("lumbar-medial-branch")))
    bad = tmp_path / "bad.toml"
    bad.write_text("[anatomy]\ntemplate = \n")
    argv = [str(plan) if a == "PLAN" else str(bad) if a == "BAD" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1, err
    assert load_plan(plan)  # the good plan itself is fine


def test_imported_label_map_end_to_end(tmp_path, capsys):
    """A small NIfTI made here, its labels map and nerves file, simulated from a plan."""
    nib = pytest.importorskip("nibabel")
    shape = (41, 41, 41)  # 1 mm voxels, centred on the origin
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = -20.0
    labels = np.zeros(shape, dtype=np.int16)
    labels[28:, :, :] = 1  # bone for x >= 8 mm
    labels[:6, :6, :] = 2  # a cord-like column in a corner, ~20 mm away
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "case.nii.gz")
    (tmp_path / "labels.toml").write_text(
        'name = "test-case"\ntarget = "test nerve"\n[labels]\n'
        '0 = { region = "soft tissue", tissue = "muscle" }\n'
        '1 = { region = "vertebra", tissue = "bone" }\n'
        '2 = { region = "cord", tissue = "spinal-cord", critical = "spinal-cord" }\n'
    )
    nerve = {"name": "test nerve", "centerline_mm": [[3.0, 0.0, -15.0], [3.0, 0.0, 15.0]], "radius_mm": 0.5, "fibres": "lumbar medial branch", "end_organ_mm": 15.0}
    (tmp_path / "nerves.json").write_text(json.dumps({"nerves": [nerve]}))
    (tmp_path / "plan.toml").write_text(
        '[anatomy]\nlabels = "case.nii.gz"\nlabels_map = "labels.toml"\nnerves = "nerves.json"\n'
        '[procedure]\nmethod = "rf"\ntime_s = 40\n[simulation]\nmesh_refinement = 0.7\n'
    )
    assert main(["simulate", str(tmp_path / "plan.toml"), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["anatomy"]["name"] == "test-case"
    assert out["target"]["nerve"] == "test nerve" and out["target"]["pain_block"] is True
    cord = next(c for c in out["critical"] if c["kind"] == "spinal-cord")
    assert cord["injured"] is False and cord["distance_to_lesion_mm"] > 5
    # an unknown label in the volume is refused before any solve, in one line
    labels[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "case.nii.gz")
    assert main(["simulate", str(tmp_path / "plan.toml"), "--json", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "7" in err and len(err.splitlines()) == 1, err
