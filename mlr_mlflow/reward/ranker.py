"""The reward model's learning part: features -> predicted B-WR, an XGBoost ranker or regressor.

Training data are the one-pass evaluations of a kind in MLflow, grouped by round. The target is a
*validation* number (`selection_target`: `screen_score`, the screening statistic), never the test
split's `b_wr`: the reward model selects, and selection uses validation data only (the test numbers
stay unbiased for reporting). `Dataset.b_wr` (test) is carried for reports, never fitted.
Both an `XGBRanker` (pairwise, groups = rounds) and an `XGBRegressor` are fitted; the one with the
better held-out Spearman on the target (leave one round out) is kept. Held-out correlations are
reported by round and by generator. `Ensemble` (ensemble.py) adds a spread to each score.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..hypothesis import normalized_sha256
from ..tracking import names
from ..tracking.queries import hypothesis_runs
from .features.structural import structural_matrix
from ..config import UsageError

log = logging.getLogger(__name__)

MIN_RUNS = 20  # below this, held-out correlations mean nothing
MIN_GROUPS = 2
MAX_SOURCE_BYTES = 200_000  # ten times the validator's limit on a source


class RewardDataError(UsageError):
    """Not enough evaluated runs to train or judge a reward model (a usage error)."""


@dataclass
class Dataset:
    """Evaluated hypotheses of one kind: sources, targets and their groups.

    target: what the model learns and is selected on (validation, `selection_target`).
    b_wr: the test B-WR, for reports only. picks: the run's `mlr.screen.pick` tag ("explore",
    "reward") or "" when its round was not reward-screened (every valid hypothesis evaluated)."""

    kind: str
    sources: list[str]
    shas: list[str]
    target: np.ndarray
    b_wr: np.ndarray
    rounds: list[str]
    generators: list[str]
    picks: list[str]

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, mask) -> "Dataset":
        idx = np.flatnonzero(mask)
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return Dataset(self.kind, pick(self.sources), pick(self.shas), self.target[idx],
                       self.b_wr[idx], pick(self.rounds), pick(self.generators), pick(self.picks))

    def unbiased(self) -> np.ndarray:
        """Mask of the hypotheses no reward model chose: rounds evaluated without reward screening,
        and the random exploration picks of screened rounds (an unbiased sample for judging one)."""
        return np.array([p in ("", "explore") for p in self.picks], dtype=bool)


TARGET = "screen_score (evaluate.screen), else the mean of val_b_wr and val_bsota_wr"


def selection_target(metrics: dict) -> float | None:
    """The reward model's target: the screening statistic `screen_score`, the validation number that
    best predicts fresh full training (docs/benchmarks.md, "The instrument"). Runs from before it
    existed fall back to the mean of validation B-WR and BSOTA-WR (same [0, 1] scale); runs with no
    validation numbers at all give None and are not learned from rather than fall back to test
    numbers."""
    screen = metrics.get(names.SCREEN_SCORE)
    if screen is not None:
        return float(screen)
    b, bsota = metrics.get(names.VAL_B_WR), metrics.get(names.VAL_BSOTA_WR)
    if b is None:
        return None
    return float(b) if bsota is None else 0.5 * (float(b) + float(bsota))


def load_dataset(client, exp_id: str, kind: str, rounds: set[str] | None = None) -> Dataset:
    """Every finished one-pass evaluation of `kind` in the experiment (one per hypothesis)."""
    runs = hypothesis_runs(client, exp_id, f"tags.`{names.VARIANT}` = 'one-pass' and "
                                           f"tags.`{names.STATUS}` = 'evaluated'")
    rows, seen = [], set()
    for run in sorted(runs, key=lambda r: r.info.start_time):
        tags, sha = run.data.tags, run.data.tags.get(names.HYPOTHESIS_SHA256)
        round_id = tags.get(names.ROUND_ID, "none")
        if sha in seen or names.B_WR not in run.data.metrics or (rounds and round_id not in rounds):
            continue
        if selection_target(run.data.metrics) is None:
            log.info("reward: run %s left out: it has no validation win rates", run.info.run_id)
            continue
        seen.add(sha)
        rows.append(run)
    sources, kept = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(rows):
            path = Path(client.download_artifacts(run.info.run_id, names.HYPOTHESIS_ARTIFACT, f"{tmp}/{i}"))
            if path.stat().st_size > MAX_SOURCE_BYTES:  # no hypothesis is this long: not parsed at all
                log.warning("reward: run %s left out: its hypothesis.py is %d bytes", run.info.run_id,
                            path.stat().st_size)
                continue
            source = path.read_text(errors="replace")
            # The artifact must be the code that was evaluated: one changed in the store since
            # (its normalised hash no longer the run's tag) is left out, never learned from or run.
            if normalized_sha256(source) != run.data.tags[names.HYPOTHESIS_SHA256]:
                log.warning("reward: run %s left out: its hypothesis.py does not match its %s tag",
                            run.info.run_id, names.HYPOTHESIS_SHA256)
                continue
            sources.append(source)
            kept.append(run)
    rows = kept
    return Dataset(kind, sources, [r.data.tags[names.HYPOTHESIS_SHA256] for r in rows],
                   np.array([selection_target(r.data.metrics) for r in rows], dtype=np.float32),
                   np.array([r.data.metrics[names.B_WR] for r in rows], dtype=np.float32),
                   [r.data.tags.get(names.ROUND_ID, "none") for r in rows],
                   [r.data.tags.get(names.GENERATOR, "unknown") for r in rows],
                   [r.data.tags.get(names.SCREEN_PICK, "") for r in rows])


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
    probes: bool = False  # probes.py; False for versions saved before it existed

    def matrix(self, kind: str, sources: list[str], shas: list[str] | None, encoder, sandbox_config=None):
        """The feature matrix (rows that could not be measured hold NaN behaviour: see `measure`)."""
        return self.measure(kind, sources, shas, encoder, sandbox_config)[0]

    def measure(self, kind: str, sources: list[str], shas: list[str] | None, encoder,
                sandbox_config=None, limits=None, budget=None):
        """(feature matrix, unmeasured): `unmeasured[i]` is why row i's behaviour could not be
        measured (time: `rows`), else None. Such a row must not be scored or learned from."""
        from .features.grid import behaviour_rows

        parts, unmeasured = [], [None] * len(sources)

        def note(found: list) -> None:
            for i, reason in enumerate(found):
                unmeasured[i] = unmeasured[i] or reason

        if self.structural:
            parts.append(structural_matrix(sources))
        if self.grid:
            block, found = behaviour_rows(kind, sources, sandbox_config, limits, budget)
            parts.append(block)
            note(found)
        if self.probes:
            from .features.probes import probe_rows

            block, found = probe_rows(kind, sources, sandbox_config, limits, budget)
            parts.append(block)
            note(found)
        if self.embedding:
            parts.append(encoder.embed(sources, shas))
        X = np.concatenate(parts, axis=1) if parts else np.zeros((len(sources), 0), np.float32)
        return X, unmeasured


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


def held_out(X: np.ndarray, data: Dataset, by: str, algorithm: str, truth: str = "target") -> dict:
    """Leave one group out (by "round" or "generator"): pooled and per-group correlations of the
    predictions with `truth` ("target": the validation target, what selection may use; "b_wr": the
    test B-WR, for reports only). The models always learn the target."""
    keys = data.rounds if by == "round" else data.generators
    measured = data.target if truth == "target" else data.b_wr
    pred = np.full(len(data), np.nan)
    per_group = {}
    for group in sorted(set(keys)):
        test = np.array([k == group for k in keys])
        if test.all():  # nothing left to train on
            continue
        model = fit(X[~test], data.target[~test], [r for r, t in zip(data.rounds, test) if not t],
                    algorithm)
        pred[test] = model.predict(X[test])
        per_group[group] = correlations(pred[test], measured[test])
    mask = ~np.isnan(pred)
    scores = [g["spearman"] for g in per_group.values() if np.isfinite(g["spearman"])]
    return {"pooled": correlations(pred[mask], measured[mask]), "groups": per_group,
            "mean_spearman": float(np.mean(scores)) if scores else float("nan")}
