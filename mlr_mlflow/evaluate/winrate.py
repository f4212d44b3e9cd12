"""Win rates (CONTRACT.md): per dataset and seed, the hypothesis against each reference component.

The rule for one (dataset, seed, reference), by the test metric (`[compare] metric`):
- "accuracy" (the default, the paper's): more test examples classified correctly: win (1); fewer:
  loss (0); the same number correct: the test losses decide; within `loss_tol` (absolute) it is a
  tie (0.5), otherwise the lower loss wins. Accuracy is compared as a count of correct examples, so
  float noise in it cannot decide.
- "loss": the test losses alone decide, within `loss_tol` a tie.
A non-finite loss counts as infinitely bad.

The same rule applies to either split: test win rates (`b_wr`, `bsota_wr`) are the reported numbers;
validation win rates (`val_b_wr`, `val_bsota_wr`) are what a round selects on, so that the reported
numbers of the selected are not inflated by the selection itself. Intervals and the paired test come
from `mlr_mlflow.stats`, on the (dataset, seed) units of the test split.
"""
from __future__ import annotations

import math

import numpy as np

from ..stats import bootstrap_interval, sign_flip_pvalue

# {dataset: {seed: {"test_acc", "test_loss", "n_test", ...}}}
Results = dict[str, dict[int, dict]]


def _loss(value) -> float:
    return math.inf if value is None or not math.isfinite(value) else float(value)


METRICS = ("accuracy", "loss")


def compare(h: dict, ref: dict, loss_tol: float, split: str = "test", metric: str = "accuracy") -> float:
    """1 for a win of `h` over `ref` on `split` ("test" or "val"), 0.5 for a tie, 0 for a loss."""
    if metric == "accuracy":
        n = h[f"n_{split}"]
        correct_h, correct_r = round(h[f"{split}_acc"] * n), round(ref[f"{split}_acc"] * n)
        if correct_h != correct_r:
            return 1.0 if correct_h > correct_r else 0.0
    elif metric != "loss":
        raise ValueError(f"unknown win-rate metric {metric!r} (known: {', '.join(METRICS)})")
    lh, lr = _loss(h.get(f"{split}_loss")), _loss(ref.get(f"{split}_loss"))
    if lh == lr or abs(lh - lr) <= loss_tol:
        return 0.5
    return 1.0 if lh < lr else 0.0


def win_rate(h: Results, references: dict[str, Results], loss_tol: float,
             datasets: list[str] | None = None, split: str = "test", metric: str = "accuracy") -> float:
    """Mean outcome over datasets x seeds x references (the seeds of `h`)."""
    outcomes = []
    for ds in datasets or list(h):
        for seed, result in h[ds].items():
            outcomes += [compare(result, ref[ds][seed], loss_tol, split, metric)
                         for ref in references.values()]
    if not outcomes:
        raise ValueError("no (dataset, seed, reference) triple to compare")
    return sum(outcomes) / len(outcomes)


def units(h: Results, references: dict[str, Results], loss_tol: float,
          split: str = "test", metric: str = "accuracy") -> np.ndarray:
    """[datasets, seeds]: each (dataset, seed)'s mean outcome against the references (paired: the
    same seed and split on both sides). Its mean is the win rate."""
    return np.array([[np.mean([compare(h[ds][seed], ref[ds][seed], loss_tol, split, metric)
                               for ref in references.values()]) for seed in sorted(h[ds])]
                     for ds in h])


LOG_RATIO_CLIP = 3.0  # one diverged model moves the mean by at most this per comparison


def log_ratio(loss_h, loss_ref) -> float:
    """log(reference loss / hypothesis loss), clipped to [-3, 3]: > 0 is a lower loss than the
    reference. A non-finite loss is infinitely bad (two of them: 0)."""
    lh, lr = _loss(loss_h), _loss(loss_ref)
    if math.isinf(lh) and math.isinf(lr):
        return 0.0
    if math.isinf(lh) or math.isinf(lr):
        return -LOG_RATIO_CLIP if math.isinf(lh) else LOG_RATIO_CLIP
    return float(np.clip(math.log(max(lr, 1e-12) / max(lh, 1e-12)), -LOG_RATIO_CLIP, LOG_RATIO_CLIP))


def log_ratio_units(h: Results, references: dict[str, Results], split: str = "test") -> np.ndarray:
    """[datasets, seeds]: each (dataset, seed)'s mean log loss ratio against the references (paired
    like `units`). Its mean is `log_loss_ratio`: an effect size where a win rate only counts wins,
    the statistic regularizers are ranked by (evaluate/verdict.py)."""
    return np.array([[np.mean([log_ratio(h[ds][seed].get(f"{split}_loss"), ref[ds][seed].get(f"{split}_loss"))
                               for ref in references.values()]) for seed in sorted(h[ds])]
                     for ds in h])


def uncertainty(h: Results, baselines: dict[str, Results], sota: dict[str, Results], loss_tol: float,
                level: float = 0.95, n_boot: int = 2000, metric: str = "accuracy") -> dict:
    """Bootstrap intervals of b_wr and bsota_wr, and the paired test's p-value of b_wr > 0.5; the
    test log loss ratio against every reference, with its interval and its test of a ratio > 0."""
    b = units(h, baselines, loss_tol, metric=metric)
    bsota = units(h, {**baselines, **sota}, loss_tol, metric=metric)
    ratio = log_ratio_units(h, {**baselines, **sota})
    out = {"b_wr_p_value": sign_flip_pvalue(b), "log_loss_ratio": float(ratio.mean()),
           "log_loss_ratio_p_value": sign_flip_pvalue(ratio, null=0.0)}
    for name, u in (("b_wr", b), ("bsota_wr", bsota), ("log_loss_ratio", ratio)):
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = bootstrap_interval(u, level, n_boot)
    return out


def summarize(h: Results, baselines: dict[str, Results], sota: dict[str, Results],
              loss_tol: float, level: float = 0.95, n_boot: int = 2000, metric: str = "accuracy") -> dict:
    """What a hypothesis run records: b_wr and bsota_wr (test) with their intervals and p-value,
    val_b_wr and val_bsota_wr (validation: for selection), and per-dataset means, all under the
    win rule `metric`; and the test log loss ratio against every reference, with its interval and
    p-value (sign-flip test of a ratio above 0)."""
    both = {**baselines, **sota}
    datasets = {}
    for ds, per_seed in h.items():
        losses = [_loss(r.get("test_loss")) for r in per_seed.values()]
        datasets[ds] = {
            "test_acc": sum(r["test_acc"] for r in per_seed.values()) / len(per_seed),
            "test_loss": sum(losses) / len(losses),
            "b_wr": win_rate(h, baselines, loss_tol, [ds], metric=metric),
            "bsota_wr": win_rate(h, both, loss_tol, [ds], metric=metric),
            "val_b_wr": win_rate(h, baselines, loss_tol, [ds], split="val", metric=metric),
        }
    return {"b_wr": win_rate(h, baselines, loss_tol, metric=metric),
            "bsota_wr": win_rate(h, both, loss_tol, metric=metric),
            "val_b_wr": win_rate(h, baselines, loss_tol, split="val", metric=metric),
            "val_bsota_wr": win_rate(h, both, loss_tol, split="val", metric=metric),
            **uncertainty(h, baselines, sota, loss_tol, level, n_boot, metric), "datasets": datasets}
