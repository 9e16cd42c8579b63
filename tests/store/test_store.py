"""The case store's API on SQLite and PostgreSQL: content addressing, immutability, lineage,
annotations, lookups by prefix, deletion, and a real solved plan round-tripped."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from neurolysis.about import __version__
from neurolysis.store import Case, CaseStore, save_outcome
from neurolysis.store.case import content_hash
from neurolysis.validation import ValidationError
from tests.store.conftest import table_counts
from tests.store.writer import payload


def test_a_solved_plan_round_trips_with_its_report(store, block_case):
    plan_text, outcome = block_case
    before = datetime.now(UTC)
    case = save_outcome(store, outcome, plan_text, report_html="<html>report</html>", tags=["cohort-a"], notes="first try")
    assert case.id == case.content_hash[:16] == content_hash(plan_text, outcome.plan.as_dict(), __version__)[:16]
    assert case.plan_toml == plan_text
    assert case.settings == outcome.plan.as_dict()
    assert case.outcome == json.loads(json.dumps(outcome.to_dict()))
    assert (case.report_html, case.has_report, case.tags, case.notes, case.parent_id, case.version) == ("<html>report</html>", True, ("cohort-a",), "first try", None, __version__)
    assert case.created_at.tzinfo is UTC and before - timedelta(seconds=5) <= case.created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert store.get(case.id) == case
    listed = store.list()
    assert [c.id for c in listed] == [case.id] and listed[0].report_html is None and listed[0].has_report
    d = case.to_dict()
    assert list(d) == ["id", "created_at", "content_hash", "version", "plan_toml", "settings", "outcome", "has_report", "tags", "notes", "parent_id"]
    assert datetime.fromisoformat(d["created_at"]) == case.created_at and d["created_at"].endswith("+00:00")
    assert case.to_dict(include_report=True)["report_html"] == "<html>report</html>"
    json.dumps(d, allow_nan=False)


def test_same_content_is_one_case_and_a_changed_plan_is_a_new_one_linked_to_its_parent(store, store_url):
    first = store.save(**payload("plan"), tags=["a"])
    again = store.save(**payload("plan") | {"outcome": {"something": "else"}, "report_html": None}, tags=["b"], notes="ignored")
    assert again.id == first.id and again.outcome == first.outcome and again.report_html == first.report_html
    assert again.tags == ("a", "b") and again.notes == "" and again.created_at == first.created_at
    assert table_counts(store_url) == {"cases": 1, "reports": 1, "case_tags": 2}

    changed = payload("plan") | {"plan_toml": payload("plan")["plan_toml"] + "# volume changed\n"}
    child = store.save(**changed, parent_id=first.id[:6])
    assert child.id != first.id and child.parent_id == first.id
    assert [c.id for c in store.list()] == [child.id, first.id]


def test_an_unknown_parent_is_refused_and_nothing_is_stored(store, store_url):
    with pytest.raises(ValidationError, match=r"^parent_id = 'abcdef12': not found in "):
        store.save(**payload("orphan"), parent_id="abcdef12")
    with pytest.raises(ValidationError, match=r"^parent_id = 'xyz': allowed: a case id \(16 hex digits\)"):
        store.save(**payload("orphan"), parent_id="xyz")
    assert table_counts(store_url) == {"cases": 0, "reports": 0, "case_tags": 0}


def test_the_content_cannot_be_changed(store):
    """Annotations change; plan, settings, outcome, report, version, hash and time never do, and
    the store has no method that would change them."""
    case = store.save(**payload("fixed"))
    noted = store.set_notes(case.id, "reviewed")
    tagged = store.add_tags(case.id, ["x", "x", "y"])
    content = ("id", "content_hash", "created_at", "version", "plan_toml", "settings", "outcome", "report_html")
    for later in (noted, tagged, store.get(case.id)):
        assert [getattr(later, f) for f in content] == [getattr(case, f) for f in content]
    assert (tagged.notes, tagged.tags) == ("reviewed", ("x", "y"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.plan_toml = "changed"  # type: ignore[misc]
    public = {name for name in vars(CaseStore) if not name.startswith("_")}
    assert public == {"save", "get", "resolve_id", "list", "delete", "add_tags", "set_notes", "close", "jobs"}  # jobs(): the web jobs table, not the cases


def test_lookups_by_prefix_and_their_errors(store):
    case = store.save(**payload("one"))
    assert store.get(case.id[:6].upper()).id == case.id == store.resolve_id(case.id[:7])
    # two contents whose ids share 6 hex digits (a birthday search over small payloads)
    seen: dict[str, str] = {}
    for n in itertools.count():
        name = f"twin {n}"
        prefix = content_hash(payload(name)["plan_toml"], payload(name)["settings"], __version__)[:6]
        if prefix in seen:
            break
        seen[prefix] = name
    a, b = store.save(**payload(seen[prefix])), store.save(**payload(name))
    assert a.id[:6] == b.id[:6] != case.id[:6]
    with pytest.raises(ValidationError, match=rf"^case = '{prefix}': more than one case starts with it; give more digits$"):
        store.get(prefix)
    with pytest.raises(ValidationError, match=r"^case = 'ffffffffffffffff': not found in (sqlite|postgresql\+psycopg)://"):
        store.get("ffffffffffffffff")
    with pytest.raises(ValidationError, match=r"^case = '12345': allowed"):
        store.get("12345")


def test_delete_removes_the_case_its_report_and_tags_and_unlinks_its_children(store, store_url):
    parent = store.save(**payload("parent"), tags=["p"])
    child = store.save(**payload("child"), tags=["c"], parent_id=parent.id)
    store.delete(parent.id[:8])
    assert table_counts(store_url) == {"cases": 1, "reports": 1, "case_tags": 1}
    assert store.get(child.id).parent_id is None
    with pytest.raises(ValidationError, match="not found"):
        store.delete(parent.id)


def test_listing_filters_by_tag_and_limits(store):
    saved = [store.save(**payload(f"case {n}"), tags=["even" if n % 2 == 0 else "odd"]) for n in range(5)]
    assert [c.id for c in store.list()] == [c.id for c in reversed(saved)]
    assert [c.id for c in store.list(tag="even")] == [saved[4].id, saved[2].id, saved[0].id]
    assert [c.id for c in store.list(tag="odd", limit=1)] == [saved[3].id]
    assert store.list(tag="none") == []
    with pytest.raises(ValidationError, match=r"^limit = 0: allowed"):
        store.list(limit=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tags": ["ok", " padded"]}, r"^tag = ' padded': allowed: 1 to 64 printable characters"),
        ({"tags": "one-string"}, r"^tags = 'one-string': allowed: a list of tags"),
        ({"notes": "x" * 20_001}, r"^notes = <20001 characters>: allowed: at most 20000"),
        ({"outcome": {"p": float("nan")}}, r"^outcome: cannot be stored as JSON"),
        ({"settings": ["not", "a", "dict"]}, r"^settings = list: allowed: a JSON object"),
    ],
)
def test_bad_input_is_refused_before_anything_is_stored(store, store_url, change, message):
    with pytest.raises(ValidationError, match=message):
        store.save(**payload("bad") | change)
    assert table_counts(store_url)["cases"] == 0


def test_case_values_are_frozen_records():
    assert dataclasses.is_dataclass(Case) and Case.__dataclass_params__.frozen
