"""Screening a round's hypotheses with the champion reward model, with diversity and exploration.

Selection (the seed paper's pruning, minus its "reward collapse"): `explore` picks are drawn at
random first (so the model keeps learning outside its own preferences), the rest by maximal marginal
relevance on the encoder's embeddings: each next pick maximises
    lam * normalised score - (1 - lam) * max cosine similarity to what is already picked,
so near-duplicates of a pick lose to a slightly lower-scored different idea. The selection's mean
pairwise cosine similarity is logged per round, so a collapse is visible in MLflow.
"""
from __future__ import annotations

import random

import numpy as np


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


def decide(champion, valid: list, top_k: int, explore: float, lam: float, seed: int) -> dict:
    """The screening decision of a round, JSON-able (a round saves it as selection.json before it
    trains anything): scores of the valid hypotheses and the picks, by sha256."""
    import pandas as pd

    decision = {"model_run_id": getattr(champion.metadata, "run_id", "") or "", "scores": {},
                "picks": [], "explored": [], "metrics": {}}
    if not valid:
        return decision
    sources = [h.source for h in valid]
    scores = np.asarray(champion.predict(pd.DataFrame({"code": sources})), dtype=float)
    finite = scores[np.isfinite(scores)]  # NaN: the model found no valid hypothesis there; last
    scores = np.where(np.isfinite(scores), scores, finite.min() - 1.0 if finite.size else 0.0)
    vectors = champion.unwrap_python_model().embed(sources)
    picks, explored = select(scores, vectors, top_k, explore, lam, seed=seed)
    shas = [h.sha256 for h in valid]
    decision.update(scores={sha: float(x) for sha, x in zip(shas, scores)},
                    picks=[shas[j] for j in picks], explored=[shas[j] for j in explored],
                    metrics={"selection_mean_similarity": mean_pairwise_similarity(vectors[picks])
                             if len(picks) > 1 else None,
                             "pool_mean_similarity": mean_pairwise_similarity(vectors)})
    return decision
