"""The territory a plan relieves: the pain of a joint or a region is carried by several nerves, and a
plan with several needles relieves it only as far as all its treated nerves are.

A territory (``data/nerve_model.toml [shared_territory]``) lists the share s_k of its nociceptive input
each nerve carries; the rest, u = 1 - sum s_k, comes from nerves no plan there treats, and a member the
plan leaves alone adds its share to u. After the procedure the territory's input is

    I(t) = u + sum_k s_k [n_alive,k + sum_i h(t - T_ik)] / N_k + S(t)

(the recovery model of ``outcome/relief.py`` for one nerve, each axon weighted by s_k / N_k, all nerves
regrowing in the same patient: one set of recovery draws); a treated member whose block failed
conducts its whole share (its few killed axons are ignored). Relief ends when I(t) reaches the
threshold of the plan's relief endpoint (``simulation.relief_endpoint``: the calibrated return
threshold theta for complete relief, theta + (1 - theta) / 2 for >= 50 % relief), and the territory
is blocked when I(0) is below it: with the knee's shares, complete relief needs all three nerves
blocked, >= 50 % relief any two. A plan whose targets share no
catalogued territory reports the shortest relief of its targets, draw by draw; a plan with one
target reports that target's own relief.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from neurolysis.outcome.axons import NerveOutcome
from neurolysis.outcome.relief import (
    KilledPaths,
    RecoveryDraws,
    Relief,
    Territory,
    age_factor,
    crossing_mask,
    days_per_month,
    endpoints,
    input_model,
    model_parameters,
    reconnection_days,
    recovery_draws,
    relief_by_endpoint,
    summarise,
)


@dataclass(frozen=True)
class TerritoryOutcome:
    """``name`` of the territory, its ``members`` (nerve -> share, treated, blocked, pain fibres
    killed), the ``untreated_share``, whether its pain is blocked and how long relief lasts."""

    name: str
    members: tuple[Mapping, ...]
    untreated_share: float
    pain_block: bool
    relief: Relief
    basis: str
    source: str = ""
    detail: Mapping = field(default_factory=dict)
    relief_by_endpoint: Mapping | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name, "members": [dict(m) for m in self.members], "untreated_share": round(self.untreated_share, 4),
            "pain_block": self.pain_block, "relief_months": self.relief.to_dict(), "relief_mechanism": self.relief.mechanism,
            "relief_by_endpoint": None if self.relief_by_endpoint is None else dict(self.relief_by_endpoint),
            "relief_end": self.relief.detail.get("disease_course", {}).get("relief_end"),
            "relieved_share_at_months": dict(self.relief.detail.get("relieved_share_at_months", {})), "basis": self.basis, "source": self.source,
        }  # fmt: skip


def shared_territory(nerve: str) -> tuple[str, Mapping[str, float], str] | None:
    """(key, shares, source) of the catalogued territory that holds ``nerve``, or None."""
    for key, entry in model_parameters().get("shared_territory", {}).items():
        if nerve in entry["shares"]:
            return key, {k: float(v) for k, v in entry["shares"].items()}, entry.get("source", "")
    return None


def _member(o: NerveOutcome, share: float, treated: bool) -> dict:
    return {"nerve": o.nerve, "share": round(share, 4), "treated": treated, "pain_block": o.pain_block, "pain_fibres_killed_fraction": round(o.pain_fibres_killed_fraction, 4)}


def territory_outcome(targets: Sequence[NerveOutcome], territory: Territory, seed: int) -> TerritoryOutcome:
    """The territory of ``targets`` (the plan's target nerves, first first) after the procedure;
    ``territory`` gives the age and the disease course (of the first target)."""
    first = targets[0]
    if len(targets) == 1:
        return TerritoryOutcome(f"territory of the {first.nerve}", (_member(first, 1.0 - territory.untreated_share, True),), territory.untreated_share,
                                first.pain_block, first.relief, "the target nerve's own relief (one target)", territory.sources, relief_by_endpoint=first.relief_by_endpoint)  # fmt: skip
    found = shared_territory(first.nerve)
    blocked = all(t.pain_block for t in targets)
    if found is None:
        return _shortest(targets, blocked, seed)
    key, shares, source = found
    entry = model_parameters()["shared_territory"][key]
    treated = {t.nerve: t for t in targets if t.nerve in shares}
    u = 1.0 - sum(shares[n] for n in treated)
    members = tuple(_member(treated[n], s, True) if n in treated else {"nerve": n, "share": round(s, 4), "treated": False} for n, s in shares.items())
    nerves = [t for t in treated.values() if t.pain_block and t.pain_paths is not None]
    conducting = sum(shares[t.nerve] for t in treated.values() if not (t.pain_block and t.pain_paths is not None))
    if not nerves:
        relief = Relief(0.0, 0.0, 0.0, "none", "no block: every treated nerve of the territory still conducts most of its pain fibres", 0.0)
        return TerritoryOutcome(entry["name"], members, u, False, relief, "shared territory", source)

    # a treated nerve not blocked counts as conducting its whole share
    days_by_endpoint = shared_relief_days([n.pain_paths for n in nerves], [n.n_pain for n in nerves], [shares[n.nerve] for n in nerves], u + conducting, territory, recovery_draws(seed), seed)
    days = days_by_endpoint[territory.endpoint]
    by_endpoint = relief_by_endpoint(days_by_endpoint)
    if not days.max() > 0:
        relief = Relief(0.0, 0.0, 0.0, "none", f"no block at the {territory.endpoint} endpoint: untreated and still-conducting nerves carry {u + conducting:.0%} of the input", 0.0)
        return TerritoryOutcome(entry["name"], members, u, False, relief, "shared territory", source, relief_by_endpoint=by_endpoint)
    note = (f"input of the {entry['name']}: {len(nerves)} blocked nerves carrying {sum(shares[n.nerve] for n in nerves):.0%}, {u + conducting:.0%} untreated or still conducting; "
            f"relief ends when their regrown, matured axons bring it back to the {territory.endpoint} endpoint's threshold")  # fmt: skip
    return TerritoryOutcome(entry["name"], members, u, True, summarise(days, "regrowth", note), "shared territory", source, relief_by_endpoint=by_endpoint)


def shared_relief_days(pain_paths: Sequence[KilledPaths], n_pain: Sequence[int], shares: Sequence[float], untreated: float, territory: Territory,
                       draws: RecoveryDraws, seed: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Relief days per draw, at every endpoint, of a territory whose nerves (their killed pain axons'
    paths and pain-axon counts) carry ``shares`` of its input, ``untreated`` the rest (module docstring)."""
    horizon = float(model_parameters()["recovery"]["horizon_months"]) * days_per_month()
    age = age_factor(territory.age_years)
    base = untreated + sum(s * (n - p.grade.size) / n for p, n, s in zip(pain_paths, n_pain, shares, strict=True))
    at = endpoints()
    model, *_ = models = [replace(input_model(1, 1, Territory(0.0, territory.sprouting_share, territory.age_years, endpoint=e)), base=base, weight=0.0) for e in at]
    thetas = [m.theta for m in models]
    times = [reconnection_days(p, draws, crossing_mask(p.grade.size, seed), age) for p in pain_paths]
    weights = np.concatenate([np.full(p.grade.size, s / n) for p, n, s in zip(pain_paths, n_pain, shares, strict=True)])
    out = np.array([model.crossing_days(np.concatenate([t[d] for t in times]), horizon, thetas, weights) for d in range(draws.delay_days.size)]).reshape(-1, len(at)).T
    if (np.concatenate([p.grade for p in pain_paths]) == 5).any():
        out = np.minimum(out, draws.recurrence_days)
    return dict(zip(at, np.minimum(out, horizon), strict=True))


def _shortest(targets: Sequence[NerveOutcome], blocked: bool, seed: int) -> TerritoryOutcome:
    members = tuple(_member(t, float("nan"), True) | {"share": None} for t in targets)
    if not blocked or any(t.relief_days is None for t in targets):
        relief = Relief(0.0, 0.0, 0.0, "none", "no block: one of the targets still conducts most of its pain fibres", 0.0)
    else:
        days = np.min(np.vstack([t.relief_days for t in targets]), axis=0)
        relief = summarise(days, targets[0].relief.mechanism, "no catalogued territory holds these targets together: the shortest relief of the targets, draw by draw")
    return TerritoryOutcome("the targets' territories", members, 0.0, blocked, relief, "shortest of the targets")


__all__ = ["TerritoryOutcome", "shared_relief_days", "shared_territory", "territory_outcome"]
