import subprocess
import sys


def test_import_does_not_pull_plotting_or_cli_libraries():
    """`import neurolysis` stays light: no matplotlib, no rich (only the CLI and report use them)."""
    code = "import sys, neurolysis; print(sorted(m for m in ('matplotlib', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", check=True).stdout.strip()
    assert out == "[]"


def test_public_api_is_curated():
    import neurolysis

    assert set(neurolysis.__all__) >= {"RFSettings", "simulate_rf", "RFResult", "ValidationError", "load_tissue"}
    for name in neurolysis.__all__:
        assert hasattr(neurolysis, name)
