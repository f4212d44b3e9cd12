"""How reliable an instrument is: does the suite, under its seeds, tell components apart the same way
twice, and does the cheap rung predict full training?

Pure computations on training results (`Results`: {task: {seed: {"test_acc", "test_loss", "n_test",
"val_acc", "val_loss", "n_val"}}}) of a panel of components (`kinds.panels`) trained under two
disjoint seed sets. Nothing here trains or writes to MLflow: `suite_check` does that.

Per task:
- `snr`: signal to noise of the task's per-seed score (the test loss, whose ordering is what decides
  ties and most wins), as an F ratio: the variance across panel members of their seed-mean, over the
  variance of a seed-mean that seed noise alone would give (within-member variance / seeds). 1 means
  the task tells members apart no better than a fresh seed does; 10 means its signal dominates.
- `saturation`: the share of non-degenerate members whose mean test accuracy is within one test
  example of the best member's (a saturated task cannot separate them by accuracy at all).
- `split_half`: the Spearman of the members' task scores between the two seed sets.

Per statistic: the noise ceiling (Spearman between seed sets, same rung) and, for cheap rungs, the
agreement with full training on seeds the cheap rung did not use.
"""
from __future__ import annotations

import math

import numpy as np

from ..stats import spearman
from .winrate import Results, log_ratio_units, win_rate

SPLITS = ("test", "val")


def _loss(r: dict, split: str) -> float:
    value = r.get(f"{split}_loss")
    return math.inf if value is None or not math.isfinite(value) else float(value)


def _seeds(results: Results, task: str) -> list[int]:
    return sorted(results[task])


def task_scores(panel: dict[str, Results], task: str, seeds: list[int], split: str = "test") -> np.ndarray:
    """[members, seeds]: each member's loss-based win rate against the rest of the panel on `task`
    (round-robin, per seed): a continuous, paired score that accuracy ties do not flatten. A
    non-finite loss loses to every finite one."""
    names = list(panel)
    out = np.zeros((len(names), len(seeds)))
    for j, seed in enumerate(seeds):
        losses = np.array([_loss(panel[n][task][seed], split) for n in names])
        for i in range(len(names)):
            others = np.delete(losses, i)
            out[i, j] = (np.sum(others > losses[i]) + 0.5 * np.sum(others == losses[i])) / max(len(others), 1)
    return out


def f_ratio(scores: np.ndarray) -> float:
    """Variance of member means over the variance a mean of that many seeds has from noise alone."""
    if scores.shape[1] < 2 or scores.shape[0] < 2:
        return math.nan
    between = scores.mean(axis=1).var(ddof=1)
    within = scores.var(axis=1, ddof=1).mean() / scores.shape[1]
    return float(between / within) if within > 0 else math.inf


def saturation(panel: dict[str, Results], task: str, members: list[str]) -> float:
    """Share of `members` within one test example of the best member's mean accuracy."""
    accs = {}
    for m in members:
        per_seed = panel[m][task]
        n = next(iter(per_seed.values()))["n_test"]
        accs[m] = np.mean([r["test_acc"] for r in per_seed.values()]) * n
    best = max(accs.values())
    return float(np.mean([best - a <= 1.0 + 1e-9 for a in accs.values()]))


def task_reliability(panel: dict[str, Results], task: str, seeds_a: list[int], seeds_b: list[int],
                     members: list[str]) -> dict:
    """`snr`, `saturation` and `split_half` of one task over a (non-degenerate) panel subset."""
    sub = {m: panel[m] for m in members}
    seeds = list(seeds_a) + list(seeds_b)
    scores = task_scores(sub, task, seeds)
    a, b = scores[:, :len(seeds_a)].mean(axis=1), scores[:, len(seeds_a):].mean(axis=1)
    accs = np.array([[sub[m][task][s]["test_acc"] for s in seeds] for m in members])
    return {"snr": f_ratio(scores), "snr_accuracy": f_ratio(accs),
            "saturation": saturation(panel, task, members), "split_half": spearman(a, b)}


# --- statistics of a whole suite: what a round reads (B-WR, BSOTA-WR) and what it screens on ---

def _on(h: Results, seeds: list[int]) -> Results:
    return {t: {s: h[t][s] for s in seeds} for t in h}


def _refs(refs: list[Results], seeds: list[int]) -> dict[str, Results]:
    return {str(i): _on(r, seeds) for i, r in enumerate(refs)}


def loss_win_rate(h: Results, refs: list[Results], seeds: list[int], split: str) -> float:
    """Win rate decided by the loss alone, exact ties only (winrate's "loss" rule with no tolerance):
    no accuracy count, so a model's confidence counts even where both classify the same examples
    correctly."""
    return win_rate(_on(h, seeds), _refs(refs, seeds), 0.0, split=split, metric="loss")


def log_loss_ratio(h: Results, refs: list[Results], seeds: list[int], split: str) -> float:
    """Mean over (task, seed, reference) of log(reference loss / hypothesis loss), clipped per
    comparison (winrate.log_ratio_units): > 0 means lower loss than the references."""
    return float(log_ratio_units(_on(h, seeds), _refs(refs, seeds), split).mean())


def statistic(name: str, h: Results, baselines: list[Results], sota: list[Results], seeds: list[int],
              loss_tol: float, metric: str = "accuracy") -> float:
    """A named statistic of `h` on `seeds` (see STATISTICS); the win rates a round reports are
    under the kind's `metric` ([compare] metric), `acc_*` under the accuracy rule whatever it is."""
    both = baselines + sota
    if name in ("b_wr", "bsota_wr", "val_b_wr", "val_bsota_wr", "acc_b_wr", "acc_bsota_wr"):
        refs = both if "bsota" in name else baselines
        return win_rate(_on(h, seeds), _refs(refs, seeds), loss_tol,
                        split="val" if name.startswith("val_") else "test",
                        metric="accuracy" if name.startswith("acc_") else metric)
    if name in ("loss_b_wr", "loss_bsota_wr"):  # test loss alone, against the baselines / all references
        return loss_win_rate(h, both if "bsota" in name else baselines, seeds, "test")
    if name == "log_loss_ratio":
        return log_loss_ratio(h, both, seeds, "test")
    if name == "val_loss_wr":
        return loss_win_rate(h, both, seeds, "val")
    if name == "val_log_loss_ratio":
        return log_loss_ratio(h, both, seeds, "val")
    raise KeyError(name)


STATISTICS = ("b_wr", "bsota_wr", "acc_b_wr", "acc_bsota_wr", "loss_b_wr", "loss_bsota_wr", "log_loss_ratio",
              "val_b_wr", "val_bsota_wr", "val_loss_wr", "val_log_loss_ratio")
