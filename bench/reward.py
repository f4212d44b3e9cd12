"""How well the reward model ranks hypotheses it was not trained on, and what that buys.

    python bench/reward.py [--tracking-uri URI] [--rounds 8] [--json]

Data: the one-pass evaluations of activation hypotheses in the store. With no store given, it
builds one in a temporary directory: `--rounds` symbolic discovery rounds of 32 (top-k 0) plus 64
hand-written activations (bench/throughput.py's families) as a second source, about 6 minutes.

Reported, for each feature family and both algorithms:
- held out by round (train on the other rounds, predict this one): Spearman, Kendall, Pearson;
- held out by generator (train on the other source): the same;
- the top-k discovery curve: every hypothesis gets an out-of-sample prediction (leave its round
  out); walking the whole pool in predicted order, how many full evaluations until the pool's true
  top 10 (by measured B-WR) are all found, against the expectation for a random order.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

FAMILIES = {"structural": ("structural",), "grid": ("grid",), "embedding": ("embedding",),
            "structural+grid": ("structural", "grid"),
            "all": ("structural", "grid", "embedding"),
            "probes": ("probes",), "structural+grid+probes": ("structural", "grid", "probes")}


def build_store(uri: str, rounds: int) -> None:
    from throughput import hypotheses

    from mlr_mlflow.config import Config, with_overrides
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.rounds import Round
    from mlr_mlflow.tracking import connect

    client = connect(uri)
    config = with_overrides(Config(), discover={"screen": "one-pass"})
    for r in range(rounds):
        summary = Round(client, config, "activation").run(n=32, top_k=0, seeds=3)
        print(f"round {r + 1}/{rounds}: {summary.evaluated} evaluated", file=sys.stderr, flush=True)
    Evaluator(client, config).evaluate([Hypothesis("activation", s, "handwritten") for s in hypotheses(64)],
                                       "one-pass", 3, round_id="handwritten")


def discovery_curve(pred: np.ndarray, truth: np.ndarray, top: int = 10) -> dict:
    n = len(truth)
    true_top = set(np.argsort(-truth, kind="stable")[:top])
    order = np.argsort(-pred, kind="stable")
    found_at = max(i for i, j in enumerate(order, start=1) if j in true_top)
    random_expected = top * (n + 1) / (top + 1)  # expected position of the last of `top` in a random order
    return {"pool": n, "top": top, "evaluations_reward": int(found_at),
            "evaluations_random_expected": round(random_expected, 1),
            "ratio": round(found_at / random_expected, 3)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default=None, help="a store with evaluated activation runs")
    parser.add_argument("--rounds", type=int, default=8, help="rounds to build when no store is given")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from mlr_mlflow.config import Config
    from mlr_mlflow.reward.embed import Encoder
    from mlr_mlflow.reward.ranker import Features, held_out, load_dataset
    from mlr_mlflow.tracking import connect, experiment_id

    tmp = None
    uri = args.tracking_uri
    if not uri:
        tmp = tempfile.TemporaryDirectory(prefix="mlr-reward-bench-")
        os.chdir(tmp.name)
        uri = f"sqlite:///{tmp.name}/mlflow.db"
        start = time.perf_counter()
        build_store(uri, args.rounds)
        print(f"built the store in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    client = connect(uri)
    data = load_dataset(client, experiment_id(client, Config().experiment_name("activation")),
                        "activation")
    encoder = Encoder()
    result = {"n": len(data), "rounds": len(set(data.rounds)),
              "generators": sorted(set(data.generators)), "families": {}}
    print(f"{len(data)} hypotheses, {result['rounds']} rounds, generators {result['generators']}")
    print(f"{'features':16s} {'algorithm':9s} {'by round: sp / tau / r':>26s} "
          f"{'by generator: sp':>18s} {'top-10 found after':>20s}")
    for family in args.families.split(","):
        flags = {name: name in FAMILIES[family] for name in ("structural", "grid", "embedding", "probes")}
        X = Features(**flags).matrix("activation", data.sources, data.shas, encoder)
        for algorithm in ("ranker", "regressor"):
            # fitted on the validation target (as `reward train`), judged on the test B-WR
            by_round = held_out(X, data, "round", algorithm, truth="b_wr")
            by_gen = held_out(X, data, "generator", algorithm, truth="b_wr")
            pred = _out_of_sample(X, data, algorithm)
            curve = discovery_curve(pred, data.b_wr)
            r = by_round["pooled"]
            gens = {g: round(v["spearman"], 3) for g, v in by_gen["groups"].items()}
            result["families"][f"{family}/{algorithm}"] = {
                "by_round": {k: round(v, 3) for k, v in r.items()},
                "by_round_mean_spearman": round(by_round["mean_spearman"], 3),
                "by_generator": gens, "discovery": curve}
            print(f"{family:16s} {algorithm:9s} {r['spearman']:8.3f} {r['kendall']:7.3f} {r['pearson']:7.3f}"
                  f"   {json.dumps(gens):>24s}   {curve['evaluations_reward']:4d} vs random "
                  f"{curve['evaluations_random_expected']:.0f}", flush=True)
    if args.json:
        print(json.dumps(result))
    if tmp is not None:
        os.chdir(HERE.parent)
        tmp.cleanup()
    return result


def _out_of_sample(X, data, algorithm) -> np.ndarray:
    from mlr_mlflow.reward.ranker import fit

    pred = np.zeros(len(data))
    for group in sorted(set(data.rounds)):
        test = np.array([r == group for r in data.rounds])
        model = fit(X[~test], data.target[~test], [r for r, t in zip(data.rounds, test) if not t], algorithm)
        pred[test] = model.predict(X[test])
    return pred


if __name__ == "__main__":
    main()
