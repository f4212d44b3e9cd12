"""How well the reward model ranks what it was not trained on, in the terms a round cares about.

Every hypothesis gets an out-of-sample prediction: one of a training source is predicted by a model
trained on the other rounds (leave its round out); one of a held-out source (never trained on) by
a model trained on all the training sources. From those predictions and measured B-WRs:
correlations by round and by source, NDCG@10, precision@10, and the evaluations a walk in
predicted order needs to find the true top 10 (and 9 and 8 of them), as a fraction of a random
order's expectation. The maths are in stats.py.
"""
from __future__ import annotations

import math

import numpy as np

from ..stats import (evaluations_to_find, kendall, ndcg_at_k, precision_at_k,
                     random_evaluations_to_find, spearman)
from .ranker import Dataset, fit  # fitted on `target` (validation), judged on `b_wr` (test)


def _fit_predict(X, data: Dataset, train, test, algorithm: str) -> np.ndarray:
    model = fit(X[train], data.target[train], [r for r, t in zip(data.rounds, train) if t], algorithm)
    return model.predict(X[test])


def out_of_sample(X, data: Dataset, algorithm: str, held_out_sources=()) -> np.ndarray:
    """One prediction per hypothesis from a model that never saw it (nor its round, nor, for a
    held-out source, anything of that source)."""
    held = np.array([g in held_out_sources for g in data.generators])
    rounds = np.array(data.rounds)
    pred = np.full(len(data), np.nan)
    for group in sorted(set(rounds[~held])):
        test = (rounds == group) & ~held
        train = ~held & ~test
        if train.any():
            pred[test] = _fit_predict(X, data, train, test, algorithm)
    if held.any() and (~held).any():
        pred[held] = _fit_predict(X, data, ~held, held, algorithm)
    return pred


def _correlations(pred, truth) -> dict:
    return {"spearman": _round(spearman(pred, truth)), "kendall": _round(kendall(pred, truth)),
            "n": int(len(truth))}


def _round(x: float, digits: int = 3):
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def by_round(pred, data: Dataset, held_out_sources=()) -> dict:
    """Pooled and per-round correlations of the leave-one-round-out predictions (training sources)."""
    keep = np.array([g not in held_out_sources for g in data.generators]) & np.isfinite(pred)
    rounds = np.array(data.rounds)
    per_round = {r: _correlations(pred[keep & (rounds == r)], data.b_wr[keep & (rounds == r)])
                 for r in sorted(set(rounds[keep]))}
    spearmans = [v["spearman"] for v in per_round.values() if v["spearman"] is not None]
    return {**_correlations(pred[keep], data.b_wr[keep]), "rounds": per_round,
            "mean_spearman": _round(float(np.mean(spearmans))) if spearmans else None}


def by_source(X, data: Dataset, algorithm: str, held_out_sources=()) -> dict:
    """Each source predicted by a model trained on the other training sources only."""
    sources = np.array(data.generators)
    training = ~np.isin(sources, list(held_out_sources))
    out = {}
    for source in sorted(set(data.generators)):
        test = sources == source
        train = training & ~test
        if not train.any():
            continue
        out[source] = _correlations(_fit_predict(X, data, train, test, algorithm), data.b_wr[test])
        out[source]["held_out_source"] = source in held_out_sources
    return out


def discovery(pred, truth, top: int = 10) -> dict:
    """NDCG and precision at `top`, and the evaluations to find all, all but one and all but two
    of the true top `top`, each against a random order's expectation."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    n = len(truth)
    out = {"pool": n, f"ndcg_at_{top}": _round(ndcg_at_k(pred, truth, top)),
           f"precision_at_{top}": _round(precision_at_k(pred, truth, top))}
    for found in (top, top - 1, top - 2):
        if found < 1:
            continue
        needed = evaluations_to_find(pred, truth, top, found)
        random = random_evaluations_to_find(n, top, found)
        out[f"find_{found}_of_top{top}"] = {"evaluations": int(needed),
                                             "random_expected": round(random, 1),
                                             "fraction_of_random": _round(needed / random)}
    return out


def ranking_report(X, data: Dataset, algorithm: str, held_out_sources=()) -> dict:
    """Everything above against the measured (one-pass) B-WR of `data`."""
    pred = out_of_sample(X, data, algorithm, held_out_sources)
    ok = np.isfinite(pred)
    return {"by_round": by_round(pred, data, held_out_sources),
            "by_source": by_source(X, data, algorithm, held_out_sources),
            "discovery": discovery(pred[ok], data.b_wr[ok])}
