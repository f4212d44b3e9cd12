"""Win rates (CONTRACT.md): per dataset and seed, the hypothesis against each reference component.

The rule for one (dataset, seed, reference):
- more test examples classified correctly: win (1); fewer: loss (0);
- the same number correct: the test losses decide; within `loss_tol` (absolute) it is a tie (0.5),
  otherwise the lower loss wins. A non-finite loss counts as infinitely bad.
Accuracy is compared as a count of correct examples, so float noise in it cannot decide.
"""
from __future__ import annotations

import math

# {dataset: {seed: {"test_acc", "test_loss", "n_test", ...}}}
Results = dict[str, dict[int, dict]]


def _loss(value) -> float:
    return math.inf if value is None or not math.isfinite(value) else float(value)


def compare(h: dict, ref: dict, loss_tol: float) -> float:
    """1 for a win of `h` over `ref`, 0.5 for a tie, 0 for a loss."""
    n = h["n_test"]
    correct_h, correct_r = round(h["test_acc"] * n), round(ref["test_acc"] * n)
    if correct_h != correct_r:
        return 1.0 if correct_h > correct_r else 0.0
    lh, lr = _loss(h.get("test_loss")), _loss(ref.get("test_loss"))
    if lh == lr or abs(lh - lr) <= loss_tol:
        return 0.5
    return 1.0 if lh < lr else 0.0


def win_rate(h: Results, references: dict[str, Results], loss_tol: float,
             datasets: list[str] | None = None) -> float:
    """Mean outcome over datasets x seeds x references (the seeds of `h`)."""
    outcomes = []
    for ds in datasets or list(h):
        for seed, result in h[ds].items():
            outcomes += [compare(result, ref[ds][seed], loss_tol) for ref in references.values()]
    if not outcomes:
        raise ValueError("no (dataset, seed, reference) triple to compare")
    return sum(outcomes) / len(outcomes)


def summarize(h: Results, baselines: dict[str, Results], sota: dict[str, Results],
              loss_tol: float) -> dict:
    """b_wr, bsota_wr and per-dataset means: what a hypothesis run records."""
    both = {**baselines, **sota}
    datasets = {}
    for ds, per_seed in h.items():
        losses = [_loss(r.get("test_loss")) for r in per_seed.values()]
        datasets[ds] = {
            "test_acc": sum(r["test_acc"] for r in per_seed.values()) / len(per_seed),
            "test_loss": sum(losses) / len(losses),
            "b_wr": win_rate(h, baselines, loss_tol, [ds]),
            "bsota_wr": win_rate(h, both, loss_tol, [ds]),
        }
    return {"b_wr": win_rate(h, baselines, loss_tol), "bsota_wr": win_rate(h, both, loss_tol),
            "datasets": datasets}
