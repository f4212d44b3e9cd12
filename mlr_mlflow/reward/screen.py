"""Screening a round's hypotheses with the champion reward model, with diversity and exploration.

Selection (the seed paper's pruning, minus its "reward collapse"): `explore` picks are drawn at
random first (so the model keeps learning outside its own preferences), the rest by maximal marginal
relevance on the encoder's embeddings: each next pick maximises
    lam * normalised score - (1 - lam) * max cosine similarity to what is already picked,
so near-duplicates of a pick lose to a slightly lower-scored different idea. The selection's mean
pairwise cosine similarity is logged per round, so a collapse is visible in MLflow.

Acquisition: a champion with a bootstrap ensemble (ensemble.py) gives each score a spread; the MMR
relevance is then `ensemble.acquisition` of (score, spread): UCB (score + beta * spread, default
beta 1) or Thompson sampling, so a hypothesis the model is unsure about gets a chance over one it
is sure is mediocre. Within a round, `rescore` refits the champion's ensemble on the evaluations
that have arrived and scores the rest again (for successive halving: screen, evaluate a share,
rescore, evaluate the next share).
"""
from __future__ import annotations

import random

import numpy as np

from .ensemble import acquisition


def load_champion(client, kind: str):
    """The champion pyfunc of `kind` in the client's registry, or None when there is none yet."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from ..tracking.fluent import fluent_store
    from .registry import model_name

    try:
        with fluent_store(client.tracking_uri):  # models:/ URIs resolve through the fluent registry
            return mlflow.pyfunc.load_model(f"models:/{model_name(kind)}@champion")
    except MlflowException:
        return None


def mmr(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float = 0.5,
        chosen: list[int] | None = None) -> list[int]:
    """Indices of k picks in all (`chosen` first, then by maximal marginal relevance)."""
    chosen = list(chosen or [])
    span = float(scores.max() - scores.min()) if len(scores) else 0.0
    norm = (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)
    sims = vectors @ vectors.T if vectors.ndim == 2 and vectors.shape[1] else np.zeros((len(scores),) * 2)
    while len(chosen) < min(k, len(scores)):
        rest = [i for i in range(len(scores)) if i not in chosen]
        value = [lam * norm[i] - (1 - lam) * max((sims[i, j] for j in chosen), default=0.0)
                 for i in rest]
        chosen.append(rest[int(np.argmax(value))])
    return chosen


def mean_pairwise_similarity(vectors: np.ndarray) -> float | None:
    if len(vectors) < 2 or not vectors.shape[1]:
        return None
    sims = vectors @ vectors.T
    upper = sims[np.triu_indices(len(vectors), k=1)]
    return float(upper.mean())


def select(scores: np.ndarray, vectors: np.ndarray, k: int, explore: float, lam: float,
           seed: int) -> tuple[list[int], list[int]]:
    """(all picks, the random exploration picks among them)."""
    n = len(scores)
    k = min(k, n)
    n_explore = min(k, int(round(k * explore))) if n > k else 0
    rng = random.Random(seed)
    explored = rng.sample(range(n), n_explore) if n_explore else []
    return mmr(scores, vectors, k, lam, chosen=explored), explored


def _score_with_spread(champion, sources: list[str]) -> tuple[np.ndarray, np.ndarray]:
    model = champion.unwrap_python_model()
    if hasattr(model, "score_with_spread"):
        return model.score_with_spread(sources)
    import pandas as pd  # a champion saved before ensembles: its point score, no spread

    return np.asarray(champion.predict(pd.DataFrame({"code": sources})), float), np.zeros(len(sources))


def decide(champion, valid: list, top_k: int, explore: float, lam: float, seed: int,
           rule: str = "ucb", beta: float = 1.0, exclude: set[str] | None = None) -> dict:
    """The screening decision of a round, JSON-able (a round saves it as selection.json before it
    trains anything), by sha256 of the valid hypotheses (`Hypothesis` objects):
    "scores" (the ensemble's mean, standardised; higher = better), "spreads" (its standard
    deviation), "picks" (top_k: the random `explore` share, then MMR on the acquisition value),
    "explored" (the random picks), "acquisition" ({"rule", "beta"}), "metrics" (diversity).
    `rule` is "ucb" (score + beta * spread), "thompson" or "mean"; hypotheses whose sha256 is in
    `exclude` (already evaluated this round) are scored but never picked."""
    decision = {"model_run_id": getattr(champion.metadata, "run_id", "") or "", "scores": {},
                "spreads": {}, "picks": [], "explored": [], "metrics": {},
                "acquisition": {"rule": rule, "beta": beta}}
    if not valid:
        return decision
    sources = [h.source for h in valid]
    scores, spreads = _score_with_spread(champion, sources)
    finite = np.isfinite(scores)  # NaN: the model found no valid hypothesis there; ranked last
    scores = np.where(finite, scores, scores[finite].min() - 1.0 if finite.any() else 0.0)
    spreads = np.where(np.isfinite(spreads), spreads, 0.0)
    shas = [h.sha256 for h in valid]
    decision.update(scores={sha: float(x) for sha, x in zip(shas, scores)},
                    spreads={sha: float(x) for sha, x in zip(shas, spreads)})
    open_ = [j for j, sha in enumerate(shas) if sha not in (exclude or set())]
    if not open_:
        return decision
    value = acquisition(scores[open_], spreads[open_], rule, beta, seed)
    vectors = champion.unwrap_python_model().embed([sources[j] for j in open_])
    local, explored_local = select(value, vectors, top_k, explore, lam, seed=seed)
    picks, explored = [open_[j] for j in local], [open_[j] for j in explored_local]
    vectors_all = champion.unwrap_python_model().embed(sources)
    decision.update(picks=[shas[j] for j in picks], explored=[shas[j] for j in explored],
                    metrics={"selection_mean_similarity": mean_pairwise_similarity(vectors_all[picks])
                             if len(picks) > 1 else None,
                             "pool_mean_similarity": mean_pairwise_similarity(vectors_all)})
    return decision


def rescore(champion, evaluated: list, targets, pending: list, k: int, explore: float = 0.0,
            lam: float = 0.5, seed: int = 0, rule: str = "ucb", beta: float = 1.0) -> dict:
    """Within a round: refit the champion's ensemble (in memory) on the hypotheses `evaluated` so
    far with their validation targets (`ranker.selection_target` of their metrics), then `decide`
    the next `k` among `pending`. Returns `decide`'s dictionary. A champion without an ensemble is
    not refitted (its scores stay as they were)."""
    model = champion.unwrap_python_model()
    if evaluated and getattr(model, "ensemble", None) is not None:
        model.refit([h.source for h in evaluated], targets)
    return decide(champion, pending, k, explore, lam, seed, rule=rule, beta=beta)
