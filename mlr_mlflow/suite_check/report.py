"""The readable report of a suite check (`suite_check.md`, also the run's description)."""
from __future__ import annotations

import math

SATURATED = 0.5  # a task where at least this share of the panel is within one test example of the best
NOISY_SNR = 2.0  # signal to noise below this: a task's ordering is mostly seed noise
GOAL_CEILING = 0.85  # issue 27's goals for a suite's instrument
GOAL_CHEAP = 0.7

WIN_RULES = {
    "accuracy": "Win rates (b_wr, bsota_wr, val_*) are decided by the count of correct examples, the loss "
                "breaking ties; `acc_*` are the same under the accuracy rule, `loss_*` by the test loss alone.",
    "loss": "Win rates (b_wr, bsota_wr, val_*) are decided by the loss alone ([compare] metric = \"loss\"); "
            "`acc_*` are the same under the accuracy rule, for comparison.",
}

GROUP_LABELS = {"all": "all members", "non_degenerate": "non-degenerate", "relu_like": "ReLU-like"}


def _f(value, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def verdicts(out: dict) -> list[str]:
    """One line per finding, worst first: what a user should know before trusting a round."""
    lines = []
    for task, r in out["tasks"].items():
        sat = r["saturation"]
        if sat is not None and math.isfinite(sat) and sat >= SATURATED:
            lines.append(f"task {task} is saturated: {sat * 100:.0f} % of the panel within one test example of the best")
        snr = r["snr"]
        if snr is not None and math.isfinite(snr) and snr < NOISY_SNR:
            lines.append(f"task {task} barely tells members apart: signal to noise {snr:.1f} "
                         f"(1 = no better than a fresh seed)")
    ceiling, cheap = out["full_noise_ceiling"], out["cheap_vs_full"]
    if ceiling is None or not math.isfinite(ceiling):
        lines.append("the full-training B-WR noise ceiling is undefined (too few non-degenerate members "
                     "or constant win rates)")
    else:
        lines.append(f"full-training B-WR repeats at Spearman {ceiling:.2f} between disjoint seed sets "
                     f"(non-degenerate panel; goal ≥ {GOAL_CEILING}): "
                     + ("a round's ranking can be trusted" if ceiling >= GOAL_CEILING else
                        "a round's ranking is partly seed noise"))
    if cheap is not None and math.isfinite(cheap):
        lines.append(f"the screening statistic {out['screen_statistic']} at one-pass agrees with full B-WR on "
                     f"other seeds at {cheap:.2f} (goal ≥ {GOAL_CHEAP})")
    stat, v_ceiling, v_cheap = out.get("verdict_statistic"), out.get("verdict_noise_ceiling"), out.get("cheap_vs_verdict")
    if stat and stat != "b_wr" and v_ceiling is not None and math.isfinite(v_ceiling):
        lines.append(f"this kind is ranked and confirmed by {stat}, which repeats at Spearman {v_ceiling:.2f} "
                     "between disjoint seed sets (non-degenerate panel)"
                     + (f"; the one-pass {out['screen_statistic']} agrees with it at {v_cheap:.2f}"
                        if v_cheap is not None and math.isfinite(v_cheap) else ""))
    order = out["order_check"]
    for inv in order["inversions"]:
        lines.append(f"INVERSION: full training ({order['ordered_by']}) puts {inv['higher']} above {inv['lower']} "
                     f"({inv['full'][0]:.2f} vs {inv['full'][1]:.2f}), the one-pass {order['statistic']} "
                     f"does not ({inv['screen'][0]:.2f} vs {inv['screen'][1]:.2f}){_sets(inv)}")
    if order["ok"]:
        lines.append(f"order check: the one-pass {order['statistic']} reverses none of the "
                     f"{order['pairs_checked']} orderings that full training shows clearly"
                     + (f" ({len(order['ties'])} tied)" if order["ties"] else ""))
    for name, error in out.get("errors", {}).items():
        lines.append(f"member {name} failed to train and is left out: {error}")
    return lines


def _sets(inv: dict) -> str:
    if "on_both_sets" not in inv:  # a check recorded before inversions said so
        return ""
    return ("; it does so on each seed set alone" if inv["on_both_sets"]
            else "; not on each seed set alone (within the screen's own seed noise)")


def render(out: dict, kind: str) -> str:
    seeds = out["seeds"]
    md = [f"# Suite check: {kind}", "",
          f"Panel of {len(out['members'])} reference {kind} components trained on {len(out['tasks'])} task(s), "
          f"one-pass and full, under seed set A {seeds['a']} and the disjoint set B {seeds['b']}. "
          + WIN_RULES.get(out.get("metric", "accuracy"), ""), "",
          "## Verdict", "", *[f"- {line}" for line in verdicts(out)], "",
          "## Tasks (full training, non-degenerate members)", "",
          "- **snr**: variance of the members' mean score over the variance seed noise alone gives a mean "
          "(1 = the task tells members apart no better than a fresh seed);",
          "- **saturation**: share of members whose mean test accuracy is within one test example of the best;",
          "- **split-half**: Spearman of the members' task scores between seed sets A and B.", "",
          "| task | snr | snr (accuracy) | saturation | split-half | one-pass snr | one-pass split-half |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for task, r in out["tasks"].items():
        o = out["tasks_one_pass"][task]
        md.append(f"| {task} | {_f(r['snr'], 1)} | {_f(r['snr_accuracy'], 1)} | {_f(r['saturation'])} | "
                  f"{_f(r['split_half'])} | {_f(o['snr'], 1)} | {_f(o['split_half'])} |")
    groups = list(out["groups"])
    header = " | ".join(GROUP_LABELS[g] for g in groups)
    md += ["", "## Noise ceilings", "",
           "Spearman of each statistic between seed sets A and B over the panel, same rung: how far a "
           "ranking by that statistic repeats. No predictor of it can do better.", "",
           f"| statistic | rung | {header} |", "| --- | --- | " + " | ".join("---" for _ in groups) + " |"]
    for rung in ("full", "one-pass"):
        for stat, by_group in out["noise_ceilings"][rung].items():
            md.append(f"| {stat} | {rung} | " + " | ".join(_f(by_group.get(g)) for g in groups) + " |")
    md += ["", "## The cheap rung against full training", "",
           "Spearman of each one-pass statistic against full-training B-WR (and BSOTA-WR) on the seed set "
           "it did not use (mean of A→B and B→A).", "",
           f"| one-pass statistic | full target | {header} |",
           "| --- | --- | " + " | ".join("---" for _ in groups) + " |"]
    for target, by_stat in out["cheap_agreement"].items():
        for stat, by_group in by_stat.items():
            mark = " (screening)" if stat == out["screen_statistic"] else ""
            md.append(f"| {stat}{mark} | {target} | " + " | ".join(_f(by_group.get(g)) for g in groups) + " |")
    order = out["order_check"]
    md += ["", "## Order check", "",
           f"Pairs that full training orders clearly ({order['ordered_by']} over all seeds, the same way on set A "
           f"and on set B: each degenerate member below the strongest member, {order['strongest']}, at any margin; "
           f"other pairs by at least {order['margin']}) must keep their order under the screening statistic "
           f"{order['statistic']} at one-pass. {order['pairs_checked']} pair(s) checked, "
           f"{len(order['inversions'])} inverted, {len(order['ties'])} tied (the screen cannot tell them apart)."]
    if order["inversions"]:
        md += ["", "| higher at full | lower at full | full | screen (all seeds) | screen on set A | screen on set B |",
               "| --- | --- | --- | --- | --- | --- |"]
        for inv in order["inversions"]:
            by_set = inv.get("screen_by_set") or [[math.nan, math.nan]] * 2
            md.append(f"| {inv['higher']} | {inv['lower']} | {_f(inv['full'][0])} vs {_f(inv['full'][1])} | "
                      f"{_f(inv['screen'][0])} vs {_f(inv['screen'][1])} | "
                      + " | ".join(f"{_f(a)} vs {_f(b)}" for a, b in by_set) + " |")
        md += ["", f"{order.get('inversions_on_both_sets', 0)} of the {len(order['inversions'])} inversion(s) "
               "hold on each seed set alone (the screen itself shows the reversed order); the others are "
               "within the screen's own seed noise."]
    md += ["", "## Panel", "", "| member | group | full B-WR (A) | full B-WR (B) | source |", "| --- | --- | --- | --- | --- |"]
    for name, m in out["members"].items():
        md.append(f"| {name} | {m['group']} | {_f(m['full']['a']['b_wr'])} | {_f(m['full']['b']['b_wr'])} | "
                  f"{m['source']} |")
    return "\n".join(md) + "\n"
