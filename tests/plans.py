"""Plans the behaviour tests share: one needle at a template's first target.

Since several needles (issue 18) ``new_plan("genicular")`` makes three lesions; tests of a
method's behaviour need one, as before, and keep the CI budget (several needles are tested in
tests/e2e/test_needles.py)."""

from neurolysis.anatomy.templates import load_template
from neurolysis.planning.plan import Plan, new_plan


def one_needle_plan(template: str, method: str = "rf") -> Plan:
    """``new_plan`` at the template's first target only."""
    return new_plan(template, load_template(template).target, method=method)
