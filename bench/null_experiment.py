"""Calibration: how often does a round announce a discovery when there is none to make?

    python bench/null_experiment.py [--rounds 4] [--seeds 2] [--top-k 3] [--json]

Every hypothesis of these rounds is ReLU in disguise: the same function written another way
(`torch.clamp(x, min=0)`, `(x + x.abs()) / 2`, `torch.relu(x) * 3.0 / 3.0`, ...). None is better
than the baseline ReLU, so every announced discovery is a false one. Exact rewrites train bit for
bit like ReLU and tie everywhere (p = 1). Others round differently in the last bit; training turns
that into differences in the last digits of the test loss. Under the default `loss_tol` (1e-3)
those are ties too, and nothing would ever be announced. So the experiment compares with
`--loss-tol 0`: the last digits decide, and each (dataset, seed) becomes a coin flip, a null of
pure noise in which the winner's curse shows. Each round is an independent replication (its own split and its own seeds, its own
experiment, so the hash dedup lets the same sources through again), run by the real pipeline:
one-pass, top-k on validation B-WR, full training, confirmation.

Reported, as the share of rounds that would have announced at least one discovery:
- `naive_best_above_half`: the round's best one-pass B-WR is above 0.5 (a leaderboard read naively);
- `naive_full_above_half`: the best full-trained B-WR (same seeds and split as the selection) > 0.5;
- `naive_test`: any selected hypothesis has a paired p-value <= fdr on its full run, no correction
  and no fresh data;
- `confirmed`: any hypothesis confirmed (fresh seeds and split, Benjamini-Hochberg at fdr).
With only null hypotheses, the false discovery rate is the share of rounds with any confirmation;
the goal is that it stays at most `fdr`.

The noise ceiling (`stats.noise_ceiling`: the Spearman of one-pass B-WR between disjoint seed sets
of the same hypotheses) is measured on a set of genuinely different activations (bench/throughput.py's
families) and, for contrast, on the null set.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

BODIES = [
    "torch.clamp(x, min=0)",
    "(x + x.abs()) / 2",
    "torch.maximum(x, 0 * x)",
    "torch.where(x > 0, x, 0 * x)",
    "torch.relu(x) * 3.0 / 3.0",
    "torch.relu(7.0 * x) / 7.0",
    "(torch.relu(x) + 1.0) - 1.0",
    "0.5 * (x + torch.sqrt(x * x + 1e-30))",
    "torch.relu(x * 0.1) * 10.0",
    "torch.relu(x) / 0.3 * 0.3",
]


def relu_in_disguise(n: int) -> list[str]:
    return [f"import torch\n\n\ndef activation(x):\n    return {b}\n" for b in BODIES[:n]]


class Fixed:
    """A generator proposing the given sources, in order."""

    name = "null"

    def __init__(self, sources):
        self.sources = sources

    def propose(self, context):
        from mlr_mlflow.generate import Proposal

        for source in self.sources:
            yield Proposal(source=source)


def one_round(client, r: int, args, progress) -> dict:
    from mlr_mlflow.config import Config, with_overrides
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import names

    config = with_overrides(
        Config(), suite={"datasets": tuple(args.datasets.split(",")), "split_seed": 10 + r,
                         "first_seed": 100 * r}, compare={"loss_tol": args.loss_tol},
        # dedup off: every source here behaves like the ReLU baseline, which is the point
        discover={"screen": "one-pass", "parents": 0, "dedup": False},
        confirm={"seeds": args.confirm_seeds, "first_seed": 100 * r + 50, "split_seed": 1000 + r,
                 "fdr": args.fdr})
    import dataclasses

    config = dataclasses.replace(config, experiment_prefix=f"null{r}-")
    sources = relu_in_disguise(args.n)
    summary = Round(client, config, "activation", generator=Fixed(sources), progress=progress).run(
        n=len(sources), top_k=args.top_k, seeds=args.seeds, seed=r)
    rows = summary.leaderboard
    full_p = [client.get_run(row["full_run_id"]).data.metrics.get(names.B_WR_P_VALUE, 1.0)
              for row in rows if row["full_run_id"]]
    return {"best_one_pass_b_wr": max(row["one_pass_b_wr"] for row in rows),
            "best_full_b_wr": max((row["full_b_wr"] for row in rows if row["full_b_wr"] is not None),
                                  default=None),
            "min_full_p_value": min(full_p, default=1.0),
            "selected": summary.selected, "confirmed": summary.confirmed,
            "confirm_b_wr": [row["confirm_b_wr"] for row in rows if row["confirm_b_wr"] is not None]}


def ceiling(client, sources: list[str], seeds: int, datasets: list[str], loss_tol: float) -> float:
    """Spearman of one-pass B-WR between seeds [0, s/2) and [s/2, s) of the same hypotheses."""
    import dataclasses

    import numpy as np

    from mlr_mlflow.config import Config, with_overrides
    from mlr_mlflow.evaluate.baselines import get_references
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.evaluate.winrate import units
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.stats import noise_ceiling
    from mlr_mlflow.tracking import experiment_id

    config = with_overrides(Config(), suite={"datasets": tuple(datasets)},
                            compare={"loss_tol": loss_tol})
    config = dataclasses.replace(config, experiment_prefix=f"ceiling-{loss_tol:g}-")
    evaluator = Evaluator(client, config)
    evs = evaluator.evaluate([Hypothesis("activation", s, "ceiling") for s in sources], "one-pass",
                             seeds)
    exp = experiment_id(client, config.experiment_name("activation"))
    baselines, _ = get_references(client, exp, "activation", "one-pass", list(range(seeds)),
                                  evaluator.suite, config)
    mats = [units(ev.per_seed, baselines, config.compare.loss_tol) for ev in evs if ev.valid]
    half = seeds // 2
    value = noise_ceiling(mats, range(half), range(half, seeds))
    return None if np.isnan(value) else round(value, 3)


def simulated_null(rounds: int = 1000, n: int = 32, datasets: int = 8, seeds: int = 3,
                   top_k: int = 4, fdr: float = 0.1, ties: float = 0.2) -> dict:
    """The same decisions on simulated null rounds (no pipeline, pure stats), many more of them:
    each unit is a tie with probability `ties`, else a fair coin. Selection on one draw (top-k by
    B-WR), naive verdicts on that draw, confirmation on a fresh draw with BH."""
    import numpy as np

    from mlr_mlflow.stats import benjamini_hochberg, sign_flip_pvalue

    rng = np.random.default_rng(0)

    def draw(k):
        return np.where(rng.random((k, datasets, seeds)) < ties, 0.5,
                        (rng.random((k, datasets, seeds)) < 0.5).astype(float))

    best_above, naive, confirmed = 0, 0, 0
    for r in range(rounds):
        first = draw(n)
        wr = first.mean(axis=(1, 2))
        top = np.argsort(-wr, kind="stable")[:top_k]
        best_above += wr[top[0]] > 0.5
        naive += min(sign_flip_pvalue(first[i], n_perm=2000, seed=r) for i in top) <= fdr
        fresh = draw(top_k)
        p = [sign_flip_pvalue(u, n_perm=2000, seed=r) for u in fresh]
        passed, _ = benjamini_hochberg(p, fdr)
        confirmed += bool(np.any(passed & (fresh.mean(axis=(1, 2)) > 0.5)))
    return {"rounds": rounds, "n": n, "units": f"{datasets}x{seeds}", "top_k": top_k,
            "best_above_half": round(float(best_above) / rounds, 3), "naive_test": round(naive / rounds, 3),
            "confirmed": round(confirmed / rounds, 3)}


def interval_coverage(shapes=((8, 3), (3, 2), (2, 1)), trials: int = 400, level: float = 0.95) -> dict:
    """How often the bootstrap interval covers the true win rate, in a simulation with known truth:
    per dataset a win probability drawn around 0.6, 20 % ties, outcomes drawn per seed."""
    import numpy as np

    from mlr_mlflow.stats import bootstrap_interval

    rng = np.random.default_rng(0)
    out = {}
    for d, s in shapes:
        hits = 0
        for t in range(trials):
            p = 0.6 + rng.uniform(-0.1, 0.1, size=d)
            u = np.where(rng.random((d, s)) < 0.2, 0.5, (rng.random((d, s)) < p[:, None]).astype(float))
            low, high = bootstrap_interval(u, level, 1000, seed=t)
            hits += low <= 0.2 * 0.5 + 0.8 * 0.6 <= high
        out[f"{d}x{s}"] = round(hits / trials, 3)
    return out


def measure(client, args):
    from throughput import hypotheses

    rounds = []
    for r in range(args.rounds):
        print(f"null round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
        rounds.append(one_round(client, r, args, lambda _: None))
        print(f"  {json.dumps(rounds[-1])}", file=sys.stderr, flush=True)
    datasets = args.ceiling_datasets.split(",")
    print("noise ceiling", file=sys.stderr, flush=True)
    real_ceiling = null_ceiling = None
    if args.ceiling_seeds >= 2:
        real_ceiling = ceiling(client, hypotheses(16), args.ceiling_seeds, datasets, 1e-3)
        null_ceiling = ceiling(client, relu_in_disguise(args.n), args.ceiling_seeds, datasets,
                               args.loss_tol)
    return rounds, real_ceiling, null_ceiling


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--n", type=int, default=len(BODIES))
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--confirm-seeds", type=int, default=3)
    parser.add_argument("--datasets", default="iris,xor")
    parser.add_argument("--fdr", type=float, default=0.1)
    parser.add_argument("--loss-tol", type=float, default=0.0,
                        help="0: any loss difference decides a tie of accuracies (see the docstring)")
    parser.add_argument("--ceiling-seeds", type=int, default=6)
    parser.add_argument("--ceiling-datasets", default="iris,wine,breast_cancer,digits,moons,circles,"
                                                      "xor,hard_classification")
    parser.add_argument("--simulated-rounds", type=int, default=1000)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from mlr_mlflow.tracking import connect

    start = time.perf_counter()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # artifacts of a temporary store land here
        try:
            client = connect(args.tracking_uri or f"sqlite:///{tmp}/null.db")
            rounds, real_ceiling, null_ceiling = measure(client, args)
        finally:
            os.chdir(cwd)

    def share(flags):
        return round(sum(flags) / len(flags), 3)

    result = {
        "rounds": args.rounds, "hypotheses_per_round": args.n, "top_k": args.top_k,
        "seeds": args.seeds, "confirm_seeds": args.confirm_seeds, "datasets": args.datasets,
        "fdr": args.fdr, "loss_tol": args.loss_tol,
        "naive_best_above_half": share([r["best_one_pass_b_wr"] > 0.5 for r in rounds]),
        "naive_full_above_half": share([(r["best_full_b_wr"] or 0) > 0.5 for r in rounds]),
        "naive_test": share([r["min_full_p_value"] <= args.fdr for r in rounds]),
        "confirmed": share([r["confirmed"] > 0 for r in rounds]),
        "mean_best_one_pass_b_wr": round(sum(r["best_one_pass_b_wr"] for r in rounds) / len(rounds), 3),
        "mean_confirm_b_wr": round(sum(sum(r["confirm_b_wr"]) for r in rounds) /
                                   max(1, sum(len(r["confirm_b_wr"]) for r in rounds)), 3),
        "noise_ceiling": real_ceiling, "noise_ceiling_null": null_ceiling,
        "interval_coverage_95": interval_coverage(),
        "simulated": simulated_null(args.simulated_rounds, fdr=args.fdr),
        "seconds": round(time.perf_counter() - start, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "per_round": rounds,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
