"""The layout docs/architecture.md describes, held against the code: layers, rooms, the registry."""

import ast
import dataclasses
from pathlib import Path

import pytest

import neurolysis
from neurolysis.cli import main
from neurolysis.methods import METHODS, method_names, procedure_fields
from neurolysis.planning import simulate as simulate_module
from neurolysis.planning.plan import ProcedureSpec, plan_toml
from tests.plans import one_needle_plan

SRC = Path(neurolysis.__file__).parent
MAX_MODULE_LINES = 470  # "about 450" (issue 9)


def _imports(path: Path) -> set[str]:
    """Modules imported at run time (imports under ``if TYPE_CHECKING:`` only name types)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _modules(folder: str) -> list[Path]:
    return sorted((SRC / folder).rglob("*.py"))


def test_no_module_is_long():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


@pytest.mark.parametrize("folder", ["physics", "engines", "outcome", "anatomy", "methods"])
def test_lower_layers_never_import_the_edge(folder):
    """Physics, engines, outcome, anatomy and methods know nothing of plans, the CLI or reports."""
    for path in _modules(folder):
        bad = {m for m in _imports(path) if m.startswith(("neurolysis.cli", "neurolysis.report", "neurolysis.planning"))}
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_engines_import_no_method_and_the_3d_rf_engine_not_the_2d_one():
    for path in _modules("engines") + _modules("physics"):
        bad = {m for m in _imports(path) if m.startswith(("neurolysis.methods", "neurolysis.outcome"))}
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"
    assert "neurolysis.engines.rf.engine2d" not in _imports(SRC / "engines" / "rf" / "engine3d.py")


def test_registry_is_built_from_the_method_modules():
    modules = sorted(p.stem for p in (SRC / "methods").glob("*.py") if p.stem not in ("__init__", "base"))
    assert sorted({m.solve.__module__.rsplit(".", 1)[1] for m in METHODS.values()}) == modules
    assert method_names() == ("rf", "cooled-rf", "pulsed-rf", "chemical", "cryo", "surgical", "block")


def test_procedure_fields_are_the_methods_fields():
    declared = ["method", *(f.name for f in procedure_fields())]
    assert [f.name for f in dataclasses.fields(ProcedureSpec)] == declared
    for method in METHODS.values():
        assert set(method.field_names) <= set(declared)


def test_public_api():
    for name in neurolysis.__all__:
        assert hasattr(neurolysis, name), name
    assert {"load_plan", "new_plan", "simulate", "Plan", "Outcome", "RFSettings", "simulate_rf"} <= set(neurolysis.__all__)


def test_simulate_prepares_once(tmp_path, monkeypatch, capsys):
    """The command line validates the plan before the solve and solves that same context."""
    calls = []
    real = simulate_module.load_scene
    monkeypatch.setattr(simulate_module, "load_scene", lambda plan: calls.append(plan) or real(plan))
    path = tmp_path / "plan.toml"
    path.write_text(plan_toml(one_needle_plan("genicular", "surgical")))
    assert main(["simulate", str(path), "--json", "--quiet"]) == 0
    assert len(calls) == 1
    capsys.readouterr()


EXTRA_LIBRARIES = {"store": ("sqlalchemy", "alembic", "psycopg", "platformdirs"), "web": ("fastapi", "starlette", "uvicorn", "pydantic"), "sweep": ("dask", "distributed", "pyarrow")}


def _module_level_imports(path: Path) -> set[str]:
    """Imports at module level (not inside a function): what importing the module costs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_extras_stay_in_their_rooms():
    """SQLAlchemy, FastAPI and Dask are optional extras: only the store, web and sweep packages
    import them, no other module imports those packages, and their ``command`` modules and package
    ``__init__`` (``plan_cli.py`` imports the store's command for ``simulate --save``; the
    store's ``cases`` command must name the missing extra in one line) import none of them at module level."""
    heavy = tuple(lib for libs in EXTRA_LIBRARIES.values() for lib in libs)
    for path in SRC.rglob("*.py"):
        room = path.relative_to(SRC).parts[0]
        if room in EXTRA_LIBRARIES:
            if path.name in ("command.py", "__init__.py") and path.parent.name == room:  # imported by commands that run without the extra
                bad = {m for m in _module_level_imports(path) if m.split(".")[0] in heavy}
                assert not bad, f"{path.relative_to(SRC)} imports {bad} at module level"
            continue
        imported = _imports(path)
        bad = {m for m in imported if m.split(".")[0] in heavy}
        bad |= {m for m in imported if m.startswith(tuple(f"neurolysis.{r}" for r in EXTRA_LIBRARIES)) and path.name != "plan_cli.py"}  # simulate --save
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"
    for path in _modules("store") + _modules("sweep"):
        assert not {m for m in _imports(path) if m.startswith("neurolysis.web")}, path


def test_the_light_entry_point_lists_what_the_full_parser_holds(capsys):
    """issue 20: ``neurolysis --help`` is answered from neurolysis.cli.COMMANDS without importing the
    planner; the full parser (every command's module) has exactly those commands, in that order, with that help."""
    import argparse
    import subprocess
    import sys

    from neurolysis.cli import COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(COMMANDS)
    assert {a.dest: a.help for a in sub._choices_actions} == COMMANDS
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(text in out for text in COMMANDS.values())
    loaded = subprocess.run([sys.executable, "-c", "import sys; from neurolysis.cli import main; main(['--help']); print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy', 'rich')))"],
                            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]  # fmt: skip
    assert loaded == "[]", loaded
