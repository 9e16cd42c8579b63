"""Plans on a patient's scan (issue 17) as a user runs them: `plan new --segmentation`, `simulate`,
`report`, `compare`, `--save`, on the shared TotalSegmentator CT (examples/anatomy)."""

import json
import shutil
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from neurolysis.anatomy.imaging.load import load_anatomy
from neurolysis.cli import main
from neurolysis.planning.plan import new_segmentation_plan, plan_toml
from neurolysis.planning.simulate import simulate

CT = Path(__file__).resolve().parents[2] / "examples" / "anatomy" / "totalsegmentator-example"
LAYERS = [str(CT / "seg.nii.gz"), str(CT / "vertebrae_body.nii.gz")]
NAMES = ["totalsegmentator", "totalsegmentator:vertebrae_body"]
COARSE = ("simulation.mesh_refinement=0.7", "procedure.time_s=60")
"""Behaviour checks need the right answer, not the verified accuracy: a coarser mesh and a shorter
lesion keep the suite inside the CI budget."""


@cache
def _anatomy():
    return load_anatomy(LAYERS, NAMES)


@cache
def _posterior_elements(level: str) -> np.ndarray:
    """Voxel centres (mm) of a vertebra minus its body: the posterior elements."""
    a = _anatomy()
    vertebra = a.find("vertebra", level)
    box = a.box(vertebra, 1)
    mask = a.mask(vertebra, box) & ~a.mask(a.find("vertebral-body"), box)
    return a.points_mm(mask, box)


def _plan_file(tmp_path: Path, *extra: str, method: str = "rf") -> Path:
    """`plan new` on copies of the scan in tmp_path, with paths relative to the plan (as a user keeps a case folder)."""
    for name in ("seg.nii.gz", "vertebrae_body.nii.gz", "ct.nii.gz"):
        if not (tmp_path / name).exists():
            shutil.copy(CT / name, tmp_path / name)
    plan = new_segmentation_plan(["seg.nii.gz", "vertebrae_body.nii.gz"], NAMES, "ct.nii.gz", "right", "L4 medial branch", method=method, base_dir=str(tmp_path))
    path = tmp_path / "plan.toml"
    path.write_text(plan_toml(plan), encoding="utf-8")
    return path


@cache
def _lumbar_outcome():
    plan = new_segmentation_plan(LAYERS, NAMES, str(CT / "ct.nii.gz"), "right", "L4 medial branch")
    return simulate(plan)


def test_l4_medial_branch_rf_on_the_ct_lies_on_the_posterior_elements_outside_bone():
    out = _lumbar_outcome()
    d = out.to_dict()
    tip = np.asarray(d["placement"]["tip_mm"])
    assert d["anatomy"]["frame"] == "RAS" and d["anatomy"]["landmark_rule"] == "lumbar-medial-branch"
    assert out.scene.region_tissue[out.scene.label_at(tip[None] * 1e-3)[0]] != "bone"
    l5 = np.linalg.norm(_posterior_elements("L5") - tip, axis=1).min()
    l4 = np.linalg.norm(_posterior_elements("L4") - tip, axis=1).min()
    assert l5 <= 6.0, f"tip {l5:.1f} mm from the L5 posterior elements (the SAP-TP junction of the level below)"
    assert l4 <= 15.0, f"tip {l4:.1f} mm from the L4 posterior elements"
    critical = {c["name"]: c for c in d["critical"]}
    assert critical["spinal_cord"]["kind"] == "spinal-cord" and critical["aorta"]["kind"] == "artery"
    for name in ("spinal_cord", "aorta", "L4 spinal nerve"):
        assert np.isfinite(critical[name]["peak_temp_c"]) and critical[name]["injured"] is False
    assert d["target"]["pain_block"] is True
    assert "files_sha256" in d["anatomy"] and len(d["anatomy"]["files_sha256"]) == 3


def test_the_other_side_mirrors_the_placement():
    right = _lumbar_outcome().pose.tip_m * 1e3
    left = new_segmentation_plan(LAYERS, NAMES, None, "left", "L4 medial branch")
    from neurolysis.planning.simulate import prepare

    tip = prepare(left).pose.tip_m * 1e3
    centre = _anatomy().voxels_mm(_anatomy().find("vertebral-body")).mean(axis=0)
    assert np.sign(right[0] - centre[0]) == -np.sign(tip[0] - centre[0])
    assert abs(abs(right[0] - centre[0]) - abs(tip[0] - centre[0])) < 10.0


def test_plan_new_simulate_report_and_save_from_the_command_line(tmp_path, capsys):
    path = _plan_file(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert 'segmentation = ["seg.nii.gz", "vertebrae_body.nii.gz"]' in text and 'side = "right"' in text
    assert main(["simulate", str(path), "--json", "--quiet", *[f"--set={s}" for s in COARSE]]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["anatomy"]["frame"] == "RAS" and d["target"]["nerve"] == "L4 medial branch"
    # a point read off the scan goes into the plan as it is: the explicit pose at the JSON's tip gives the same lesion
    tip, direction = d["placement"]["tip_mm"], d["placement"]["direction"]
    explicit = ["--set=placement.approach=\"explicit\"", f"--set=placement.tip_mm={tip}", f"--set=placement.direction={direction}"]
    assert main(["simulate", str(path), "--json", "--quiet", *[f"--set={s}" for s in COARSE], *explicit]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["lesion"]["width_mm"] == pytest.approx(d["lesion"]["width_mm"], abs=1e-6)
    report = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(report), "--quiet", *[f"--set={s}" for s in COARSE]]) == 0
    html = report.read_text(encoding="utf-8")
    assert "RAS: every coordinate" in html and "lumbar-medial-branch" in html and "data:image/png;base64" in html


def test_saved_case_changes_with_the_scan_under_the_same_path(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NEUROLYSIS_STORE", str(tmp_path / "cases.db"))
    path = _plan_file(tmp_path, method="block")
    ids = []
    for _ in range(2):
        assert main(["simulate", str(path), "--json", "--quiet", "--set=patient.weight_kg=70", "--save"]) == 0
        ids.append(capsys.readouterr().err.split("saved case ")[1].split()[0])
        image = tmp_path / "ct.nii.gz"
        image.write_bytes(image.read_bytes())  # same bytes, new mtime: the same case
    assert ids[0] == ids[1]
    import nibabel

    ct = nibabel.load(str(tmp_path / "ct.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(np.asanyarray(ct.dataobj) + 1, ct.affine, ct.header), str(tmp_path / "ct.nii.gz"))
    assert main(["simulate", str(path), "--json", "--quiet", "--set=patient.weight_kg=70", "--save"]) == 0
    changed = capsys.readouterr().err.split("saved case ")[1].split()[0]
    assert changed != ids[0]


def test_compare_on_the_scan_uses_the_procedures_applicability(tmp_path, capsys):
    path = _plan_file(tmp_path)
    assert main(["compare", str(path), "--methods", "pulsed-rf,block", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    by = {m["method"]: m for m in result["methods"]}
    assert result["template"] == "lumbar-medial-branch" and result["target"] == "L4 medial branch"
    assert by["pulsed-rf"]["applicable"] is False and by["block"]["simulated"] is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--set=anatomy.side=\"middle\""], "anatomy.side = 'middle'"),
        (["--set=target.nerve=\"L9 medial branch\""], "target.nerve = 'L9 medial branch'"),
        (["--set=anatomy.segmentation=\"missing.nii.gz\""], "missing.nii.gz"),
        (["--set=anatomy.names=\"names.tsv\""], "= 'names.tsv': none of its labels"),
        (["--set=anatomy.tissues={ aorta = \"granite\" }"], "anatomy.tissues.aorta = 'granite'"),
    ],
)
def test_bad_scan_plans_fail_in_one_line(tmp_path, capsys, change, message):
    path = _plan_file(tmp_path)
    (tmp_path / "names.tsv").write_text("label\tname\n200\tvertebrae_L4\n", encoding="utf-8")
    assert main(["simulate", str(path), "--check", *change]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err


def test_a_plan_without_a_side_names_the_sides(tmp_path, capsys):
    for name in ("seg.nii.gz",):
        shutil.copy(CT / name, tmp_path / name)
    assert main(["plan", "new", "--segmentation", str(tmp_path / "seg.nii.gz"), "--names", "totalsegmentator", "--target", "L4 medial branch"]) == 2
    err = capsys.readouterr().err
    assert "anatomy.side = None" in err and "left, right" in err


def test_the_whole_ct_is_cut_to_the_region_around_the_target_and_says_so():
    out = _lumbar_outcome()
    lo, hi = (np.asarray(b) * 1e3 for b in out.scene.bounds_m)
    assert np.all(hi - lo <= 2 * 80.0 + 3 * 3.0)
    assert any("simulated in a 160 mm box" in w for w in out.warnings)


KNEE = CT.parent / "spl-knee-atlas"


def test_celiac_plexus_chemical_plan_from_plan_new_to_report(tmp_path, capsys, monkeypatch):
    for name in ("seg.nii.gz", "vertebrae_body.nii.gz", "ct.nii.gz"):
        shutil.copy(CT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)  # relative paths, as a user in the case's folder writes them
    assert main(["plan", "new", "--segmentation", "seg.nii.gz", "vertebrae_body.nii.gz", "--names", "totalsegmentator", "totalsegmentator:vertebrae_body",
                 "--image", "ct.nii.gz", "--target", "celiac plexus", "--method", "chemical"]) == 0  # fmt: skip
    (tmp_path / "celiac.toml").write_text(capsys.readouterr().out, encoding="utf-8")
    plan = tmp_path / "celiac.toml"
    fast = ["--set=simulation.mesh_refinement=0.7", "--set=procedure.injections=1"]  # the checks are of placement and structures, not of the spread
    assert main(["simulate", str(plan), "--json", "--quiet", *fast]) == 0
    d = json.loads(capsys.readouterr().out)
    tip = np.asarray(d["placement"]["tip_mm"])
    a = _anatomy()
    sup = a.axis("superior")
    t12, l1 = (a.voxels_mm(a.find("vertebra", lv)).mean(axis=0) @ sup for lv in ("T12", "L1"))
    assert min(t12, l1) - 5 <= tip @ sup <= max(t12, l1) + 5  # at T12-L1
    critical = {c["name"]: c for c in d["critical"]}
    assert critical["aorta"]["kind"] == "artery" and critical["spinal_cord"]["kind"] == "spinal-cord"
    assert "agent_fraction" in critical["aorta"] and d["anatomy"]["procedure_template"] == "celiac-plexus"
    assert main(["report", str(plan), "-o", str(tmp_path / "celiac.html"), "--quiet", *fast]) == 0
    assert "celiac plexus" in (tmp_path / "celiac.html").read_text(encoding="utf-8")


def test_destroying_the_labelled_common_peroneal_nerve_of_the_knee_atlas_warns_foot_drop(tmp_path, capsys):
    assert main(["plan", "new", "--segmentation", str(KNEE / "knee_seg.nrrd"), "--names", str(KNEE / "knee.ctbl"), "--target", "common peroneal nerve", "--method", "cryo"]) == 0
    (tmp_path / "cpn.toml").write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["simulate", str(tmp_path / "cpn.toml"), "--json", "--quiet", "--set=simulation.mesh_refinement=0.7"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["anatomy"]["frame"] == "LPS"
    assert any(w.startswith("FOOT DROP RISK") for w in d["warnings"]), d["warnings"]


@pytest.mark.parametrize(
    ("files", "names"),
    [([str(CT / "seg.nii.gz"), str(CT / "vertebrae_body.nii.gz")], ["totalsegmentator", "totalsegmentator:vertebrae_body"]), ([str(KNEE / "knee_seg.nrrd")], [str(KNEE / "knee.ctbl")])],
)
def test_anatomy_inspect_maps_every_bone_vessel_cord_and_nerve(capsys, files, names):
    assert main(["anatomy", "inspect", *files, "--names", *names, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["structures"] and all(s["tissue"] for s in d["structures"])
    important = {"vertebra", "vertebral-body", "sacrum", "rib", "femur", "tibia", "fibula", "bone", "artery", "vein", "spinal-cord", "spinal-canal", "nerve"}
    unmapped = [s for s in d["structures"] if not s["mapped"]]
    assert not [s for s in unmapped if s["kind"] in important]
    assert all(s["name"].startswith("label ") for s in unmapped), unmapped  # only the knee atlas's unnamed label 3
    assert d["targets"] and d["grid"]["frame"] in ("RAS", "LPS") and "disclaimer" in d


def test_monte_carlo_optimize_and_sweep_run_on_the_scan(tmp_path, capsys):
    """The other ways a plan is run (issue 17 section 3): a placement cohort, a search and a sweep
    on Dask, each on the same plan file on the scan (short and coarse: behaviour, not accuracy)."""
    path = _plan_file(tmp_path)
    data = path.read_text(encoding="utf-8")
    assert "mesh_refinement = 1.0" in data and "time_s = 90" in data
    path.write_text(data.replace("mesh_refinement = 1.0", "mesh_refinement = 0.7").replace("time_s = 90", "time_s = 60"), encoding="utf-8")
    assert main(["simulate", str(path), "--monte-carlo", "30", "--json", "--quiet"]) == 0
    u = json.loads(capsys.readouterr().out)["uncertainty"]
    assert u["samples"] == 30 and 0.0 <= u["p_block"] <= 1.0 and "spinal_cord" in {c["name"] for c in u["critical"]}
    assert main(["optimize", str(path), "--budget", "4", "--full-solves", "2", "--samples", "20", "-o", str(tmp_path / "best.toml"), "--json", "--quiet"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert (tmp_path / "best.toml").exists() and 'segmentation = ["seg.nii.gz", "vertebrae_body.nii.gz"]' in (tmp_path / "best.toml").read_text(encoding="utf-8"), best
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('base = "plan.toml"\n[vary]\n"placement.offset_mm" = [[0, 0, 0], [0, 0, 2]]\n', encoding="utf-8")
    assert main(["sweep", str(sweep), "--workers", "1", "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["points"] == 2 and summary.get("failed", 0) == 0, summary
