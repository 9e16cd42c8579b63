"""Hypothesis fuzz of the entrance: plan files and ``--set`` overrides through the real CLI.

Every input either passes (``simulate --check`` exits 0; a few cheap plans are really
simulated) or fails with ONE line ``neurolysis: error: ...`` on stderr and exit code 2;
no traceback ever escapes. The inputs mix (a) plans written by ``neurolysis plan new`` for
every template and method, then mutated (wrong types, NaN/inf, huge and negative numbers,
unicode, unknown fields and sections, deleted fields), (b) ``--set`` overrides of random
text, and (c) malformed TOML and random bytes (invalid UTF-8 included).

The runs are derandomized (the same examples on every machine) and together draw more
than 10 000 examples.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import io
import itertools
import json
import logging
import math
import tempfile
import tomllib
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurolysis.cli import main
from tests.fuzz import FUZZ_SCALE

EXIT_OK, EXIT_USAGE = 0, 2
ERROR_PREFIX = "neurolysis: error:"  # argparse's own errors too (e.g. a --set value that looks like an option)

# ---------------------------------------------------------------------- running the CLI


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f"log ({record.name}): {record.getMessage()!r}")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``neurolysis <argv>`` run in-process; argparse's
    ``SystemExit`` (a usage error) is returned as its code, anything else propagates.

    Python warnings and logged records (warning and above) are what a user would also see
    on stderr: they are appended to it, one line each. A warning raised in neurolysis code
    is an error (as in the test configuration)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), other_stderr() as extra:
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = ("SystemExit", exit_.code)
    return code, out.getvalue(), err.getvalue() + "".join(line + "\n" for line in extra)


@contextlib.contextmanager
def other_stderr():
    """Collect, one line each, what would reach stderr besides ``print``: Python warnings
    and logged records of level warning and above (nibabel logs header repairs). A warning
    in neurolysis code is raised as an error, as in the test configuration."""
    lines: list[str] = []
    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("error", module="neurolysis")
            yield lines
    finally:
        root.removeHandler(records)
        lines += [f"warning ({w.category.__name__}): {str(w.message)!r}" for w in caught] + records.lines


def assert_one_line_error(code, out: str, err: str, argv) -> None:
    prefixes = (ERROR_PREFIX,)
    if code == ("SystemExit", EXIT_USAGE):
        code = EXIT_USAGE
    assert code == EXIT_USAGE, f"exit {code!r} for {argv!r}: {err!r}"
    assert "Traceback" not in err and "Traceback" not in out, f"{argv!r}: {err}"
    assert out == "", f"{argv!r}: output on stdout with an error: {out!r}"
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"{argv!r}: error is not one line: {err!r}"
    prefix = next((p for p in prefixes if lines[0].startswith(p)), None)
    assert prefix is not None, f"{argv!r}: {err!r}"
    assert lines[0][len(prefix) :].strip(), f"{argv!r}: empty error message"


def assert_entrance(argv: list[str], allowed_stderr: tuple[str, ...] = ("neurolysis: warning:", "warning (", "log (")) -> tuple[int, str]:
    """Run ``argv``; exit 0 with only ``allowed_stderr`` lines, or one error line and exit 2."""
    code, out, err = run_cli(argv)
    if code == EXIT_OK:
        assert "Traceback" not in err
        for line in err.splitlines():
            assert line.startswith(allowed_stderr), f"{argv!r}: unexpected stderr on success: {line!r}"
    else:
        assert_one_line_error(code, out, err, argv)
    return code, out


_TMP = tempfile.TemporaryDirectory(prefix="neurolysis-fuzz-plan-")
atexit.register(_TMP.cleanup)
_COUNTER = itertools.count()
# files a plan's [anatomy] labels / labels_map / nerves may name (relative to the plan)
FIXTURES = {
    "empty.nii.gz": b"",
    "junk.nii": bytes(range(256)) * 3,
    "map.toml": b'target = "n"\n[labels]\n0 = { region = "a", tissue = "muscle" }\n',
    "bad.toml": b"[labels\n",
    "nerves.json": b"[]",
    "bad.json": b'{"nerves": [',
}
for _name, _content in FIXTURES.items():
    (Path(_TMP.name) / _name).write_bytes(_content)
(Path(_TMP.name) / "adir.nii.gz").mkdir()


def check_plan_file(content: str | bytes, overrides: list[str] = ()) -> int:
    """Write ``content`` as a fresh plan file and run ``simulate FILE --check --set ...`` on it."""
    path = Path(_TMP.name) / f"plan-{next(_COUNTER)}.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    try:
        argv = ["simulate", str(path), "--check", *itertools.chain.from_iterable(("--set", s) for s in overrides)]
        code, out = assert_entrance(argv)
        if code == EXIT_OK:
            assert out.strip(), f"{argv!r}: --check printed nothing"
        return code
    finally:
        path.unlink()


# -------------------------------------------------------------- what the CLI says it has


def _cli_json(argv: list[str]) -> dict:
    code, out, err = run_cli(argv)
    assert code == EXIT_OK, err
    return json.loads(out)


def _cli_text(argv: list[str]) -> str:
    code, out, err = run_cli(argv)
    assert code == EXIT_OK, err
    return out


TEMPLATES = _cli_json(["templates", "--json"])["templates"]
METHODS = _cli_json(["methods", "--json"])["methods"]
TEMPLATE_NAMES = [t["name"] for t in TEMPLATES]
METHOD_NAMES = [m["method"] for m in METHODS]
NERVE_NAMES = sorted({n for t in TEMPLATES for n in t["targets"]})
CHOICE_WORDS = sorted({w for m in METHODS for words in m["choices"].values() for w in words})

BASE_TEXTS: list[str] = [_cli_text(["plan", "new", "--template", t, "--method", m]) for t in TEMPLATE_NAMES for m in METHOD_NAMES]
BASE_TEXTS += [_cli_text(["plan", "new", "--template", t["name"], "--target", n, "--approach", "perpendicular"]) for t in TEMPLATES for n in t["targets"]]
BASE_PLANS = [tomllib.loads(text) for text in BASE_TEXTS]

# the documented plan format (docs/planning.md)
SECTIONS = ("anatomy", "target", "procedure", "placement", "patient", "simulation")
FIELDS = {
    "anatomy": ("template", "labels", "labels_map", "nerves"),
    "target": ("nerve",),
    "procedure": ("method", *sorted({f for m in METHODS for f in m["fields"]})),
    "placement": ("approach", "offset_mm", "tip_mm", "direction"),
    "patient": ("weight_kg",),
    "simulation": ("seed", "n_axons", "mesh_refinement"),
}
ALL_FIELDS = sorted({f for names in FIELDS.values() for f in names})
WORDS = sorted({*TEMPLATE_NAMES, *METHOD_NAMES, *NERVE_NAMES, *CHOICE_WORDS, "parallel", "perpendicular", "explicit", "freeze", "thaw"})

# ---------------------------------------------------------------------- TOML writing


class Raw(str):
    """A TOML value written as is (``nan``, ``1e400``, dates, multi-line strings, ...)."""


_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if key and set(key) <= _BARE else toml_string(key)


def toml_value(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def plan_text(data: dict) -> str:
    """Top-level values first, then one ``[section]`` per table."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{toml_key(name)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------- strategies

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
keys = st.one_of(st.sampled_from(ALL_FIELDS), texts)
long_strings = st.sampled_from(["a" * 300, "x/" * 300, "é" * 1000, "../" * 50 + "etc/passwd", "/" * 5000, "n" * 5000])
strings = st.one_of(st.sampled_from(WORDS), texts, st.sampled_from(["", " ", "\t", "nan", "inf", "None", "null", "true", "RF", " rf"]), long_strings)
numbers = st.one_of(
    st.floats(),  # NaN and +/-inf included
    st.floats(-2000, 2000),
    st.integers(-100, 3000),
    st.integers(-(2**80), 2**80),
    st.sampled_from([0, -0.0, 1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e-300, -1, 1, 2**63 - 1, -(2**63), 2**64, 10**300]),
)
raw_literals = st.sampled_from([
    Raw(x)
    for x in (
        "nan", "+nan", "-nan", "inf", "+inf", "-inf", "1e400", "-1e400", "0x7FFFFFFFFFFFFFFF", "0o17", "0b1010",
        "1_000", "-0.0", "+1.5", "1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "1979-05-27T07:32:00.999",
        '"""two\nlines"""', "'literal \\ string'", "'''multi\nliteral'''", "1" + "0" * 5000, "-" + "9" * 4400,
        "0x" + "f" * 5000, "1" + "0" * 400, "-" + "9" * 400, "[" + "1" + "0" * 400 + ", 0, 0]", "[" * 600 + "]" * 600,
        "{a = " * 300 + "1" + "}" * 300, "[]", "{}", "[[]]", "[[[1]]]", "[nan, inf, -inf]", "[1e400, 0, 0]", '"\\u00e9\\U0001F600"',
    )
])  # fmt: skip
scalars = st.one_of(numbers, strings, st.booleans(), raw_literals)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=3)), max_leaves=8)
vectors = st.one_of(st.lists(numbers, min_size=3, max_size=3), st.lists(st.floats(-60, 60), min_size=3, max_size=3), st.lists(numbers, max_size=5))
cycles = st.lists(st.tuples(st.sampled_from(["freeze", "thaw", "melt", "", "FREEZE"]), st.one_of(numbers, strings)).map(list), max_size=4)
field_values = st.one_of(values, vectors, cycles, st.sampled_from(WORDS))
FACTORS = (-1.0, 0.0, 1e-3, 0.5, 0.99, 1.01, 2.0, 10.0, 1e6, 1e300, -1e300)


def mostly(likely, rarely, odds: int = 3):
    """``likely`` about ``odds`` times as often as ``rarely``."""
    return st.one_of(*([likely] * odds), rarely)


# values a field could plausibly hold (near and across its range), so that the fuzz also
# gets past the first check of a plan and reaches the method, anatomy and placement checks
paths = st.sampled_from([*FIXTURES, "adir.nii.gz", "case.nii.gz", "case.nii", "", ".", "/", "..", "/dev/null", "a" * 300, "a\x00b.nii", "é/ü.nii.gz"])
plausible_numbers = st.one_of(st.floats(-1, 5), st.floats(0, 150), st.floats(0, 2100), st.integers(-2, 2000))
PLAUSIBLE = {
    "template": st.sampled_from(TEMPLATE_NAMES),
    "labels": paths,
    "labels_map": paths,
    "nerves": paths,
    "nerve": st.sampled_from(NERVE_NAMES),
    "method": st.sampled_from(METHOD_NAMES),
    "approach": st.sampled_from(["parallel", "perpendicular", "explicit"]),
    "offset_mm": st.lists(st.floats(-60, 60), min_size=3, max_size=3),
    "placement.tip_mm": st.lists(st.floats(-80, 80), min_size=3, max_size=3),
    "direction": st.lists(st.floats(-1, 1), min_size=3, max_size=3),
    "weight_kg": st.one_of(st.floats(-10, 400), st.integers(0, 400)),
    "seed": st.integers(-3, 2**64),
    "n_axons": st.integers(0, 200_000),
    "mesh_refinement": st.floats(0, 3),
    "gauge": st.one_of(st.integers(10, 30), st.floats(10, 30)),
    "damage_model": st.sampled_from(["liver-jacques", "nerve-wondergem", "arrhenius", ""]),
    "agent": st.sampled_from(CHOICE_WORDS),
    "probe": st.sampled_from(CHOICE_WORDS),
    "cycles": st.lists(st.tuples(st.sampled_from(["freeze", "thaw"]), st.floats(-10, 2000)).map(list), max_size=4),
    "adjuvants": st.lists(st.sampled_from(CHOICE_WORDS), max_size=3),
    "override_max_dose": st.booleans(),
    "injections": st.integers(-1, 25),
}
METHOD_FIELDS = {m["method"]: m["fields"] for m in METHODS}


def plausible(section: str, key: str):
    return PLAUSIBLE.get(f"{section}.{key}", PLAUSIBLE.get(key, plausible_numbers))


def value_for(section: str, key: str):
    """A value for ``section.key``: plausible for the field two times in three, else anything."""
    return mostly(plausible(section, key), field_values, odds=2)


def fields_of(data: dict, section: str) -> list[str]:
    """The fields ``section`` has (for ``[procedure]``: of the plan's method, when known)."""
    if section == "procedure":
        method = data.get("procedure", {}).get("method") if isinstance(data.get("procedure"), dict) else None
        own = METHOD_FIELDS.get(method) if isinstance(method, str) else None
        return ["method", *(own or FIELDS["procedure"][1:])]
    return list(FIELDS.get(section, ALL_FIELDS))


@st.composite
def mutated_plans(draw) -> dict:
    """A plan of ``plan new`` with 0-4 random mutations."""
    data = copy.deepcopy(draw(st.sampled_from(BASE_PLANS)))
    ops = ("set",) * 6 + ("scale", "delete", "delete-section", "not-a-table", "unknown-section", "method", "method", "explicit", "move", "move", "label-map")
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(ops))
        if op in ("set", "scale", "delete"):
            section = draw(st.sampled_from(SECTIONS))
            table = data.setdefault(section, {})
            if not isinstance(table, dict):
                continue
            if op == "set":
                key = draw(mostly(st.sampled_from(fields_of(data, section)), keys, odds=4))
                table[key] = draw(value_for(section, key))
            elif table:
                key = draw(st.sampled_from(sorted(table)))
                if op == "delete":
                    del table[key]
                elif isinstance(table[key], int | float) and not isinstance(table[key], bool):
                    table[key] = table[key] * draw(st.sampled_from(FACTORS))
        elif op == "delete-section" and data:
            del data[draw(st.sampled_from(sorted(data)))]
        elif op == "not-a-table":
            data[draw(st.sampled_from(SECTIONS))] = draw(scalars)
        elif op == "unknown-section":
            data[draw(texts)] = draw(st.dictionaries(keys, scalars, max_size=3))
        elif op == "method":  # another method: only its name, or its whole [procedure] from another plan
            other = draw(st.sampled_from(BASE_PLANS))["procedure"]
            if draw(st.booleans()) or not isinstance(data.get("procedure"), dict):
                data["procedure"] = copy.deepcopy(other)
            else:
                data["procedure"]["method"] = other["method"]
        elif op == "label-map":  # an imported anatomy instead of the template
            data["anatomy"] = {"labels": draw(mostly(paths, strings)), "labels_map": draw(mostly(paths, strings))}
            if draw(st.booleans()):
                data["anatomy"]["nerves"] = draw(mostly(paths, strings))
        elif op in ("explicit", "move"):
            placement = data.setdefault("placement", {})
            if not isinstance(placement, dict):
                continue
            if op == "move":
                placement["offset_mm"] = draw(st.lists(st.floats(-20, 20), min_size=3, max_size=3))
                continue
            placement["approach"] = "explicit"
            placement["tip_mm"] = draw(mostly(PLAUSIBLE["placement.tip_mm"], vectors))
            placement["direction"] = draw(mostly(PLAUSIBLE["direction"], vectors))
            if draw(st.booleans()):
                placement.pop("offset_mm", None)
    return data


@st.composite
def field_overrides(draw) -> str:
    """``section.field=value`` for a documented field, the value plausible or anything."""
    section = draw(st.sampled_from(SECTIONS))
    name = draw(st.sampled_from(FIELDS[section]))
    value = draw(mostly(value_for(section, name).map(toml_value), st.one_of(strings, raw_literals), odds=4))
    sep = draw(mostly(st.just("="), st.sampled_from((" = ", "= ", "==", "=\n"))))
    return f"{section}.{name}{sep}{value}"


@st.composite
def overrides(draw) -> str:
    """One ``--set`` argument: mostly ``section.field=value``, sometimes garbage."""
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        return draw(field_overrides())
    if kind <= 7:
        section = draw(mostly(st.sampled_from(SECTIONS), texts))
        name = draw(mostly(st.sampled_from(FIELDS.get(section, ALL_FIELDS)), keys))
        value = draw(st.one_of(field_values.map(toml_value), strings, raw_literals, texts))
        return f"{section}.{name}={value}"
    if kind == 8:
        return draw(st.sampled_from(("", "=", ".=", "a.b.c=1", ".x=1", "x.=1", "procedure.=1", "procedure..method=rf", "procedure.method=rf=rf",
                                     "procedure.method", "placement.offset_mm", "[procedure]\nmethod=1", "placement.offset_mm=[[1,2],[3]]",
                                     "placement.offset_mm=[nan,0,0]", "placement.offset_mm=[-inf,0,0]", "procedure.time_s=-inf",
                                     "procedure.time_s=nan\nx=1", "simulation.seed=1" + "0" * 5000, "--help", "-h")))  # fmt: skip
    return draw(texts)


# ------------------------------------------------------------------------ byte edits

SNIPPETS = [b"[", b"]", b"=", b'"', b"'", b"\n", b"\r\n", b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"nan", b"inf",
            b"[[procedure]]", b"[procedure]", b"method = ", b"= =", b"#", b"\\", b"{", b"}", b",", b"\t", b"\xe2\x80\xa8"]  # fmt: skip


@st.composite
def raw_plan_bytes(draw) -> bytes:
    """Random bytes or text, or a valid plan's text with 1-6 byte edits (often still near-valid)."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=400))
    if kind == 1:
        return draw(st.text(st.characters(exclude_categories=("Cs",)), max_size=200)).encode("utf-8")
    data = bytearray(draw(st.sampled_from(BASE_TEXTS)).encode("utf-8"))
    for _ in range(draw(st.integers(1, 6))):
        n = len(data)
        at = draw(st.integers(0, n))
        edit = draw(st.sampled_from(("delete", "insert", "snippet", "replace", "truncate", "duplicate-line")))
        if edit == "delete":
            del data[at : at + draw(st.integers(1, 20))]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "snippet":
            data[at:at] = draw(st.sampled_from(SNIPPETS))
        elif edit == "replace" and at < n:
            data[at] = draw(st.integers(0, 255))
        elif edit == "truncate":
            del data[at:]
        elif edit == "duplicate-line":
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def _fuzz_settings(n: int):
    return settings(
        max_examples=max(1, int(n * FUZZ_SCALE)),
        derandomize=True,  # the same examples in CI and on every machine
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ----------------------------------------------------------------------------- tests


def test_every_generated_base_plan_is_valid():
    """The fuzz starts from plans that pass: every template x method, every target."""
    assert len(BASE_TEXTS) >= len(TEMPLATE_NAMES) * len(METHOD_NAMES)
    for text in BASE_TEXTS:
        assert check_plan_file(text) == EXIT_OK


@_fuzz_settings(5000)
@given(plan=mutated_plans(), sets=mostly(st.lists(field_overrides(), max_size=2), st.lists(overrides(), max_size=2)))
def test_mutated_plans_pass_or_fail_in_one_line(plan, sets):
    check_plan_file(plan_text(plan), sets)


@_fuzz_settings(3000)
@given(base=st.sampled_from(BASE_TEXTS), sets=st.lists(field_overrides(), min_size=1, max_size=4), wild=st.lists(overrides(), max_size=1))
def test_set_overrides_pass_or_fail_in_one_line(base, sets, wild):
    check_plan_file(base, sets + wild)


@_fuzz_settings(2500)
@given(content=raw_plan_bytes(), sets=st.lists(overrides(), max_size=1))
def test_malformed_files_and_bytes_fail_in_one_line(content, sets):
    check_plan_file(content, sets)


CHEAP_METHODS = ("block", "surgical")


@settings(max_examples=max(1, int(4 * FUZZ_SCALE) - 1), derandomize=True, database=None, deadline=None)
@given(
    template=st.sampled_from(TEMPLATE_NAMES),
    method=st.sampled_from(CHEAP_METHODS),
    seed=st.integers(0, 2**31),
    amount=st.floats(0.2, 1.0),
)
def test_valid_cheap_plans_simulate(template, method, seed, amount):
    """The other branch: a valid plan really simulates (exit 0, one JSON object on stdout)."""
    text = _cli_text(["plan", "new", "--template", template, "--method", method])
    path = Path(_TMP.name) / f"plan-{next(_COUNTER)}.toml"
    path.write_text(text, encoding="utf-8")
    field = "procedure.volume_ml" if method == "block" else "procedure.segment_mm"
    value = 5.0 * amount if method == "block" else 20.0 * amount
    argv = ["simulate", str(path), "--json", "--set", f"simulation.seed={seed}", "--set", f"{field}={value!r}", "--set", "simulation.n_axons=500"]
    code, out = assert_entrance(argv, allowed_stderr=("neurolysis: warning:", "neurolysis: solved in", "warning (", "log ("))
    assert code == EXIT_OK
    result = json.loads(out)
    assert result["method"] == method and result["settings"]["simulation"]["seed"] == seed
    assert isinstance(result["target"]["pain_block"], bool)
