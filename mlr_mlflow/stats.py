"""Win-rate statistics: bootstrap intervals, a paired test, Benjamini-Hochberg, the noise ceiling.

Pure maths on numpy arrays; nothing here knows about MLflow, training or hypotheses.

The unit of evidence is one (dataset, seed) pair: the hypothesis and every reference component were
trained under the same seed on the same split, and the unit's outcome is the mean of its win / tie /
loss scores (1, 0.5, 0) against the references. A win rate is the mean over units. Units are held
as a matrix `[datasets, seeds]`, so resampling keeps each comparison paired.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats

EXACT_UP_TO = 16  # units: up to 2**16 sign patterns are enumerated, beyond that they are sampled


def _matrix(units) -> np.ndarray:
    m = np.asarray(units, dtype=float)
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2 or m.size == 0:
        raise ValueError("units must be a non-empty [datasets, seeds] matrix")
    return m


def bootstrap_means(units, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """`n_boot` resampled win rates: datasets drawn with replacement, then seeds within each.

    Drawing datasets carries the between-dataset spread (does it hold on other data?); drawing seeds
    within them carries the training noise. Ours are 2-level cluster data, so a one-level bootstrap
    over all units would be too narrow when datasets disagree.
    """
    m = _matrix(units)
    d, s = m.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(d, size=(n_boot, d))
    cols = rng.integers(s, size=(n_boot, d, s))
    return m[rows[:, :, None], cols].mean(axis=(1, 2))


def bootstrap_interval(units, level: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of `units` ([datasets, seeds]) at confidence `level`."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    means = bootstrap_means(units, n_boot, seed)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def sign_flip_pvalue(units, null: float = 0.5, n_perm: int = 20000, seed: int = 0) -> float:
    """One-sided paired test that the win rate exceeds `null` (0.5: no better than the references).

    Under the null hypothesis a hypothesis and a reference are exchangeable under the same seed, so
    each unit's excess over 0.5 is as likely negative as positive: the p-value is the share of sign
    flips whose total excess is at least the observed one (exact for up to 16 units, else sampled,
    with the +1 correction that keeps a sampled p-value valid). Ties (excess 0) carry no evidence;
    a hypothesis identical to the reference ties everywhere and gets p = 1.
    """
    d = _matrix(units).ravel() - null
    d = d[np.abs(d) > 1e-12]
    if d.size == 0:
        return 1.0
    observed = d.sum()
    tol = 1e-9 * max(1.0, abs(observed))
    if d.size <= EXACT_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
        return float(np.mean(signs @ d >= observed - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(n_perm, d.size))
    hits = int(np.sum(signs @ d >= observed - tol))
    return (1 + hits) / (1 + n_perm)


def benjamini_hochberg(pvalues, fdr: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(rejected, adjusted p-values) of the Benjamini-Hochberg step-up procedure at level `fdr`
    (`scipy.stats.false_discovery_control`, method "bh").

    Controls the expected share of false discoveries among the rejected at `fdr` for independent
    (or positively dependent) p-values.
    """
    if not 0.0 < fdr < 1.0:
        raise ValueError(f"false discovery rate must be in (0, 1), got {fdr}")
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    adjusted = np.asarray(stats.false_discovery_control(p, method="bh"), dtype=float).reshape(p.shape)
    return adjusted <= fdr, adjusted


def _pairs(a, b) -> tuple[np.ndarray, np.ndarray] | None:
    """Both sides as float arrays, or None when the correlation is undefined (NaN): shapes differ,
    fewer than 2 pairs, or either side constant."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size < 2 or np.all(a == a.flat[0]) or np.all(b == b.flat[0]):
        return None
    return a.ravel(), b.ravel()


def spearman(a, b) -> float:
    """Spearman's rank correlation, ties sharing their average rank (NaN when either side is
    constant or there are < 2 pairs)."""
    pairs = _pairs(a, b)
    return math.nan if pairs is None else float(stats.spearmanr(*pairs).statistic)


def spearman_brown(rho: float, factor: float) -> float:
    """The repeatability of an average over `factor` times as many units as gave `rho`. On the
    default activation suite it predicts the measured full B-WR ceiling at 1 to 6 seeds per set
    within 0.01 among non-degenerate members (bench/ceiling_by_seeds.py, docs/benchmarks.md)."""
    return factor * rho / (1 + (factor - 1) * rho)


def noise_ceiling(units_per_hypothesis, seeds_a, seeds_b) -> float:
    """The Spearman of B-WR between two disjoint seed sets of the same hypotheses.

    `units_per_hypothesis`: one [datasets, seeds] matrix per hypothesis (same columns for all);
    `seeds_a`, `seeds_b`: disjoint column indices. No predictor of B-WR measured on one seed set can
    be expected to rank hypotheses better than another measurement of the same ones does.
    """
    seeds_a, seeds_b = list(seeds_a), list(seeds_b)
    if set(seeds_a) & set(seeds_b):
        raise ValueError("the two seed sets must be disjoint")
    mats = [_matrix(u) for u in units_per_hypothesis]
    return spearman([m[:, seeds_a].mean() for m in mats], [m[:, seeds_b].mean() for m in mats])


# Ranking quality: how well a predicted order finds what measurement calls best. `pred` and
# `truth` are scores of the same items, higher meaning better; ties in `pred` keep item order.

def kendall(a, b) -> float:
    """Kendall's tau-b (NaN when either side is constant or there are < 2 pairs)."""
    pairs = _pairs(a, b)
    return math.nan if pairs is None else float(stats.kendalltau(*pairs).statistic)


def _order(pred) -> np.ndarray:
    return np.argsort(-np.asarray(pred, dtype=float), kind="stable")


def true_top(truth, k: int) -> set[int]:
    return set(_order(truth)[:k].tolist())


def precision_at_k(pred, truth, k: int = 10) -> float:
    """Share of the predicted top k that are in the true top k."""
    k = min(k, len(truth))
    return len(set(_order(pred)[:k].tolist()) & true_top(truth, k)) / k if k else math.nan


def ndcg_at_k(pred, truth, k: int = 10) -> float:
    """Normalised discounted cumulative gain of the predicted top k, with gains `truth - min(truth)`
    (the worst item gains nothing, so a B-WR scale of 0.3-0.7 does not flatten the score to ~1)."""
    truth = np.asarray(truth, dtype=float)
    gains = truth - truth.min() if truth.size else truth
    k = min(k, truth.size)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = float(np.sum(np.sort(gains)[::-1][:k] * discount))
    if k == 0 or ideal == 0:
        return math.nan
    return float(np.sum(gains[_order(pred)[:k]] * discount) / ideal)


def evaluations_to_find(pred, truth, top: int = 10, found: int | None = None) -> int:
    """Evaluations, walking the items in predicted order, until `found` (default all) of the true
    top `top` have been evaluated."""
    top = min(top, len(truth))
    found = top if found is None else min(found, top)
    wanted = true_top(truth, top)
    hits = 0
    for position, item in enumerate(_order(pred), start=1):
        hits += item in wanted
        if hits >= found:
            return position
    return len(truth)


def random_evaluations_to_find(n: int, top: int = 10, found: int | None = None) -> float:
    """The expected evaluations in a uniformly random order: the `found`-th of `top` marked items
    among n sits at found * (n + 1) / (top + 1) on average."""
    found = top if found is None else found
    return found * (n + 1) / (top + 1)
