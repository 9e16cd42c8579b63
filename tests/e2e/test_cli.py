"""The `neurolysis` command as a user runs it: the issue's command lines, JSON contract, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from neurolysis.cli import main

LESION_KEYS = {"criterion", "width_mm", "length_mm", "distal_mm", "proximal_mm", "volume_mm3", "area_mm2"}
TOP_KEYS = {
    "lesion", "isotherm50", "cem43", "max_tissue_temp_c", "tip_temp_c_final", "mean_power_w",
    "impedance_ohm_start", "impedance_ohm_end", "traces", "settings", "mesh", "disclaimer",
}  # fmt: skip
TRACE_KEYS = {"time_s", "tip_temp_c", "voltage_v", "power_w", "impedance_ohm"}


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_conventional_json_contract(capsys):
    out = _json(capsys, ["rf", "--gauge", "22", "--tip-mm", "10", "--set-temp-c", "80", "--time-s", "120", "--json", "--quiet"])
    assert TOP_KEYS <= set(out)
    for key in ("lesion", "isotherm50", "cem43"):
        assert LESION_KEYS <= set(out[key])
    assert out["lesion"]["criterion"] == "arrhenius"
    assert TRACE_KEYS <= set(out["traces"])
    assert len({len(v) for v in out["traces"].values()}) == 1
    assert out["settings"]["gauge"] == 22 and out["settings"]["time_s"] == 120
    assert out["mesh"]["verified_tolerance_mm"] == 0.1
    assert out["disclaimer"] == "research and education tool, not for clinical decisions"
    assert 0 < out["lesion"]["width_mm"] < out["isotherm50"]["width_mm"] + 1


def test_cooled_with_plot(tmp_path, capsys):
    png = tmp_path / "cooled.png"
    assert main(["rf", "--mode", "cooled", "--gauge", "17", "--tip-mm", "4", "--set-temp-c", "60", "--time-s", "150", "--plot", str(png), "--quiet"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "width" in capsys.readouterr().out


def test_pulsed_json_reports_no_lesion(capsys):
    out = _json(capsys, ["rf", "--mode", "pulsed", "--gauge", "22", "--tip-mm", "5", "--time-s", "120", "--json", "--quiet"])
    pulsed = out["pulsed"]
    assert pulsed["thermal_lesion"] is False and "no thermal lesion" in pulsed["verdict"]
    assert {"peak_tissue_temp_c", "mean_tissue_temp_c", "electric_field_v_per_m"} <= set(pulsed)
    assert {"lateral_0.5mm", "lateral_1mm", "lateral_2mm"} <= set(pulsed["electric_field_v_per_m"])
    assert out["lesion"]["volume_mm3"] == 0


def test_ex_vivo_chicken(capsys):
    argv = "rf --ex-vivo --initial-temp-c 21 --tissue chicken-breast --gauge 20 --tip-mm 10 --set-temp-c 80 --time-s 90 --json --quiet"
    out = _json(capsys, argv.split())
    assert out["settings"]["ex_vivo"] is True and out["settings"]["initial_temp_c"] == 21
    assert out["traces"]["tip_temp_c"][0] < 30


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ("rf --gauge 99", "gauge = 99: allowed values are 16, 17, 18, 20, 22, 23"),
        ("rf --time-s -5", "time_s = -5 s: allowed range is [1, 1800] s"),
        ("rf --set-temp-c 150", "set_temp_c = 150 C: allowed range is"),
        ("rf --tip-mm nan", "tip_mm = nan: must be a finite number"),
        ("rf --set-temp-c inf", "set_temp_c = inf: must be a finite number"),
        ("rf --tissue brain", "tissue = 'brain': allowed values are"),
        ("rf --gauge x", "argument --gauge: invalid int value: 'x'"),
        ("rf --device nope", "device = 'nope': allowed values are"),
        ("rf --mode pulsed --set-temp-c 80", "set_temp_c = 80 C: pulsed RF is voltage-driven"),
        ("rf --tissue chicken-breast", "tissue = 'chicken-breast': an ex vivo phantom"),
        ("rf --initial-temp-c 21", "initial_temp_c = 21 C: only used in ex vivo mode"),
    ],
)
def test_bad_input_one_line_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) if "invalid int" in needle else _no_raise():
        code = main(argv.split())
        assert code == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_catalog_listings(capsys):
    devices = _json(capsys, ["devices", "--json"])
    assert "cooled-17g-4mm" in devices["devices"]
    tissues = _json(capsys, ["tissues", "--json"])
    assert "nerve" in tissues and "sources" in tissues["nerve"]
    assert main(["devices"]) == 0 and "generator limits" in capsys.readouterr().out
    assert main(["tissues"]) == 0 and "muscle" in capsys.readouterr().out


SCRIPT = Path(sys.executable).with_name("neurolysis")


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed beside this interpreter")
def test_installed_entry_point_bad_input():
    done = subprocess.run([str(SCRIPT), "rf", "--gauge", "99"], capture_output=True, text=True, encoding="utf-8")
    assert done.returncode == 2
    assert done.stderr.strip() == "neurolysis: error: gauge = 99: allowed values are 16, 17, 18, 20, 22, 23"
    assert done.stdout == ""
