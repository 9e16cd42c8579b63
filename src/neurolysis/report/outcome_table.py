"""The terminal report of ``neurolysis simulate`` (rich tables; every number with its unit).

It prints from ``Outcome.to_dict()`` only, so the table and ``--json`` never disagree.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from neurolysis.about import DISCLAIMER
from neurolysis.methods.block import HOURS_PER_MONTH


def _fmt_range(r: dict, unit: str, digits: int = 1) -> str:
    u = f" {unit}" if unit else ""
    return f"{r['median']:.{digits}f}{u} (10-90 %: {r['p10']:.{digits}f}-{r['p90']:.{digits}f}{u})"


def _header(d: dict) -> str:
    method = d["method"]
    if "rf" in d:
        s = d["rf"]["settings"]
        temp = f", {s['set_temp_c']:g} °C" if s.get("set_temp_c") is not None else ""
        what = f"{s['gauge']} G, {s['tip_mm']:g} mm tip, {s['time_s']:g} s{temp}"
    elif method == "chemical":
        c = d["chemical"]
        what = f"{c['volume_ml']:g} mL of {c['concentration_pct']:g} % {c['agent']} x {c['injections']}, {c['interval_h']:g} h apart, {c['rate_ml_per_min']:g} mL/min"
    elif method == "cryo":
        c = d["cryo"]
        cycles = " / ".join(f"{x['kind']} {x['duration_s']:g} s" for x in c["cycles"])
        what = f"probe {c['probe']['id']} ({c['probe']['tip_temp_c']:g} °C), {cycles}"
    elif method == "surgical":
        what = f"{d['surgical']['segment_mm']:g} mm segment excised"
    else:
        b = d["block"]
        adj = f" + {', '.join(b['adjuvants'])}" if b["adjuvants"] else ""
        what = f"{b['volume_ml']:g} mL of {b['concentration_pct']:g} % {b['agent']}{adj}, {b['weight_kg']:g} kg patient"
    return f"[bold]{method}[/bold] at [bold]{d['target']['nerve']}[/bold] ({d['anatomy']['name']}, {d['placement']['approach']} placement; {what})"


def _target_rows(d: dict) -> list[tuple[str, str]]:
    t = d["target"]
    if d["method"] == "block":
        b = d["block"]
        return [
            ("pain conduction blocked", f"yes, temporarily: onset {b['onset_min']:.0f} min"),
            ("sensory block", _fmt_range(b["sensory_block_h"], "h")),
            ("motor block", _fmt_range(b["motor_block_h"], "h")),
            ("dose", f"{b['dose_mg']:g} mg (maximum {b['limit_mg']:g} mg{'; EXCEEDED' if b['over_limit'] else ''})"),
            (f"continuous relief, {b['horizon_months']:g} months", f"{b['blocks_needed']} blocks, {b['total_anaesthetic_mg']:.0f} mg in all"),
        ]
    rows = [("pain fibres killed", f"{100 * t['pain_fibres_killed_fraction']:.0f} %")]
    if t["motor_fibres_killed_fraction"] is not None:
        rows.append(("motor fibres killed", f"{100 * t['motor_fibres_killed_fraction']:.0f} %"))
    rows += [
        ("by class", ", ".join(f"{k} {100 * v:.0f} %" for k, v in t["killed_fraction_by_class"].items() if v is not None)),
        ("nerve length lesioned", f"{t['lesioned_length_mm']:.1f} mm"),
        ("pain conduction blocked", "yes" if t["pain_block"] else "no"),
    ]
    r = t["relief_months"]
    if r and r.get("median") is not None and t["pain_block"]:
        censored = t.get("relief_censored_at_months")
        rows.append(("expected relief", _fmt_range(r, "months") + (f" (beyond {censored:g} months counted as {censored:g})" if censored else "")))
        rec = t.get("recovery", {})
        if rec.get("relieved_share_at_months"):
            rows.append(("still relieved at", ", ".join(f"{m} mo {100 * v:.0f} %" for m, v in rec["relieved_share_at_months"].items())))
        if "recurrence_probability" in rec:
            rows.append(("pain returns (neuroma, sprouting)", f"{100 * rec['recurrence_probability']:.0f} % of patients, median onset {rec['recurrence_median_months']:g} months"))
        if "disease_course" in rec:
            c = rec["disease_course"]
            ended = ", ".join(f"{name} {100 * share:.0f} %" for name, share in c.get("relief_end_shares", {}).items())
            rows.append(("against the disease course", f"median survival {c['median_survival_months']:g} months; relief outlasts life in {100 * c['p_relief_outlasts_survival']:.0f} %; "
                                                       f"relief lived {_fmt_range(c['relief_lived_months'], 'months')}; relief ended by {ended}"))  # fmt: skip
    if t.get("injury_grades"):
        rows.append(("injury grade (Sunderland)", ", ".join(f"{k.split('-')[1]}: {100 * v:.0f} %" for k, v in t["injury_grades"].items())))
    if not (r and r.get("median") is not None and t["pain_block"]):
        rows.append(("expected relief", f"none predicted{': ' + t['relief_note'] if t.get('relief_note') else ''}"))
    if t.get("motor_deficit"):
        rows.append(("motor deficit", "[bold yellow]yes[/bold yellow] (below)"))
    lesion = d["lesion"]
    rows.append((f"lesion ({lesion['criterion']})", f"{lesion['width_mm']:.1f} mm wide x {lesion['length_mm']:.1f} mm long, {lesion['volume_mm3']:.0f} mm³"))
    return rows


def _method_rows(d: dict) -> list[tuple[str, str]]:
    method = d["method"]
    if "rf" in d:
        rf = d["rf"]
        return [("mean power", f"{rf['mean_power_w']:.2f} W")] if "mean_power_w" in rf else []
    if method == "cryo":
        c = d["cryo"]
        n = c["nerve"]
        return [
            ("ice ball (deepest)", f"{c['ice_ball']['width_mm']:.1f} mm wide x {c['ice_ball']['length_mm']:.1f} mm long"),
            ("lethal zone", f"{c['lethal_zone']['width_mm']:.1f} mm wide x {c['lethal_zone']['length_mm']:.1f} mm long (≤ {c['lethal_zone']['isotherm_c']:g} °C)"),
            ("nerve frozen / killed", f"{n['frozen_length_mm']:.1f} mm / {n['lethal_length_mm']:.1f} mm (published minimum {n['minimum_length_mm']:g} mm: {'met' if n['meets_minimum_length'] else 'NOT met'})"),
        ]
    if method == "chemical":
        c = d["chemical"]
        s = c["systemic"]
        systemic = (f"ethanol {s['ethanol_g']:.1f} g, peak blood alcohol ≤ {s['peak_bac_permille']:.2f} ‰ ({s['weight_kg']:g} kg)" if s.get("ethanol_g")
                    else f"phenol {s['phenol_mg']:.0f} mg (toxic ~{s['phenol_toxic_mg']:.0f} mg)")  # fmt: skip
        strip = c["injections_to_full_strip"]
        return [
            ("injections to full strip", f"{strip} (≥ {100 * c['full_strip_fraction']:.0f} % of pain fibres dead)" if strip else f"not reached in {c['injections']} (≥ {100 * c['full_strip_fraction']:.0f} % of pain fibres)"),
            ("systemic exposure", systemic),
        ]
    return []


def _method_table(d: dict) -> Table | None:
    method = d["method"]
    if method == "chemical":
        table = Table("injection", "at (h)", "pain fibres killed", "motor fibres killed", "spread volume (mL)", "lethal volume (mL)", title="per injection (cumulative)")
        for r in d["chemical"]["per_injection"]:
            motor = "-" if r["motor_fibres_killed_fraction"] is None else f"{100 * r['motor_fibres_killed_fraction']:.0f} %"
            table.add_row(str(r["injection"]), f"{r['time_h']:g}", f"{100 * r['pain_fibres_killed_fraction']:.0f} %", motor, f"{r['spread_volume_ml']:.2f}", f"{r['lethal_volume_ml']:.2f}")
        return table
    if method == "block":
        b = d["block"]
        table = Table("option", "relief (months)", f"procedures in {b['horizon_months']:g} months", title="the neurolytic options at this target (typical complete lesions)")
        table.add_row(f"nerve block ({b['agent']})", f"{b['sensory_block_h']['median'] / HOURS_PER_MONTH:.3f}", str(b["blocks_needed"]))
        for o in b["neurolytic_options"]:
            r = o["relief_months"]
            table.add_row(o["method"], "-" if r["median"] is None else _fmt_range(r, ""), "-" if o["procedures_needed"] is None else str(o["procedures_needed"]))
        return table
    if method == "surgical":
        s = d["surgical"]
        table = Table("reported", "value", "source", title="published outcomes and complications (not simulated)")
        for item in [*s["outcomes"], *s["complications"]]:
            table.add_row(item["what"], item["value"], item["source"])
        return table
    return None


def _uncertainty_table(u: dict) -> Table:
    """The Monte Carlo cohort over needle placement, one row per figure."""
    table = Table("placement uncertainty (cohort)", "value")
    placement = u["placement"]
    if placement is not None:
        sd = placement["offset_sd_mm"]
        table.add_row("spread", f"tip SD {'/'.join(f'{v:.2g}' for v in sd)} mm, tilt SD {placement['angle_sd_deg']:g}°, "
                                f"{100 * placement['gross_miss_fraction']:.0f} % gross misses ({placement['operator']})")  # fmt: skip
    table.add_row("samples (seed)", f"{u['samples']} ({u['seed']})")
    lo, hi = u["p_block_95ci"]
    table.add_row("P(pain block)", f"{100 * u['p_block']:.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)")
    r = u["relief_months"]
    table.add_row("relief over the cohort (failed = 0)", "not modelled" if r is None else f"{_fmt_range(r, 'months')}, mean {r['mean']:.1f}")
    table.add_row("P(motor deficit)", f"{100 * u['p_motor_deficit']:.1f} %")
    for c in u["critical"]:
        table.add_row(f"P(injury) {c['name']}", f"{100 * c['p_injury']:.1f} %")
    table.add_row("samples where the shortcut is inexact", f"{100 * u['inexact_fraction']:.0f} % (tissue around the moved lesion differs)")
    if u.get("could_change_fraction") is not None:
        table.add_row("of which the block verdict could change", f"{100 * u['could_change_fraction']:.1f} % (P(block) may be off by up to this)")
    table.add_row("samples stopped on bone", f"{100 * u['bone_contact_fraction']:.0f} % (tip drawn back to the bone's surface)")
    return table


def print_outcome(outcome) -> None:
    """Print the outcome of ``simulate`` as tables."""
    console = Console()
    d = outcome.to_dict()
    console.print(_header(d))
    info = Table(show_header=False, box=None)
    for key, value in [*_target_rows(d), *_method_rows(d)]:
        info.add_row(key, value)
    console.print(info)
    extra = _method_table(d)
    if extra is not None:
        console.print(extra)
    # the dose columns that mean something for the method: heat for RF, agent for injections
    doses = {"rf": (("peak (°C)", lambda c: f"{c['peak_temp_c']:.1f}"), ("Ω", lambda c: f"{c['omega']:.2g}"), ("CEM43 (min)", lambda c: f"{c['cem43_min']:.3g}")),
             "chemical": (("agent (% of injected)", lambda c: f"{100 * c['agent_fraction']:.0f}"),),
             "cryo": (("minimum (°C)", lambda c: f"{c['min_temp_c']:.1f}" if c.get("min_temp_c") is not None else "-"),)}  # fmt: skip
    columns = doses.get("rf" if "rf" in d else d["method"], ())
    table = Table("critical structure", "kind", *(name for name, _ in columns), "to lesion (mm)", "injured")
    for c in d["critical"]:
        distance = "-" if c["distance_to_lesion_mm"] is None else f"{'>' if c.get('distance_is_lower_bound') else ''}{c['distance_to_lesion_mm']:.1f}"
        injured = "[bold red]YES[/bold red]" if c["injured"] else "no"
        table.add_row(c["name"], c["kind"], *(cell(c) for _, cell in columns), distance, injured)
    console.print(table)
    console.print("[dim]thresholds and their sources: the `reason` of each structure in --json; docs/models/nerve.md[/dim]")
    if d.get("stimulation"):
        st = d["stimulation"]
        console.print(f"stimulation test ({st['pulse_ms']:g} ms; sensory {st['sensory_frequency_hz']:g} Hz, motor {st['motor_frequency_hz']:g} Hz): {st['verdict']}"
                      f" [dim](sensory {st['sensory_threshold_ma']:.2f} mA; tissue impedance {st['impedance_ohm']:.0f} Ohm; docs/models/stimulation.md)[/dim]")
    if "uncertainty" in d:
        console.print(_uncertainty_table(d["uncertainty"]))
    t = d["target"]
    if t.get("motor_deficit") and t.get("motor_deficit_note"):
        console.print(f"[bold yellow]{t['motor_deficit_note']}[/bold yellow]")
    for warning in d["warnings"]:
        console.print(f"[bold red]warning:[/bold red] {warning}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


__all__ = ["print_outcome"]
