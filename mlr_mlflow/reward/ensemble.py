"""A bootstrap ensemble of the reward model, so that every score comes with a spread.

Each member is the kept algorithm (ranker or regressor, `ranker.fit`) fitted on a bootstrap resample
of the training rows (with a different seed). A ranker's scores have no fixed scale, so each member's
output is standardised by the mean and standard deviation of its own predictions on the training
rows; the ensemble's score is the members' mean, its spread their standard deviation, both in those
units. Where training data are dense the members agree (small spread); where a hypothesis looks like
little that was seen, resamples disagree (large spread): what UCB and Thompson sampling act on.

`refit` grows the training data with evaluations that arrive during a round and fits again: the
round's own results count most (`recent_weight`), since they come from the current generator.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ranker import fit

MEMBERS = 8


@dataclass
class Ensemble:
    """Fitted members and their standardisation; the training rows are kept for `refit`."""

    algorithm: str
    members: list = field(default_factory=list)
    centres: list[float] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    groups: list[str] = field(default_factory=list)
    weights: np.ndarray | None = None

    def member_scores(self, X: np.ndarray) -> np.ndarray:
        """[members, rows] standardised scores."""
        return np.stack([(m.predict(X) - c) / s for m, c, s in zip(self.members, self.centres, self.scales)])

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score, spread) per row: the members' mean and standard deviation."""
        scores = self.member_scores(X)
        return scores.mean(0), scores.std(0)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for i, member in enumerate(self.members):
            member.save_model(str(directory / f"member_{i}.json"))
        np.savez(directory / "training.npz", X=self.X, y=self.y,
                 weights=self.weights if self.weights is not None else np.ones(len(self.y)))
        (directory / "ensemble.json").write_text(json.dumps({
            "algorithm": self.algorithm, "centres": self.centres, "scales": self.scales,
            "groups": self.groups, "members": len(self.members)}))

    @classmethod
    def load(cls, directory: str | Path) -> "Ensemble":
        import xgboost as xgb

        directory = Path(directory)
        meta = json.loads((directory / "ensemble.json").read_text())
        members = []
        for i in range(meta["members"]):
            member = xgb.XGBRanker() if meta["algorithm"] == "ranker" else xgb.XGBRegressor()
            member.load_model(str(directory / f"member_{i}.json"))
            members.append(member)
        data = np.load(directory / "training.npz")
        return cls(meta["algorithm"], members, meta["centres"], meta["scales"], data["X"], data["y"],
                   meta["groups"], data["weights"])


def fit_ensemble(X: np.ndarray, y: np.ndarray, groups: list[str], algorithm: str,
                 members: int = MEMBERS, seed: int = 0, weights: np.ndarray | None = None) -> Ensemble:
    """`members` bootstrap fits of `algorithm` on (X, y); rows drawn with probability ~ `weights`."""
    rng = np.random.default_rng(seed)
    n = len(y)
    p = None if weights is None else np.asarray(weights, float) / float(np.sum(weights))
    ensemble = Ensemble(algorithm, X=np.asarray(X, np.float32), y=np.asarray(y, np.float32),
                        groups=list(groups), weights=None if weights is None else np.asarray(weights))
    for i in range(members):
        rows = np.sort(rng.choice(n, size=n, replace=True, p=p))
        model = fit(X[rows], y[rows], [groups[j] for j in rows], algorithm, seed=seed + i)
        train_scores = model.predict(X)
        ensemble.members.append(model)
        ensemble.centres.append(float(np.mean(train_scores)))
        ensemble.scales.append(float(np.std(train_scores)) or 1.0)
    return ensemble


def refit(ensemble: Ensemble, X_new: np.ndarray, y_new: np.ndarray, group: str = "current",
          recent_weight: float = 2.0, seed: int = 0) -> Ensemble:
    """A new ensemble fitted on the old training rows plus (X_new, y_new), the evaluations that
    arrived in this round (their validation targets, `ranker.selection_target`), as one group.
    New rows are drawn `recent_weight` times as often as old ones in the bootstrap. The old
    ensemble is left as it was."""
    X_new, y_new = np.asarray(X_new, np.float32), np.asarray(y_new, np.float32)
    if not len(y_new):
        return ensemble
    old_w = ensemble.weights if ensemble.weights is not None else np.ones(len(ensemble.y))
    X = np.concatenate([ensemble.X, X_new]) if ensemble.X is not None else X_new
    y = np.concatenate([ensemble.y, y_new]) if ensemble.y is not None else y_new
    weights = np.concatenate([old_w, np.full(len(y_new), recent_weight)])
    return fit_ensemble(X, y, ensemble.groups + [group] * len(y_new), ensemble.algorithm,
                        members=len(ensemble.members), seed=seed, weights=weights)


def acquisition(score: np.ndarray, spread: np.ndarray, rule: str = "ucb", beta: float = 1.0,
                seed: int = 0) -> np.ndarray:
    """The value a selection ranks by: "ucb" score + beta * spread (optimism where unsure),
    "thompson" one draw from N(score, spread^2) per hypothesis, "mean" the score alone."""
    if rule == "mean":
        return np.asarray(score, float)
    if rule == "ucb":
        return np.asarray(score, float) + beta * np.asarray(spread, float)
    if rule == "thompson":
        score, spread = np.asarray(score, float), np.asarray(spread, float)
        return score + spread * np.random.default_rng(seed).standard_normal(len(score))
    raise ValueError(f"unknown acquisition rule {rule!r} (ucb, thompson or mean)")
