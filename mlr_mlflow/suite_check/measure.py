"""The numbers of a suite check, from a panel's training results under two disjoint seed sets.

Pure: no training, no MLflow. `panel` maps a member's name to its Results at one rung
({task: {seed: result}}); `refs` is (baselines, sota), each a list of Results at the same rung.
"""
from __future__ import annotations

import math

import numpy as np

from ..evaluate.reliability import STATISTICS, statistic, task_reliability
from ..stats import spearman

RUNGS = ("one-pass", "full")
# the full-training statistics a cheap rung should predict: the reported win rates, and the test
# log-loss ratio that regularizers are ranked by (evaluate/verdict.py)
TARGETS = ("b_wr", "bsota_wr", "log_loss_ratio")
# the full-training statistic that decides which pairs of members are clearly ordered: the one with
# the most references (a finer grain than B-WR's single baseline)
ORDER_BY = "bsota_wr"
ORDER_MARGIN = 0.25  # ... by at least this much on both seed sets (a degenerate member: any margin)


def groups(members) -> dict[str, list[str]]:
    """The member sets a ceiling is computed over: all, the non-degenerate ones, the ReLU-like
    ones (activations only); a set with fewer than 3 members has no meaningful rank correlation."""
    sets = {"all": [m.name for m in members],
            "non_degenerate": [m.name for m in members if m.group != "degenerate"],
            "relu_like": [m.name for m in members if m.group == "relu_like"]}
    return {g: names for g, names in sets.items() if len(names) >= 3}


def statistics(panel: dict, refs: tuple[list, list], seeds: list[int], loss_tol: float,
               metric: str = "accuracy") -> dict:
    """{statistic: {member: value}} over `seeds` (the reported win rates under the kind's `metric`)."""
    baselines, sota = refs
    return {name: {m: statistic(name, results, baselines, sota, seeds, loss_tol, metric)
                   for m, results in panel.items()} for name in STATISTICS}


def _rho(a: dict, b: dict, names: list[str]) -> float:
    return spearman([a[n] for n in names], [b[n] for n in names])


def _mean(values) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def order_check(full_a: dict, full_b: dict, cheap: dict, members, screen: str,
                cheap_halves: tuple[dict, dict], margin: float = ORDER_MARGIN) -> dict:
    """Pairs of members that full training orders clearly (by ORDER_BY, the same way on both seed
    sets; a degenerate member below the best non-degenerate one at any margin, others by at least
    `margin`: ORDER_MARGIN, or a finer one in bench/screen_rungs.py) and whether the screening
    statistic at one-pass (all seeds) reverses any of them.
    Each inversion also says whether the screen reverses the pair on each seed set alone
    (`cheap_halves`: its statistics on set A and on set B): if so, the screen itself shows the
    reversed order, as full training shows the other; if not, its reversal is within its own seed
    noise. Either way it counts as an inversion (`ok` is false)."""
    full = {m: (full_a[ORDER_BY][m] + full_b[ORDER_BY][m]) / 2 for m in full_a[ORDER_BY]}
    real = [m.name for m in members if m.group != "degenerate"]
    best = max(real, key=lambda m: full[m]) if real else None
    pairs = []
    names = [m.name for m in members]
    degenerate = {m.name for m in members if m.group == "degenerate"}
    for hi in names:
        for lo in names:
            gap_a = full_a[ORDER_BY][hi] - full_a[ORDER_BY][lo]
            gap_b = full_b[ORDER_BY][hi] - full_b[ORDER_BY][lo]
            needed = 0.0 if (hi == best and lo in degenerate) else margin
            if hi != lo and min(gap_a, gap_b) > needed:
                pairs.append((hi, lo))
    def pair(hi, lo):
        return {"higher": hi, "lower": lo, "degenerate": lo in degenerate,
                "full": [round(full[hi], 4), round(full[lo], 4)],
                "screen": [round(cheap[screen][hi], 4), round(cheap[screen][lo], 4)],
                "screen_by_set": [[round(h[screen][hi], 4), round(h[screen][lo], 4)] for h in cheap_halves],
                "on_both_sets": all(h[screen][hi] < h[screen][lo] for h in cheap_halves)}

    # a reversed order is an inversion; an equal score (e.g. both below every reference) only fails to tell
    inversions = [pair(hi, lo) for hi, lo in pairs if cheap[screen][hi] < cheap[screen][lo]]
    ties = [pair(hi, lo) for hi, lo in pairs if cheap[screen][hi] == cheap[screen][lo]]
    return {"statistic": screen, "rung": "one-pass", "ordered_by": ORDER_BY,
            "margin": margin, "strongest": best, "pairs_checked": len(pairs),
            "inversions": inversions, "ties": ties, "ok": not inversions,
            "inversions_on_both_sets": sum(1 for inv in inversions if inv["on_both_sets"])}


def measure(results: dict, refs: dict, members, seeds_a: list[int], seeds_b: list[int],
            loss_tol: float, screen: str, metric: str = "accuracy", verdict: str = "b_wr") -> dict:
    """Everything `suite check` reports. `results[rung]` is the panel's Results by member, `refs[rung]`
    the references' (baselines, sota) at that rung; `metric` is the win rule, `verdict` the
    statistic the kind is ranked and confirmed by (evaluate/verdict.py)."""
    real = [m.name for m in members if m.group != "degenerate"]
    tasks = list(next(iter(results["full"].values())))
    per_task = {rung: {t: task_reliability(results[rung], t, seeds_a, seeds_b, real) for t in tasks}
                for rung in RUNGS}
    stats = {rung: {half: statistics(results[rung], refs[rung], seeds, loss_tol, metric)
                    for half, seeds in (("a", seeds_a), ("b", seeds_b))} for rung in RUNGS}
    sets = groups(members)
    ceilings = {rung: {name: {g: _rho(stats[rung]["a"][name], stats[rung]["b"][name], names)
                              for g, names in sets.items()} for name in STATISTICS} for rung in RUNGS}
    one, full = stats["one-pass"], stats["full"]
    agreement = {target: {name: {g: _mean([_rho(one["a"][name], full["b"][target], names),
                                           _rho(one["b"][name], full["a"][target], names)])
                                 for g, names in sets.items()} for name in STATISTICS}
                 for target in TARGETS}
    cheap_all = statistics(results["one-pass"], refs["one-pass"], list(seeds_a) + list(seeds_b), loss_tol,
                           metric)
    full_all = statistics(results["full"], refs["full"], list(seeds_a) + list(seeds_b), loss_tol, metric)
    return {
        "screen_statistic": screen, "metric": metric, "verdict_statistic": verdict,
        "verdict_noise_ceiling": ceilings["full"][verdict].get("non_degenerate", math.nan),
        "cheap_vs_verdict": agreement[verdict][screen].get("non_degenerate", math.nan),
        "full_noise_ceiling": ceilings["full"]["b_wr"].get("non_degenerate", math.nan),
        "cheap_vs_full": agreement["b_wr"][screen].get("non_degenerate", math.nan),
        "tasks": per_task["full"],
        "tasks_one_pass": per_task["one-pass"],
        "noise_ceilings": ceilings,
        "cheap_agreement": agreement,
        "order_check": order_check(full["a"], full["b"], cheap_all, members, screen, (one["a"], one["b"])),
        "groups": sets,
        "members": {m.name: {"group": m.group, "source": m.source,
                             "full": {"a": {"b_wr": full["a"]["b_wr"][m.name]},
                                      "b": {"b_wr": full["b"]["b_wr"][m.name]}},
                             "full_all": {k: full_all[k][m.name] for k in TARGETS},
                             "one_pass_all": {screen: cheap_all[screen][m.name]}}
                    for m in members},
    }
