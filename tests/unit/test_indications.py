"""The indications and burden catalogs: sourced, consistent with the templates and methods,
one-line errors, the FOOT DROP warning, the plan's [indication] section and the command's pieces."""

import argparse
import json
import re

import pytest

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.templates import load_template, template_names
from neurolysis.indications import TAGS, burden, destructive_warning, indication_names, indication_warnings, indications_for, load_indication, outcome_indication
from neurolysis.indications_cli import add_arguments, run
from neurolysis.methods import method_names
from neurolysis.planning.plan import new_plan, plan_from_dict, plan_toml
from neurolysis.validation import ValidationError

DESTRUCTIVE = ("rf", "cooled-rf", "chemical", "cryo", "surgical")
PERONEAL = "common peroneal nerve"
REQUIRED = {
    "pancreatic-cancer-pain": ("cancer", ("celiac-plexus",)),
    "pelvic-cancer-pain": ("cancer", ("superior-hypogastric-plexus",)),
    "chest-wall-cancer-pain": ("cancer", ("intercostal",)),
    "post-thoracic-surgery-cryo": ("post-surgical", ("intercostal",)),
    "lumbar-facet-pain": ("chronic-spine-joint", ("lumbar-medial-branch",)),
    "knee-osteoarthritis-pain": ("chronic-spine-joint", ("genicular",)),
    "painful-neuroma": ("chronic-extremity", ("neuroma",)),
    "chronic-primary-pain": ("no-definable-origin", ()),
    "peroneal-entrapment": ("entrapment", ("common-peroneal",)),
}


def _raw_lines(table):
    """Every {text, source, tag} table in a catalog entry, wherever it sits."""
    if isinstance(table, dict):
        if {"text", "source", "tag"} <= set(table):
            yield table
        else:
            for value in table.values():
                yield from _raw_lines(value)
    elif isinstance(table, list):
        for value in table:
            yield from _raw_lines(value)


@pytest.mark.parametrize("catalog, section", [("indications", "indication"), ("burden", "method")])
def test_every_line_is_sourced_and_tagged(catalog, section):
    data = load_catalog(catalog)
    sources, used = data["sources"], set()
    for key, entry in data[section].items():
        lines = list(_raw_lines(entry))
        assert lines, key
        for line in lines:
            assert line["text"].strip() and line["tag"] in TAGS, (key, line)
            keys = [k.strip() for k in line["source"].split(";")]
            assert all(k in sources for k in keys), (key, line)
            used.update(keys)
            if re.search(r"\d", line["text"]) and line["tag"] != "UNVERIFIED":
                assert set(keys) - {"judgement", "repo"}, f"{key}: a number without a literature source: {line['text']!r}"
    assert set(sources) <= used, f"{catalog}: sources never cited: {sorted(set(sources) - used)}"


def test_required_indications_with_their_category_and_templates():
    for name, (category, templates) in REQUIRED.items():
        ind = load_indication(name)
        assert (ind.category, ind.templates) == (category, templates), name
        assert ind.treatment and ind.coverage and ind.evidence_level.text, name


def test_templates_and_targets_exist():
    known = set(template_names())
    for name in indication_names():
        ind = load_indication(name)
        assert set(ind.templates) <= known, name
        if ind.templates:
            nerves = {n.name for t in ind.templates for n in load_template(t).nerves}
            assert set(ind.targets) <= nerves, name
        else:
            assert any("no template" in n.text for n in ind.notes) or not ind.targets, f"{name}: no template, and no note says so"


def test_indications_json_names_a_template_or_says_why_not(capsys):
    """issue 18: `indications --json` names a template for every entry; the two without one
    (an intrathecal block, and pain with no nerve to target) say why in `no_template`."""
    from neurolysis.cli import main

    assert main(["indications", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["indications"]
    without = {e["id"]: e["no_template"] for e in entries if not e["templates"]}
    assert set(without) == {"perineal-cancer-pain", "chronic-primary-pain"} and all(without.values())


def test_methods_are_plan_methods_and_never_both_used_and_avoided():
    """The catalog names only plan methods (checked here, not when it loads: indications sit below the methods)."""
    for name in indication_names():
        ind = load_indication(name)
        assert set(ind.methods) | set(ind.not_appropriate) <= set(method_names()), name
        assert not set(ind.methods) & set(ind.not_appropriate), name
        assert all(reason.strip() for reason in ind.not_appropriate.values()), name


def test_peroneal_entrapment_is_decompression_not_destruction():
    ind = load_indication("peroneal-entrapment")
    assert ind.targets == (PERONEAL,) and ind.methods == ()
    assert "DECOMPRESSION" in ind.treatment[0].text
    assert set(ind.not_appropriate) == set(DESTRUCTIVE)
    assert all("foot drop" in reason for reason in ind.not_appropriate.values())
    assert ind in indications_for(template="common-peroneal") and ind in indications_for(nerve=PERONEAL)


def test_no_definable_origin_rules_out_every_method():
    ind = load_indication("chronic-primary-pain")
    assert ind.methods == () and set(ind.not_appropriate) == set(method_names()) and ind.coverage_class == "not-applicable"


def test_indications_for_filters():
    assert {i.id for i in indications_for(nerve="intercostal nerve")} == {"chest-wall-cancer-pain", "post-thoracic-surgery-cryo"}
    assert {i.id for i in indications_for(template="genicular")} == {"knee-osteoarthritis-pain"}
    assert indications_for(template="genicular", nerve=PERONEAL) == ()
    assert len(indications_for()) == len(indication_names())


@pytest.mark.parametrize("name", ["unknown", "", 3, ["lumbar-facet-pain"], "Lumbar-Facet-Pain"])
def test_unknown_indication_one_line(name):
    with pytest.raises(ValidationError) as error:
        load_indication(name)
    message = str(error.value)
    assert "\n" not in message and message.startswith("indication = ") and "lumbar-facet-pain" in message


def test_burden_covers_every_method():
    assert set(load_catalog("burden")["method"]) == set(method_names())
    classes = set(load_catalog("burden")["effect_classes"])
    for method in method_names():
        b = burden(method)
        assert b.effect_class in classes and b.effect and b.settings and b.duration and b.anaesthesia and b.tolerability and b.effect_duration
        assert b.destructive == (method in DESTRUCTIVE) and (b.motor_loss is not None) == b.destructive
        json.dumps(b.to_dict())
        short = b.as_dict()  # the one-text-per-field form the comparison table shows
        assert short["effect_class"] == b.effect_class and all(isinstance(v, str | bool) for v in short.values())
    assert burden("surgical").effect_class == "permanent" and burden("block").effect_class == "temporary" and burden("pulsed-rf").effect_class == "uncertain"
    with pytest.raises(ValidationError, match=r"^method = 'laser': allowed values are 'rf'"):
        burden("laser")


@pytest.mark.parametrize("method", DESTRUCTIVE)
def test_foot_drop_warning_for_destructive_methods(method):
    text = destructive_warning(method, PERONEAL, "mixed")
    assert text.startswith("FOOT DROP RISK: ") and f"this {method} plan" in text and "decompression" in text and "\n" not in text


@pytest.mark.parametrize("method", ["block", "pulsed-rf"])
def test_no_foot_drop_warning_for_non_destructive_methods(method):
    assert destructive_warning(method, PERONEAL, "mixed") is None


def test_foot_drop_warning_needs_a_motor_nerve_of_a_decompression_indication():
    assert destructive_warning("rf", PERONEAL, "sensory") is None
    assert destructive_warning("rf", "intercostal nerve", "mixed") is None
    assert destructive_warning("rf", "L4 medial branch", "mixed") is None
    assert destructive_warning("rf", PERONEAL, "motor").startswith("FOOT DROP RISK")


def test_indication_warnings():
    assert indication_warnings(None, "rf", "L4 medial branch", "mixed") == ()
    assert indication_warnings("lumbar-facet-pain", "rf", "L4 medial branch", "mixed") == ()
    (mismatch, method) = indication_warnings("knee-osteoarthritis-pain", "block", "L4 medial branch", "mixed")
    assert "targets superomedial genicular nerve" in mismatch and "not among the methods" in method
    (avoid,) = indication_warnings("post-thoracic-surgery-cryo", "surgical", "intercostal nerve", "mixed")
    assert avoid.startswith("procedure.method = 'surgical' is not appropriate for indication 'post-thoracic-surgery-cryo'")
    (foot,) = indication_warnings("peroneal-entrapment", "cryo", PERONEAL, "mixed")  # the reason is not repeated under the warning
    assert foot.startswith("FOOT DROP RISK")
    assert indication_warnings(None, "chemical", PERONEAL, "mixed")[0].startswith("FOOT DROP RISK")


def test_outcome_indication_summary():
    assert outcome_indication(None) is None
    out = outcome_indication("lumbar-facet-pain")
    assert {"id", "name", "category", "evidence_level", "evidence", "typical_outcomes", "coverage", "coverage_class", "sources"} <= set(out)
    cited = {k.strip() for key in ("evidence", "typical_outcomes", "coverage") for line in out[key] for k in line["source"].split(";")}
    assert cited <= set(out["sources"]) and "S46" in out["sources"]
    json.dumps(out)


def test_plan_indication_section():
    plan = new_plan("intercostal", method="surgical")
    assert plan.indication.name is None and "[indication]" not in plan_toml(plan)
    data = plan.as_dict() | {"indication": {"name": "chest-wall-cancer-pain"}}
    named = plan_from_dict(data)
    assert named.indication.name == "chest-wall-cancer-pain"
    text = plan_toml(named)
    assert '[indication]\nname = "chest-wall-cancer-pain"' in text
    import tomllib

    assert plan_from_dict(tomllib.loads(text)).as_dict() == named.as_dict()


@pytest.mark.parametrize("name", ["unknown", 7, True, ["x"]])
def test_plan_unknown_indication_one_line(name):
    data = new_plan("intercostal", method="surgical").as_dict() | {"indication": {"name": name}}
    with pytest.raises(ValidationError) as error:
        plan_from_dict(data)
    assert str(error.value).startswith("indication.name = ") and "\n" not in str(error.value) and "allowed values are" in str(error.value)


def test_plan_indication_unknown_field():
    data = new_plan("intercostal", method="surgical").as_dict() | {"indication": {"id": "lumbar-facet-pain"}}
    with pytest.raises(ValidationError, match=r"^indication\.id: unknown field; allowed fields of \[indication\] are name$"):
        plan_from_dict(data)


def _command(argv):
    parser = argparse.ArgumentParser(prog="neurolysis indications")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def test_command_json(capsys):
    assert _command(["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"indications", "disclaimer"} and [i["id"] for i in out["indications"]] == list(indication_names())
    peroneal = next(i for i in out["indications"] if i["id"] == "peroneal-entrapment")
    assert peroneal["methods"] == [] and "decompression" in peroneal["treatment"][0]["text"].lower() and peroneal["motor_warning"].startswith("FOOT DROP")


def test_command_template_filter_and_table(capsys):
    assert _command(["--json", "--template", "intercostal"]) == 0
    assert {i["id"] for i in json.loads(capsys.readouterr().out)["indications"]} == {"chest-wall-cancer-pain", "post-thoracic-surgery-cryo"}
    assert _command([]) == 0
    out = capsys.readouterr().out
    assert "peroneal-entrapment" in out and "chronic-primary-pain" in out and "not for clinical decisions" in out


def test_command_unknown_template_one_line():
    with pytest.raises(ValidationError) as error:
        _command(["--template", "nope"])
    assert str(error.value).startswith("--template = 'nope': allowed values are ") and "\n" not in str(error.value)
