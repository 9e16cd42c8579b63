"""Benchmark: a plan on a patient's scan, end to end (import, plan new, simulate), wall time and
peak memory, on the shared TotalSegmentator CT and on a 512 x 512 x 600 volume made from it.

    python bench/scan_plan.py [--skip-large] [--json bench/results/scan_plan.json]

Each case runs in its own process (peak memory is that process's maximum resident set size,
getrusage): the read of the segmentation layers and the CT, the name rules, the landmark rule
(right L4 medial branch), the scene (the region around the target), the default RF plan's 3D
solve, the nerve outcome and the critical structures. The large case upsamples the shared CT
and its segmentation (nearest neighbour, 0.72 x 0.59 x 0.56 mm voxels, uncompressed NIfTI, int16
CT) so that the anatomy is real and the grid is that of a fine clinical CT. The default template
plan (lumbar-medial-branch) is solved in the same process as the reference (ratio printed).
Issue 17 goal: <= 30 s and <= 4 GiB on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CT = REPO / "examples" / "anatomy" / "totalsegmentator-example"
LARGE_SHAPE = (512, 512, 600)
TARGET, SIDE = "L4 medial branch", "right"

sys.path.insert(0, str(REPO / "bench"))
from rf_lesion import machine  # noqa: E402


def _upsample(src: Path, dst: Path, shape, dtype) -> None:
    """``src`` (NIfTI) on a finer grid of ``shape`` covering the same field (nearest voxel), uncompressed."""
    import nibabel

    img = nibabel.load(str(src))
    data = np.asanyarray(img.dataobj)
    index = [np.minimum(((np.arange(n) + 0.5) * data.shape[a] / n).astype(int), data.shape[a] - 1) for a, n in enumerate(shape)]
    big = data[np.ix_(*index)].astype(dtype)
    scale = np.array([data.shape[a] / shape[a] for a in range(3)])
    affine = img.affine.copy()
    affine[:3, :3] = img.affine[:3, :3] * scale
    affine[:3, 3] = img.affine[:3, :3] @ (0.5 * scale - 0.5) + img.affine[:3, 3]  # voxel centres of the same field
    nibabel.save(nibabel.Nifti1Image(big, affine), str(dst))


def _case(files: dict, queue) -> None:
    from neurolysis.planning.plan import new_plan, new_segmentation_plan
    from neurolysis.planning.simulate import simulate

    started = time.perf_counter()
    plan = new_segmentation_plan(files["segmentation"], files["names"], files["image"], SIDE, TARGET)
    planned = time.perf_counter()
    outcome = simulate(plan)
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    ref_started = time.perf_counter()
    simulate(new_plan("lumbar-medial-branch"))
    reference = time.perf_counter() - ref_started
    t = outcome.target
    queue.put({
        "import_and_plan_s": round(planned - started, 2), "simulate_s": round(done - planned, 2), "total_s": round(done - started, 2), "peak_gib": round(peak, 2),
        "template_plan_s": round(reference, 2), "ratio_to_template_plan": round((done - started) / reference, 2),
        "pain_block": bool(t.pain_block), "pain_fibres_killed": round(t.pain_fibres_killed_fraction, 3),
        "lesion_mm": [round(outcome.physics.lesion["width_mm"], 2), round(outcome.physics.lesion["length_mm"], 2)],
        "tip_mm": [round(float(v), 1) for v in outcome.pose.tip_m * 1e3], "region": outcome.scene.sources.get("region simulated"),
    })  # fmt: skip


def _run(files: dict) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_case, args=(files, queue))
    p.start()
    result = queue.get()
    p.join()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="only the shared CT")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    names = ["totalsegmentator", "totalsegmentator:vertebrae_body"]
    cases = {"shared CT (122 x 101 x 112, 3 mm)": {"segmentation": [str(CT / "seg.nii.gz"), str(CT / "vertebrae_body.nii.gz")], "names": names, "image": str(CT / "ct.nii.gz")}}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_large:
            started = time.perf_counter()
            big = {"segmentation": [f"{tmp}/seg.nii", f"{tmp}/body.nii"], "names": names, "image": f"{tmp}/ct.nii"}
            _upsample(CT / "seg.nii.gz", Path(big["segmentation"][0]), LARGE_SHAPE, np.uint8)
            _upsample(CT / "vertebrae_body.nii.gz", Path(big["segmentation"][1]), LARGE_SHAPE, np.uint8)
            _upsample(CT / "ct.nii.gz", Path(big["image"]), LARGE_SHAPE, np.int16)
            print(f"made the {' x '.join(map(str, LARGE_SHAPE))} volumes in {time.perf_counter() - started:.1f} s (not counted)")
            cases[f"upsampled CT ({' x '.join(map(str, LARGE_SHAPE))}, 0.72 x 0.59 x 0.56 mm)"] = big
        results = {}
        for name, files in cases.items():
            r = _run(files)
            results[name] = r
            met = "met" if r["total_s"] <= 30 and r["peak_gib"] <= 4 else "MISSED"
            print(f"{name}: import + plan {r['import_and_plan_s']:.1f} s, simulate {r['simulate_s']:.1f} s, total {r['total_s']:.1f} s "
                  f"(template plan {r['template_plan_s']:.1f} s, ratio {r['ratio_to_template_plan']:.2f}); peak {r['peak_gib']:.2f} GiB; goal {met}")  # fmt: skip
            print(f"  tip {r['tip_mm']} mm, lesion {r['lesion_mm']} mm, pain fibres killed {r['pain_fibres_killed']}, block {r['pain_block']}; {r['region']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "cases": results}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
