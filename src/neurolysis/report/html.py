"""The HTML report of one plan (``neurolysis report``): one self-contained file.

Figures are PNGs embedded as base64 ``data:`` URIs; there is no script, no external style
sheet, font or image, so the file opens offline and prints on A4. Every string goes
through Jinja2's autoescaping (``templates/report.html.j2``). The report reads the
Outcome (and, when given, a ``neurolysis compare --json`` dict and an indication dict);
the validation status of the models comes from ``data/validation_status.toml``, copied from
docs/validation.md.

Traffic lights of the critical structures: **red** injured; **amber** not injured but a
dose within a factor ``AMBER_FACTOR`` of one of its kind's thresholds (temperatures as the
rise above body temperature), the lethal region within ``AMBER_DISTANCE_MM``, or
P(injury) > 0 over the Monte Carlo cohort; **green** otherwise.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from neurolysis._catalog import load_catalog
from neurolysis.about import DISCLAIMER, __version__
from neurolysis.methods.block import HOURS_PER_MONTH
from neurolysis.outcome.risk import COLD_CRITERION, risk_warnings
from neurolysis.output import check_output_path, write_text_atomic

AMBER_FACTOR = 2.0
"""A dose at or above threshold / AMBER_FACTOR (temperature: rise above 37 C) is amber."""
AMBER_DISTANCE_MM = 1.0
"""A structure this close to the lethal region (mm) is amber: about one placement SD."""
BODY_TEMP_C = 37.0
MEASURES = {
    "peak_temp_c": ("peak temperature", "°C"),
    "cem43_min": ("CEM43", "min"),
    "omega": ("Arrhenius Ω", ""),
    "agent_fraction": ("agent", "of the injected concentration"),
    "agent_mmol_l": ("agent", "mmol/L"),
}
SECTIONS = ("summary", "plan", "figures", "critical", "uncertainty", "comparison", "indication", "validation", "sources")
"""The ids of the report's sections, in order."""


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("neurolysis.report", "templates"), autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v, digits=0: "-" if v is None else f"{100 * float(v):.{digits}f} %"
    env.filters["num"] = lambda v, digits=1: "-" if v is None else f"{float(v):.{digits}f}"
    env.tests["mapping"] = lambda v: isinstance(v, dict)
    env.tests["sequence"] = lambda v: isinstance(v, list | tuple)
    return env


def _png(fig) -> str:
    """A matplotlib figure as a base64 PNG (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def outcome_figure(outcome) -> str:
    """The lesion slices and axon map (:func:`~neurolysis.report.anatomy_figures.plot_outcome`), base64 PNG."""
    from neurolysis.report.anatomy_figures import plot_outcome

    buf = io.BytesIO()
    plot_outcome(outcome, buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def uncertainty_figure(outcome) -> str:
    """Histograms over the cohort: relief (failed blocks count 0), pain fibres killed, and P(block) with its 95 % interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurolysis.report.anatomy_figures import cohort_panels

    cohort = outcome.uncertainty
    u = cohort.to_dict()
    fig, (ax_relief, ax_killed, ax_block) = plt.subplots(1, 3, figsize=(12, 3.6), gridspec_kw={"width_ratios": [3, 3, 1.3]})
    cohort_panels(ax_relief, ax_killed, cohort, outcome.target.pain_block_fraction)
    lo, hi = u["p_block_95ci"]
    ax_block.bar([0], [100 * u["p_block"]], color="seagreen", width=0.6)
    ax_block.errorbar([0], [100 * u["p_block"]], yerr=[[100 * (u["p_block"] - lo)], [100 * (hi - u["p_block"])]], color="black", capsize=6)
    ax_block.set_xlim(-1, 1)
    ax_block.set_xticks([])
    ax_block.set_ylim(0, 100)
    ax_block.set_ylabel("P(block) (%)")
    ax_block.set_title("P(block), 95 % CI")
    fig.tight_layout()
    return _png(fig)


def _thresholds(kind: str) -> list[str]:
    """The kind's injury criteria in words with their units (``data/risk.toml``), most severe first."""
    cat = load_catalog("risk")
    entry = cat["kind"].get(kind, cat["kind"][cat["default_kind"]])
    out = []
    for c in entry["criteria"]:
        m, thr = c["measure"], float(c["threshold"])
        if m == "lethal":
            text = "the method's lethal region reaches it"
        elif m == "agent_fraction":
            text = f"agent ≥ {100 * thr:g} % of the injected concentration"
        else:
            name, unit = MEASURES[m]
            text = f"{name} ≥ {thr:g}{' ' + unit if unit else ''}"
        if "solute" in c:
            text = f"{c['solute']}: {text}"
        if "max_lumen_diameter_mm" in c:
            text += f" (lumen ≤ {c['max_lumen_diameter_mm']:g} mm)"
        out.append(text)
    return out


def traffic_light(c: dict, p_injury: float | None) -> tuple[str, str]:
    """(green | amber | red, why) of one critical structure of ``Outcome.to_dict()["critical"]``."""
    if c["injured"]:
        return "red", "injured"
    cat = load_catalog("risk")
    entry = cat["kind"].get(c["kind"], cat["kind"][cat["default_kind"]])
    near = []
    for crit in entry["criteria"]:
        m, thr = crit["measure"], float(crit["threshold"])
        if m == "lethal":
            d = c.get("distance_to_lesion_mm")
            if d is not None and not c.get("distance_is_lower_bound") and d < AMBER_DISTANCE_MM:
                near.append(f"lethal region {d:.1f} mm away (< {AMBER_DISTANCE_MM:g} mm)")
            continue
        value = float(c.get(m, 0.0))
        ratio = (value - BODY_TEMP_C) / (thr - BODY_TEMP_C) if m == "peak_temp_c" else value / thr
        if ratio >= 1.0 / AMBER_FACTOR:
            near.append(f"{MEASURES[m][0]} within a factor {AMBER_FACTOR:g} of {thr:g}")
    if p_injury:
        near.append(f"P(injury) {100 * p_injury:.0f} % over the cohort")
    return ("amber", "; ".join(near)) if near else ("green", f"far below every threshold (factor > {AMBER_FACTOR:g}, > {AMBER_DISTANCE_MM:g} mm)")


def _critical_rows(d: dict) -> list[dict]:
    cohort = {c["name"]: c["p_injury"] for c in d["uncertainty"]["critical"]} if "uncertainty" in d else {}
    rows = []
    for c in d["critical"]:
        light, why = traffic_light(c, cohort.get(c["name"]))
        distance = None if c["distance_to_lesion_mm"] is None else f"{'>' if c.get('distance_is_lower_bound') else ''}{c['distance_to_lesion_mm']:.1f}"
        rows.append(c | {"light": light, "why": why, "distance": distance, "p_injury": cohort.get(c["name"]), "thresholds": [COLD_CRITERION] if c.get("min_temp_c") is not None else _thresholds(c["kind"])})
    return rows


def _range(r: dict | None, digits: int = 1) -> str | None:
    if not r or r.get("median") is None:
        return None
    return f"{r['median']:.{digits}f} (p10-p90 {r['p10']:.{digits}f}-{r['p90']:.{digits}f})"


def verdict(outcome) -> dict:
    """The summary: pain block and how sure, relief, and the worst risk in words."""
    d = outcome.to_dict()
    t, u = d["target"], d.get("uncertainty")
    if d["method"] == "block":
        block = "yes, temporarily"
        b = d["block"]
        relief = f"{_range(b['sensory_block_h'])} hours of sensory block (about {b['sensory_block_h']['median'] / HOURS_PER_MONTH:.2f} months); {b['blocks_needed']} blocks for {b['horizon_months']:g} months"
    else:
        block = "yes" if t["pain_block"] else "no"
        r = u["relief_months"] if u and u.get("relief_months") else (t["relief_months"] if t["pain_block"] else None)
        over = " over the cohort (failed blocks count 0)" if u and u.get("relief_months") else ""
        relief = f"{_range(r)} months{over}" if _range(r) else "none predicted" + (f": {t['relief_note']}" if t.get("relief_note") else "")
        if t.get("relief_censored_at_months") and r and r.get("p90", 0) >= t["relief_censored_at_months"] - 1e-9:
            relief += f" (beyond {t['relief_censored_at_months']:g} months counted as {t['relief_censored_at_months']:g})"
    if u:
        lo, hi = u["p_block_95ci"]
        sure = f"P(block) {100 * u['p_block']:.0f} % (95 % CI {100 * lo:.0f}-{100 * hi:.0f} %) over {u['samples']} needle placements"
    else:
        sure = "the planned pose only: no placement uncertainty (add --monte-carlo N for P(block) with its 95 % interval)"
    warnings = risk_warnings(outcome.critical)
    if warnings:
        risk, level = warnings[0], "red"
    else:
        risk, level = "no critical structure injured", "green"
        worst = max(u["critical"], key=lambda c: c["p_injury"], default=None) if u else None
        if worst is not None and worst["p_injury"] > 0:
            risk += f" at the planned pose; P(injury) {100 * worst['p_injury']:.0f} % for {worst['name']} over the cohort"
            level = "amber"
    motor = t.get("motor_deficit_note") if t.get("motor_deficit") else None
    return {"block": block, "sure": sure, "relief": relief, "risk": risk, "risk_level": level, "more_risks": warnings[1:], "motor": motor}


def _anatomy_text(a: dict) -> str:
    """The plan's anatomy in words: a template, a patient's segmentation (with names, image, side) or a label map."""
    if a.get("template"):
        return a["template"]
    if a.get("segmentation"):
        files = a["segmentation"] if isinstance(a["segmentation"], list) else [a["segmentation"]]
        extra = [f"names {a['names']}" if a.get("names") else None, f"image {a['image']}" if a.get("image") else None, f"{a['side']} side" if a.get("side") else None]
        return f"segmentation {', '.join(files)}" + "".join(f"; {e}" for e in extra if e)
    return f"label map {a.get('labels')}"


def _needle_rows(d: dict) -> list[tuple[str, str]]:
    """Where each needle goes: the plan's one ``[placement]`` or every ``[[needles]]`` table."""

    def vector(values, digits: int) -> str:
        return "[" + ", ".join(f"{v:.{digits}f}" for v in values) + "]"

    s, p = d["settings"], d["placement"]
    if not d.get("needles"):
        return [
            ("placement", f"{p['approach']}, offset {s['placement'].get('offset_mm', [0, 0, 0])} mm"),
            ("needle tip (anatomy frame)", f"{vector(p['tip_mm'], 1)} mm"),
            ("needle direction", vector(p["direction"], 3)),
        ]
    return [(f"needle {k + 1} ({n['target']})", f"tip {vector(n['tip_mm'], 1)} mm, direction {vector(n['direction'], 3)}") for k, n in enumerate(d["needles"])]


def _plan_rows(d: dict) -> list[tuple[str, str]]:
    s = d["settings"]
    a = s["anatomy"]
    rows = [("anatomy", _anatomy_text(a))]
    if d["anatomy"].get("frame"):
        rows.append(("frame", f"{d['anatomy']['frame']}: every coordinate here is the scan's own scanner coordinate (mm)"))
        rows.append(("target placed by", f"landmark rule {d['anatomy']['landmark_rule']} ({d['anatomy']['region_simulated']})"))
    rows += [
        ("target nerve", d["anatomy"]["target_nerve"]),
        ("method", d["method"]),
        ("settings", ", ".join(f"{k} = {v}" for k, v in s["procedure"].items() if k != "method") or "defaults"),
    ]
    if "rf" in d:
        r = d["rf"]["settings"]
        rows.append(("resolved RF settings", ", ".join(f"{k} = {v}" for k, v in r.items() if v is not None)))
    rows += _needle_rows(d)
    rows += [
        ("patient", ", ".join(f"{k} = {v}" for k, v in s.get("patient", {}).items()) or "defaults"),
        ("simulation", ", ".join(f"{k} = {v}" for k, v in s["simulation"].items())),
    ]
    if s.get("uncertainty", {}).get("samples"):
        rows.append(("uncertainty", ", ".join(f"{k} = {v}" for k, v in s["uncertainty"].items())))
    lesion = d["lesion"]
    rows.append((f"lesion ({lesion['criterion']})", f"{lesion['width_mm']:.1f} mm wide x {lesion['length_mm']:.1f} mm long, {lesion['volume_mm3']:.0f} mm³"))
    entries = d.get("rf", {}).get("lesions") or [d.get("rf", {})]
    for k, entry in enumerate(e for e in entries if e.get("bipolar")):
        b = entry["bipolar"]
        joined = "joined" if b["joined"] else f"NOT joined: a {b['gap_mm']:.1f} mm gap between the needles"
        rows.append((f"bipolar pair {k + 1}", f"{b['spacing_mm']:.1f} mm apart, {joined}; strip {b['strip_width_mm']:.1f} mm wide x {b['strip_length_mm']:.1f} mm long"))
    return rows


def _comparison_rows(comparison: dict, method: str) -> list[dict]:
    rows = []
    for m in comparison.get("methods", []):
        ci = m.get("p_block_95ci")
        p = m.get("p_block")
        block = "-" if p is None else f"{100 * p:.0f} %" + (f" ({100 * ci[0]:.0f}-{100 * ci[1]:.0f})" if ci else "")
        injured = [c["name"] for c in m.get("critical", []) if c.get("injured")]
        at_risk = [f"{c['name']} {100 * c['p_injury']:.0f} %" for c in m.get("critical", []) if c.get("p_injury")]
        burden = m.get("burden")
        rows.append({
            "method": m.get("method"), "current": m.get("method") == method, "applicable": m.get("applicable", True), "reason": m.get("reason"),
            "p_block": block, "relief": _range(m.get("relief_months")) or "-", "procedures": m.get("procedures_needed"),
            "motor": m.get("motor_deficit"), "risk": ", ".join(injured) or ("none injured" + (f"; P(injury) {', '.join(at_risk)}" if at_risk else "")),
            "burden": ", ".join(f"{k}: {v}" for k, v in burden.items()) if isinstance(burden, dict) else (burden or "-"), "wall_time_s": m.get("wall_time_s"),
        })  # fmt: skip
    return rows


def validation_lines(method: str) -> tuple[list[dict], list[dict]]:
    """(validation lines, assumptions) shown for ``method`` (``data/validation_status.toml``)."""
    cat = load_catalog("validation_status")
    lines = [dict(line) for line in cat["line"] if method in line["methods"]]
    assumptions = [*cat["assumptions"]["all"], *cat["assumptions"].get(method, [])]
    return lines, [dict(a) for a in assumptions]


def _sources(d: dict, indication: dict | None, kinds: set[str]) -> list[str]:
    """Plain-text sources: thresholds of the structures shown, the method's quoted outcomes, the indication's, the docs."""
    out = []
    cat = load_catalog("risk")
    for kind in sorted(kinds):
        entry = cat["kind"].get(kind, cat["kind"][cat["default_kind"]])
        out += [f"{entry['label']} threshold ({c['measure']} {c['threshold']:g}): {c['source']} [{c['tag']}]" for c in entry["criteria"]]
    section = d.get(d["method"]) if isinstance(d.get(d["method"]), dict) else {}
    out += [f"{item['what']}: {item['source']}" for item in [*section.get("outcomes", []), *section.get("complications", [])] if "source" in item]
    if indication and indication.get("sources"):
        src = indication["sources"]
        out += [f"{k}: {v}" for k, v in src.items()] if isinstance(src, dict) else [str(s) for s in (src if isinstance(src, list | tuple) else [src])]
    out += ["docs/validation.md (validation status of each model)", "docs/models/nerve.md section 4 and src/neurolysis/data/risk.toml (critical-structure thresholds)"]
    return list(dict.fromkeys(out))


def build_report(outcome, *, comparison: dict | None = None, indication: dict | None = None) -> str:
    """The report of ``outcome`` as one self-contained HTML string.

    ``comparison``: a ``neurolysis compare --json`` dict (None: "not run"); ``indication``:
    {name, category, evidence, coverage, typical_outcomes, sources} (None: the Outcome JSON's
    ``indication`` key when it has one)."""
    d = outcome.to_dict()
    if indication is None:
        indication = d.get("indication")
    critical = _critical_rows(d)
    lines, assumptions = validation_lines(d["method"])
    context = {
        "title": f"{d['method']} at {d['anatomy']['target_nerve']} ({d['anatomy']['name']})",
        "disclaimer": DISCLAIMER,
        "version": __version__,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "verdict": verdict(outcome),
        "plan_rows": _plan_rows(d),
        "outcome_png": outcome_figure(outcome),
        "critical": critical,
        "uncertainty": d.get("uncertainty"),
        "stimulation": d.get("stimulation"),
        "uncertainty_png": uncertainty_figure(outcome) if outcome.uncertainty is not None else None,
        "comparison": comparison,
        "comparison_rows": _comparison_rows(comparison, d["method"]) if comparison else [],
        "indication": indication,
        "validation": lines,
        "validation_note": load_catalog("validation_status")["note"],
        "assumptions": assumptions,
        "warnings": d["warnings"],
        "sources": _sources(d, indication, {c["kind"] for c in critical}),
        "amber_factor": AMBER_FACTOR,
        "amber_distance_mm": AMBER_DISTANCE_MM,
        "sections": SECTIONS,
    }
    return _env().get_template("report.html.j2").render(**context)


def write_report(html: str, path) -> Path:
    """Write ``html`` to ``path`` atomically (:func:`neurolysis.output.write_text_atomic`)."""
    return write_text_atomic(html, path)


__all__ = ["SECTIONS", "build_report", "check_output_path", "traffic_light", "verdict", "write_report"]
