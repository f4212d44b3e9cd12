"""Reviewed hypotheses and the reward model: drop the rejected ones, or keep them as hard negatives?

    python bench/review_negatives.py [--tracking-uri URI] [--json]

A small real pool (bench/reward_pool.py: symbolic rounds, hand-written and literature activations,
each evaluated one-pass and trained in full). Reviewers are simulated by the rule the review queue
flags as suspicious, a disagreement between the rungs: a hypothesis in the top third of its
group by the one-pass validation target (what screening sees) whose full-training B-WR falls below
the pool's median is rejected as a shortcut (its cheap number did not hold up).

Leave one group out (round, or source): the reward model is fitted on the other groups with the
rejected hypotheses treated (`drop` or `negative`, reward/reviewed.py), and predicts the held-out
group. Reported, pooled over the held-out groups and five model seeds:
- `spearman_clean`: Spearman of the predictions with full B-WR on the hypotheses not rejected;
- `rejected_in_top`: the share of rejected hypotheses among each group's top quarter by prediction
  (what a reward-screened round would pick), against the share among all (`rejected_share`);
- `top_full_b_wr`: the mean full B-WR of those picks, a rejected pick counted as 0 (worth nothing).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import reward_pool  # noqa: E402
from reward_pool import PoolSpec, aligned, build, metric_by_sha  # noqa: E402


def bench_config(spec: PoolSpec):
    """reward_pool's, without semantic dedup (its fingerprinting calls time out on a busy machine;
    the pool only needs evaluated hypotheses)."""
    from mlr_mlflow.config import with_overrides

    return with_overrides(_POOL_CONFIG(spec), discover={"dedup": False})


_POOL_CONFIG, reward_pool.bench_config = reward_pool.bench_config, bench_config

SPEC = PoolSpec(rounds=4, round_size=10, handwritten=10, literature=6, datasets=("iris", "moons"),
                seeds=2, full=True, ceiling=False)
SEEDS = 5


def simulated_rejections(data, full: np.ndarray) -> set[str]:
    median = np.nanmedian(full)
    out = set()
    for group in set(data.rounds):
        idx = [i for i, r in enumerate(data.rounds) if r == group]
        cut = np.quantile(data.target[idx], 2 / 3)
        out.update(data.shas[i] for i in idx if data.target[i] >= cut and full[i] < median)
    return out


def measure(X, data, full, rejected, treatment, algorithm) -> dict:
    from mlr_mlflow.reward.ranker import correlations, fit
    from mlr_mlflow.reward.reviewed import apply

    hit = np.array([s in rejected for s in data.shas])
    spear, in_top, top_full = [], [], []
    for seed in range(SEEDS):
        pred = np.full(len(data), np.nan)
        picks = []
        for group in sorted(set(data.rounds)):
            test = np.array([r == group for r in data.rounds])
            train = data.subset(~test)
            if treatment != "none":
                train = apply(train, rejected, treatment)
            keep = np.array([s in set(train.shas) for s in data.shas]) & ~test
            model = fit(X[keep], train.target, train.rounds, algorithm, seed=seed)
            pred[test] = model.predict(X[test])
            idx = np.flatnonzero(test)
            k = max(1, len(idx) // 4)
            picks.extend(idx[np.argsort(-pred[idx], kind="stable")[:k]].tolist())
        clean = ~hit & np.isfinite(full)
        spear.append(correlations(pred[clean], full[clean])["spearman"])
        in_top.append(float(np.mean(hit[picks])))
        top_full.append(float(np.mean([0.0 if hit[i] else full[i] for i in picks])))
    return {"spearman_clean": float(np.mean(spear)), "rejected_in_top": float(np.mean(in_top)),
            "top_full_b_wr": float(np.mean(top_full))}


def run(uri: str) -> dict:
    from mlr_mlflow.reward.features.embed import DEFAULT_ENCODER, Encoder
    from mlr_mlflow.reward.ranker import Features, load_dataset
    from mlr_mlflow.tracking import connect, experiment_id

    client = connect(uri)
    config = bench_config(SPEC)
    name = config.experiment_name("activation")
    data = load_dataset(client, experiment_id(client, name), "activation")
    full = aligned(data.shas, metric_by_sha(client, name, "full", "b_wr"))
    X, unmeasured = Features(structural=True, grid=True, probes=True, embedding=False).measure(
        "activation", data.sources, data.shas, Encoder(DEFAULT_ENCODER), config.sandbox)
    keep = np.array([u is None for u in unmeasured]) & np.isfinite(full)
    X, data, full = X[keep], data.subset(keep), full[keep]
    rejected = simulated_rejections(data, full)
    out = {"n": len(data), "groups": len(set(data.rounds)), "rejected": len(rejected),
           "rejected_share": len(rejected) / len(data)}
    for algorithm in ("regressor", "ranker"):
        for treatment in ("none", "drop", "negative"):  # none: rejected ones learned as measured
            out[f"{algorithm}.{treatment}"] = measure(X, data, full, rejected, treatment, algorithm)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    uri = args.tracking_uri
    if uri is None:
        where = tempfile.mkdtemp(prefix="review-negatives-")
        uri = f"sqlite:///{where}/mlflow.db"
        build(uri, SPEC)
    elif not Path(uri.removeprefix("sqlite:///")).exists():
        build(uri, SPEC)
    out = run(uri)
    print(json.dumps(out, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
