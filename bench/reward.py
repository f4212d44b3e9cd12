"""How well the reward model ranks hypotheses it was not trained on, and what that buys a round.

    python bench/reward.py [--tracking-uri URI] [--rounds 8] [--json]
    python bench/reward.py --quick --json      # a tiny pool, for tests (iris, 2 seeds)

Data (bench/reward_pool.py): symbolic rounds and hand-written activations as training sources, a
held-out source of named activations from the literature (never trained on), each hypothesis
evaluated one-pass, trained in full, and evaluated one-pass again on disjoint seeds. With no store
given, the pool is built in a temporary directory.

Reported for the default features (structural + grid) and each algorithm, from out-of-sample
predictions (reward/measure.py):
- by round (leave the round out) and by source (train on the other training sources; the held-out
  source on all of them): Spearman and Kendall;
- against full-training B-WR (what a round is after): NDCG@10, precision@10, evaluations to find
  the true top 10 (and 9, 8) as a fraction of a random order's; the same against one-pass B-WR;
- the Spearman of one-pass against full B-WR, and the noise ceiling (one-pass B-WR on two disjoint
  seed sets of the same hypotheses); with `--truth-again`, the truth's own ceiling (full B-WR on
  the disjoint seeds) and how that second draw, as an order, finds the first draw's top 10;
- a quarter of the cost of training everything in full, spent three ways (round/halving.py's costs):
  reward screen -> one-pass -> full on the best 1/eta; one-pass on all -> full; reward -> full.
  How many of the true top 10 (by full B-WR) got a full training;
- `[discover] waves` simulated on the pool (`waves_simulation`): per round, 1, 2 or 3 waves of
  picks with the ensemble refitted between them; how many of the round's true top-k got a full
  training.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from reward_pool import HELD_OUT, PoolSpec, aligned, bench_config, build, metric_by_sha  # noqa: E402

FAMILIES = {"structural": ("structural",), "grid": ("grid",), "embedding": ("embedding",),
            "structural+grid": ("structural", "grid"), "all": ("structural", "grid", "embedding"),
            "probes": ("probes",), "structural+grid+probes": ("structural", "grid", "probes")}
QUICK = PoolSpec(rounds=2, round_size=6, handwritten=6, literature=6, datasets=("iris",), seeds=2)


def budget_strategies(pred, onepass_val, full, budget: float, max_epochs: int, eta: int,
                      top: int = 10) -> dict:
    """Spend `budget` full-training equivalents; how many of the true top `top` (by full B-WR) get
    trained in full? A one-pass evaluation costs 1 / max_epochs, reward screening nothing."""
    n = len(full)
    truth = set(np.argsort(-full, kind="stable")[:top].tolist())
    by_pred = np.argsort(-pred, kind="stable")
    c = 1.0 / max_epochs

    def promoted(candidates, k):
        ranked = sorted(candidates, key=lambda i: (-onepass_val[i], i))
        return set(ranked[:k])

    m = min(n, int(budget // (c + 1.0 / eta)))  # one-pass share; full = m / eta
    halving = promoted(by_pred[:m].tolist(), m // eta)
    k_all = max(0, min(n, int(budget - n * c)))
    onepass_all = promoted(range(n), k_all)
    reward_only = set(by_pred[:min(n, int(budget))].tolist())
    return {"budget_full_equivalents": round(budget, 2), "pool": n, "top": top, "strategies": {
        f"reward -> one-pass {m} -> full {m // eta} (eta {eta})": len(halving & truth),
        f"one-pass all {n} -> full {k_all}": len(onepass_all & truth),
        f"reward -> full {min(n, int(budget))}": len(reward_only & truth)}}


def waves_simulation(X, data, full, algorithm: str, top_k: int, eta: int,
                     waves_list=(1, 2, 3), beta: float = 1.0) -> dict:
    """What `[discover] waves` buys, on the pool (no training: every number is already known).

    Each test group (a round of the training sources; the held-out source as one group) plays a
    round: an ensemble fitted on the training sources outside the group picks `eta * top_k` of the
    group by UCB (score + beta * spread) in W waves, refitted before each later wave on the
    validation targets of what it picked so far (halving.next_wave; no MMR or exploration here); the
    best `top_k` picks by validation target go to full training. Per W: how many of each group's
    true top_k by full B-WR got a full training (summed over groups), and the mean full B-WR of
    what was trained in full."""
    from mlr_mlflow.reward.ensemble import acquisition, fit_ensemble, refit

    held = np.array([g == HELD_OUT for g in data.generators])
    rounds = np.array(data.rounds)
    usable = np.isfinite(data.target) & np.isfinite(full)
    groups = [(r, (rounds == r) & ~held & usable) for r in sorted(set(rounds[~held]))]
    groups.append((HELD_OUT, held & usable))
    out = {W: {"true_top_in_full": 0, "full_b_wr": []} for W in waves_list}
    possible = 0
    for name, test in groups:
        idx = np.flatnonzero(test)
        train = ~held & ~(rounds == name) & usable
        k = min(top_k, len(idx))
        share = min(len(idx), eta * top_k)
        if k == 0 or share <= k or train.sum() < 10:
            continue
        truth = set(idx[np.argsort(-full[idx], kind="stable")[:k]].tolist())
        possible += k
        base = fit_ensemble(X[train], data.target[train], [str(r) for r in rounds[train]], algorithm)
        for W in waves_list:
            ensemble, picked = base, []
            bounds = [round(i * share / W) for i in range(W + 1)]
            for size in (b - a for a, b in zip(bounds, bounds[1:])):
                if picked:
                    ensemble = refit(base, X[picked], data.target[picked])
                rest = np.array([i for i in idx if i not in set(picked)])
                score, spread = ensemble.predict(X[rest])
                value = acquisition(score, spread, "ucb", beta)
                picked += rest[np.argsort(-value, kind="stable")[:size]].tolist()
            promoted = sorted(picked, key=lambda i: (-data.target[i], i))[:k]
            out[W]["true_top_in_full"] += len(truth & set(promoted))
            out[W]["full_b_wr"] += full[promoted].tolist()
    return {"top_k": top_k, "eta": eta, "possible": possible, "algorithm": algorithm,
            "by_waves": {str(W): {"true_top_in_full": v["true_top_in_full"],
                                  "mean_full_b_wr": _r(np.mean(v["full_b_wr"])) if v["full_b_wr"] else None}
                         for W, v in out.items()}}


def measure(client, config, algorithms, families) -> dict:
    from mlr_mlflow.reward.features.embed import Encoder
    from mlr_mlflow.reward.measure import by_round, by_source, discovery, out_of_sample
    from mlr_mlflow.reward.ranker import Features, load_dataset
    from mlr_mlflow.stats import spearman
    from mlr_mlflow.tracking import experiment_id

    exp_name = config.experiment_name("activation")
    data = load_dataset(client, experiment_id(client, exp_name), "activation")
    full = aligned(data.shas, metric_by_sha(client, exp_name, "full", "b_wr"))
    val = aligned(data.shas, metric_by_sha(client, exp_name, "one-pass", "val_b_wr"))
    again = aligned(data.shas, metric_by_sha(client, "ceiling-activation", "one-pass", "b_wr"))
    full_again = aligned(data.shas, metric_by_sha(client, "ceiling-activation", "full", "b_wr"))
    onepass = data.b_wr.astype(float)
    both = np.isfinite(full)
    ceil = np.isfinite(again)
    result = {"n": len(data), "rounds": len(set(data.rounds)), "sources": sorted(set(data.generators)),
              "held_out_source": HELD_OUT, "full_trained": int(both.sum()),
              "onepass_full_spearman": _r(spearman(onepass[both], full[both])),
              "onepass_val_full_spearman": _r(spearman(val[both], full[both])),
              "noise_ceiling": _r(spearman(onepass[ceil], again[ceil])), "models": {}}
    twice = both & np.isfinite(full_again)
    result["truth_noise_ceiling"] = _r(spearman(full[twice], full_again[twice])) if twice.sum() >= 3 else None
    # what no reward model is needed for: the cheap rung's own orders against the same truth (a model
    # that predicted the screen perfectly would find the top 10 as the screen does)
    target = np.asarray(data.target, float)
    result["reference_orders"] = {
        name: discovery(order[both & np.isfinite(order)], full[both & np.isfinite(order)])
        for name, order in (("one_pass_b_wr", onepass), ("one_pass_screen", target), ("one_pass_val_b_wr", val),
                            ("full_b_wr_other_seeds", full_again))
        if (both & np.isfinite(order)).sum() >= 10}
    encoder = Encoder()
    for family in families:
        flags = {name: name in FAMILIES[family] for name in ("structural", "grid", "embedding", "probes")}
        X = Features(**flags).matrix("activation", data.sources, data.shas, encoder, config.sandbox)
        for algorithm in algorithms:
            pred = out_of_sample(X, data, algorithm, (HELD_OUT,))
            ok = np.isfinite(pred) & both
            whole = ok.sum() >= max(10, 0.9 * np.isfinite(pred).sum())  # truth needs the whole pool
            entry = {"by_round": by_round(pred, data, (HELD_OUT,)),
                     "by_source": by_source(X, data, algorithm, (HELD_OUT,)),
                     "vs_full": discovery(pred[ok], full[ok]) if whole else None,
                     "vs_one_pass": discovery(pred[np.isfinite(pred)], onepass[np.isfinite(pred)])}
            if whole:
                entry["quarter_budget"] = budget_strategies(
                    pred[ok], np.nan_to_num(val[ok], nan=0.0), full[ok], ok.sum() / 4,
                    config.model.max_epochs, config.discover.eta)
                entry["waves"] = waves_simulation(X, data, full, algorithm, config.discover.top_k,
                                                  config.discover.eta)
            result["models"][f"{family}/{algorithm}"] = entry
    return result


def headline(result: dict, model: str) -> dict:
    """CONTRACT.md's keys, from one model's entry."""
    entry = result["models"][model]
    truth = entry["vs_full"] or entry["vs_one_pass"]
    sources = {s: v["spearman"] for s, v in entry["by_source"].items()}
    held = sources.get(HELD_OUT)
    ceiling = result["noise_ceiling"]
    return {"model": model, "truth": "full" if entry["vs_full"] else "one-pass",
            "top10_fraction_of_random": truth["find_10_of_top10"]["fraction_of_random"]
            if "find_10_of_top10" in truth else None,
            "top9_fraction_of_random": (truth.get("find_9_of_top10") or {}).get("fraction_of_random"),
            "top8_fraction_of_random": (truth.get("find_8_of_top10") or {}).get("fraction_of_random"),
            "by_round_spearman": entry["by_round"]["spearman"],
            "by_round_kendall": entry["by_round"]["kendall"],
            "by_source_spearman": sources,
            "by_source_kendall": {s: v["kendall"] for s, v in entry["by_source"].items()},
            "held_out_share_of_ceiling": _r(held / ceiling) if held is not None and ceiling else None,
            "ndcg_at_10": truth.get("ndcg_at_10"), "precision_at_10": truth.get("precision_at_10"),
            "quarter_budget": entry.get("quarter_budget")}


def _r(x):
    return None if x is None or not math.isfinite(x) else round(float(x), 3)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default=None, help="a store with the evaluated pool")
    parser.add_argument("--quick", action="store_true", help="a tiny pool (tests)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--round-size", type=int, default=32)
    parser.add_argument("--handwritten", type=int, default=64)
    parser.add_argument("--literature", type=int, default=32)
    parser.add_argument("--datasets", default="", help="comma-separated; default: the default suite")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--families", default="structural+grid")
    parser.add_argument("--algorithms", default="regressor,ranker")
    parser.add_argument("--keep", default=None, help="build the store in this directory and keep it")
    parser.add_argument("--truth-again", action="store_true",
                        help="also train the pool in full on disjoint seeds: the truth's own ceiling")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from mlr_mlflow.tracking import connect

    spec = QUICK if args.quick else PoolSpec(
        args.rounds, args.round_size, args.handwritten, args.literature,
        tuple(d for d in args.datasets.split(",") if d), args.seeds)
    spec = replace(spec, truth_again=args.truth_again)
    config = bench_config(spec)
    tmp, uri, cwd = None, args.tracking_uri, os.getcwd()
    if not uri:
        where = args.keep or (tmp := tempfile.TemporaryDirectory(prefix="mlr-reward-bench-")).name
        os.makedirs(where, exist_ok=True)
        os.chdir(where)
        uri = f"sqlite:///{os.path.abspath(where)}/mlflow.db"
        start = time.perf_counter()
        build(uri, spec)
        print(f"built the pool in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    try:
        result = measure(connect(uri), config, args.algorithms.split(","), args.families.split(","))
        result.update(headline(result, next(iter(result["models"]))))
    finally:
        os.chdir(cwd)
        if tmp is not None:
            tmp.cleanup()
    print(f"{result['n']} hypotheses, sources {result['sources']} ({HELD_OUT} held out), "
          f"{result['full_trained']} trained in full")
    print(f"one-pass vs full Spearman {result['onepass_full_spearman']}, noise ceiling "
          f"{result['noise_ceiling']}, full-training truth's ceiling {result['truth_noise_ceiling']}")
    for name, ref in result.get("reference_orders", {}).items():
        print(f"reference order {name:18s} ndcg@10 {ref['ndcg_at_10']} p@10 {ref['precision_at_10']} | top10 "
              f"after {ref['find_10_of_top10']['evaluations']} (random {ref['find_10_of_top10']['random_expected']})")
    for name, entry in result["models"].items():
        truth = entry["vs_full"] or entry["vs_one_pass"]
        print(f"{name:26s} by round sp {entry['by_round']['spearman']} tau {entry['by_round']['kendall']}"
              f" | by source {json.dumps({s: v['spearman'] for s, v in entry['by_source'].items()})}"
              f" | ndcg@10 {truth['ndcg_at_10']} p@10 {truth['precision_at_10']} | top10 after "
              f"{truth['find_10_of_top10']['evaluations']} (random {truth['find_10_of_top10']['random_expected']})"
              f" | quarter budget {json.dumps((entry.get('quarter_budget') or {}).get('strategies'))}"
              f" | waves {json.dumps((entry.get('waves') or {}).get('by_waves'))}")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
