"""The one split that `reward train` and `reward evaluate` both report, the same way.

The newest round(s) are held out; the rest are the training rounds. For each algorithm:
- `cross_validated`: leave one training round out (what `train` chooses the algorithm by);
- `held_out`: fitted on all training rounds, scored on the held-out round(s);
- `by_generator`: leave one generator out on the training rounds, or None with the reason when
  the training rounds hold a single generator (a correlation of nothing is not NaN to a reader).
Rounds are named by their number (`mlr.round.number`), never by an internal id.
"""
from __future__ import annotations

import numpy as np

from .ranker import RewardDataError, correlations, fit, held_out

ALGORITHMS = ("ranker", "regressor")


def split(data, holdout: int):
    """(training set, held-out set, held-out round ids): the newest `holdout` rounds held out."""
    order = []
    for r in data.rounds:  # rounds in order of their first run (the dataset is time-ordered)
        if r not in order:
            order.append(r)
    if len(order) <= holdout:
        raise RewardDataError(f"need more than {holdout} round(s) to hold {holdout} out; have {len(order)}")
    held = set(order[-holdout:])
    mask = np.array([r in held for r in data.rounds])
    return data.subset(~mask), data.subset(mask), sorted(held)


def _numbers(rounds, numbers: dict[str, int]) -> list:
    """Round numbers in order; runs of `evaluate` (no round) as "outside rounds", a round with no
    number by its id."""
    known = sorted({numbers[r] for r in rounds if r in numbers})
    return known + sorted({"outside rounds" if r == "none" else r for r in rounds if r not in numbers})


def report(X_train, train_set, X_hold, holdout, numbers: dict[str, int],
           fitted: dict | None = None) -> dict:
    """The split and, per algorithm, its cross-validated, held-out and by-generator Spearman.
    `fitted`, when given, receives each algorithm's model fitted on all training rounds (so `train`
    does not fit its chosen one again)."""
    one_generator = len(set(train_set.generators)) < 2
    out = {"split": {"train_rounds": _numbers(train_set.rounds, numbers),
                     "holdout_rounds": _numbers(holdout.rounds, numbers),
                     "n_train": len(train_set), "n_holdout": len(holdout)}}
    for alg in ALGORITHMS:
        cv = held_out(X_train, train_set, "round", alg)
        model = fit(X_train, train_set.target, train_set.rounds, alg)
        if fitted is not None:
            fitted[alg] = model
        hold = correlations(model.predict(X_hold), holdout.target) if len(holdout) else None
        gen = None if one_generator else held_out(X_train, train_set, "generator", alg)
        out[alg] = {
            "cross_validated": {"mean_spearman": cv["mean_spearman"], **cv["pooled"]},
            "held_out": hold,
            "by_generator": gen["pooled"] if gen else None,
            "by_generator_note": "one generator in the training rounds" if one_generator else None,
        }
    return out


def chosen(rep: dict) -> str:
    """The algorithm with the higher cross-validated Spearman (NaN loses)."""
    return max(ALGORITHMS, key=lambda a: np.nan_to_num(rep[a]["cross_validated"]["mean_spearman"], nan=-1.0))


def _rounds(numbers: list) -> str:
    words = [str(n) for n in numbers]
    return ("round " if len(words) == 1 else "rounds ") + ", ".join(words)


def _num(value) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.3f}"


def lines(rep: dict) -> list[str]:
    """The report as people read it: one line for the split, a small table of Spearman."""
    s = rep["split"]
    held = _rounds(s["holdout_rounds"])
    out = [f"trained on {_rounds(s['train_rounds'])} ({s['n_train']} hypotheses); "
           f"held out {held} ({s['n_holdout']})",
           f"  {'Spearman with the validation target':<38}{'leave a round out':>18}{'held out':>10}"
           f"{'by generator':>14}"]
    for alg in ALGORITHMS:
        r = rep[alg]
        gen = _num(r["by_generator"]["spearman"]) if r["by_generator"] else "n/a"
        out.append(f"  {alg:<38}{_num(r['cross_validated']['mean_spearman']):>18}"
                   f"{_num((r['held_out'] or {}).get('spearman')):>10}{gen:>14}")
    note = rep[ALGORITHMS[0]]["by_generator_note"]
    if note:
        out.append(f"  by generator: n/a ({note})")
    return out
