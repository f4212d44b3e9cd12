"""The reward model's learning part: features -> predicted B-WR, an XGBoost ranker or regressor.

Training data are the one-pass evaluations of a kind in MLflow (target: `b_wr`), grouped by round.
Both an `XGBRanker` (pairwise, groups = rounds) and an `XGBRegressor` are fitted; the one with the
better held-out Spearman (leave one round out) is kept. Held-out correlations are reported by round
and by generator.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tracking import names
from .features import structural_matrix

MIN_RUNS = 20  # below this, held-out correlations mean nothing
MIN_GROUPS = 2


class RewardDataError(ValueError):
    """Not enough evaluated runs to train or judge a reward model (a usage error)."""


@dataclass
class Dataset:
    """Evaluated hypotheses of one kind: sources, targets and their groups."""

    kind: str
    sources: list[str]
    shas: list[str]
    b_wr: np.ndarray
    rounds: list[str]
    generators: list[str]

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, mask) -> "Dataset":
        idx = np.flatnonzero(mask)
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return Dataset(self.kind, pick(self.sources), pick(self.shas), self.b_wr[idx],
                       pick(self.rounds), pick(self.generators))


def load_dataset(client, exp_id: str, kind: str, rounds: set[str] | None = None) -> Dataset:
    """Every finished one-pass evaluation of `kind` in the experiment (one per hypothesis)."""
    from ..rounds import hypothesis_runs

    runs = hypothesis_runs(client, exp_id, f"tags.`{names.VARIANT}` = 'one-pass' and "
                                           f"tags.`{names.STATUS}` = 'evaluated'")
    rows, seen = [], set()
    for run in sorted(runs, key=lambda r: r.info.start_time):
        tags, sha = run.data.tags, run.data.tags.get(names.HYPOTHESIS_SHA256)
        round_id = tags.get(names.ROUND_ID, "none")
        if sha in seen or names.B_WR not in run.data.metrics or (rounds and round_id not in rounds):
            continue
        seen.add(sha)
        rows.append(run)
    sources = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(rows):
            path = client.download_artifacts(run.info.run_id, names.HYPOTHESIS_ARTIFACT, f"{tmp}/{i}")
            sources.append(Path(path).read_text())
    return Dataset(kind, sources, [r.data.tags[names.HYPOTHESIS_SHA256] for r in rows],
                   np.array([r.data.metrics[names.B_WR] for r in rows], dtype=np.float32),
                   [r.data.tags.get(names.ROUND_ID, "none") for r in rows],
                   [r.data.tags.get(names.GENERATOR, "unknown") for r in rows])


def check_enough(data: Dataset) -> None:
    if len(data) < MIN_RUNS or len(set(data.rounds)) < MIN_GROUPS:
        raise RewardDataError(
            f"too few evaluated {data.kind} runs to train a reward model: {len(data)} hypotheses in "
            f"{len(set(data.rounds))} round(s); at least {MIN_RUNS} in {MIN_GROUPS} rounds are needed "
            f"(run `mlr-mlflow discover --kind {data.kind}` to make more)")


@dataclass
class Features:
    """Which feature families are used; `matrix` builds them for a list of sources."""

    structural: bool = True
    embedding: bool = True
    grid: bool = True

    def matrix(self, kind: str, sources: list[str], shas: list[str] | None, encoder, sandbox_config=None):
        from .grid import behaviour_matrix

        parts = []
        if self.structural:
            parts.append(structural_matrix(sources))
        if self.grid:
            parts.append(behaviour_matrix(kind, sources, sandbox_config))
        if self.embedding:
            parts.append(encoder.embed(sources, shas))
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(sources), 0), np.float32)


def correlations(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from scipy import stats

    if len(pred) < 3 or np.std(truth) == 0 or np.std(pred) == 0:
        return {"spearman": float("nan"), "kendall": float("nan"), "pearson": float("nan")}
    return {"spearman": float(stats.spearmanr(pred, truth).statistic),
            "kendall": float(stats.kendalltau(pred, truth).statistic),
            "pearson": float(stats.pearsonr(pred, truth).statistic)}


def _groups(keys: list[str]) -> tuple[np.ndarray, list[int]]:
    """Rows ordered by group (XGBRanker wants contiguous groups) and the group sizes."""
    order = np.argsort(np.array(keys), kind="stable")
    sizes, last = [], None
    for i in order:
        if keys[i] != last:
            sizes.append(0)
            last = keys[i]
        sizes[-1] += 1
    return order, sizes


def fit(X: np.ndarray, y: np.ndarray, groups: list[str], algorithm: str, seed: int = 0):
    import xgboost as xgb

    params = dict(n_estimators=300, max_depth=4, learning_rate=0.05, subsample=0.8,
                  colsample_bytree=0.5, random_state=seed, n_jobs=1)
    if algorithm == "ranker":
        order, sizes = _groups(groups)
        # relevance labels: B-WR in [0, 1] scaled to integers 0..20 for the pairwise objective
        model = xgb.XGBRanker(objective="rank:pairwise", **params)
        model.fit(X[order], np.rint(y[order] * 20).astype(int), group=sizes)
        return model
    model = xgb.XGBRegressor(objective="reg:squarederror", **params)
    model.fit(X, y)
    return model


def held_out(X: np.ndarray, data: Dataset, by: str, algorithm: str) -> dict:
    """Leave one group out (by "round" or "generator"): pooled and per-group correlations."""
    keys = data.rounds if by == "round" else data.generators
    pred = np.full(len(data), np.nan)
    per_group = {}
    for group in sorted(set(keys)):
        test = np.array([k == group for k in keys])
        if test.all():  # nothing left to train on
            continue
        model = fit(X[~test], data.b_wr[~test], [r for r, t in zip(data.rounds, test) if not t],
                    algorithm)
        pred[test] = model.predict(X[test])
        per_group[group] = correlations(pred[test], data.b_wr[test])
    mask = ~np.isnan(pred)
    scores = [g["spearman"] for g in per_group.values() if np.isfinite(g["spearman"])]
    return {"pooled": correlations(pred[mask], data.b_wr[mask]), "groups": per_group,
            "mean_spearman": float(np.mean(scores)) if scores else float("nan")}
