"""How many seeds must full training average over to repeat? The noise ceiling by seeds per set,
measured on pooled results of several `suite check` runs of one suite.

    python bench/ceiling_by_seeds.py --run STORE RUN_ID --run STORE RUN_ID [--splits 50] [--json]

Each run kept its per-model results on its own seeds (`suite_check_results.json`). Runs of the same
suite (the same `mlr.suite.digest`) on disjoint seeds pool into one panel trained on all their
seeds. For k = 1 up to half the pooled seeds, `--splits` random pairs of disjoint k-seed sets are
drawn. For each pair, a statistic of full training (B-WR, BSOTA-WR) is computed on one set and on
the other, and their Spearman over all members, the non-degenerate ones and the ReLU-like ones is
the noise ceiling of a round that trains on k seeds. The mean, min and max over the pairs are
reported, beside the Spearman-Brown prediction from k = 3 (the check's own set size):
rho_k = m rho_3 / (1 + (m - 1) rho_3), m = k / 3.

Only the full rung is read; nothing is trained. What a round on k seeds costs is k / 3 of the full
training it does now (docs/benchmarks.md, "Wall time of a default round").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

STATISTICS = ("b_wr", "bsota_wr")


def pool(raws: list[dict]) -> tuple[list[str], dict, list, list, list[int]]:
    """One panel from several checks' kept full-rung results: (members, panel, baselines, sota,
    seeds). Refuses overlapping seeds and members missing from a run."""
    members = [m for m in raws[0]["members"] if all(m in r["members"] for r in raws)]
    seeds: list[int] = []
    for raw in raws:
        mine = list(raw["seeds_a"]) + list(raw["seeds_b"])
        if set(mine) & set(seeds):
            raise SystemExit(f"seeds {sorted(set(mine) & set(seeds))} are in two runs: pool disjoint seeds only")
        seeds += mine

    def merge(parts: list[dict]) -> dict:
        out: dict = {}
        for part in parts:
            for task, by_seed in part.items():
                out.setdefault(task, {}).update(by_seed)
        return out

    fulls = [raw["rungs"]["full"] for raw in raws]
    if len({(len(f["baselines"]), len(f["sota"])) for f in fulls}) != 1:
        raise SystemExit("the runs trained different references (a reference added between them?): "
                         "pool checks against the same references only")
    panel = {m: merge([f["panel"][m] for f in fulls]) for m in members}
    baselines = [merge([f["baselines"][i] for f in fulls]) for i in range(len(fulls[0]["baselines"]))]
    sota = [merge([f["sota"][i] for f in fulls]) for i in range(len(fulls[0]["sota"]))]
    return members, panel, baselines, sota, seeds


def ceilings(members, panel, baselines, sota, seeds, loss_tol, metric, splits: int, seed: int = 0) -> dict:
    from mlr_mlflow.evaluate.reliability import statistic
    from mlr_mlflow.stats import spearman_brown
    from mlr_mlflow.suite_check import panel_members
    from mlr_mlflow.suite_check.measure import _rho, groups

    sets = groups(panel_members("activation", members))
    rng = np.random.default_rng(seed)
    out = {}
    for k in range(1, len(seeds) // 2 + 1):
        found = {name: {g: [] for g in sets} for name in STATISTICS}
        for _ in range(splits):
            drawn = [int(s) for s in rng.permutation(seeds)]
            a, b = sorted(drawn[:k]), sorted(drawn[k:2 * k])
            for name in STATISTICS:
                on_a = {m: statistic(name, panel[m], baselines, sota, a, loss_tol, metric) for m in members}
                on_b = {m: statistic(name, panel[m], baselines, sota, b, loss_tol, metric) for m in members}
                for g, names in sets.items():
                    found[name][g].append(_rho(on_a, on_b, names))
        out[k] = {name: {g: {"mean": round(float(np.mean(v)), 3), "min": round(float(np.min(v)), 3),
                             "max": round(float(np.max(v)), 3)} for g, v in by_group.items()}
                  for name, by_group in found.items()}
    if 3 in out:
        for k, entry in out.items():
            for name in STATISTICS:
                for g, v in entry[name].items():
                    v["spearman_brown_from_3"] = round(spearman_brown(out[3][name][g]["mean"], k / 3), 3)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", nargs=2, action="append", metavar=("STORE", "RUN_ID"), required=True,
                    help="a tracking URI and a suite check run in it that kept its results (repeat)")
    ap.add_argument("--config", default=None, help="the config the checks ran with (its win rule)")
    ap.add_argument("--splits", type=int, default=50, help="random pairs of seed sets per k")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from mlr_mlflow.commands import _config, for_kind
    from mlr_mlflow.suite_check import kept_results
    from mlr_mlflow.tracking import connect, names

    config = for_kind(_config(args.config), "activation")
    raws, digests = [], set()
    for store, run_id in args.run:
        client = connect(store)
        digests.add(client.get_run(run_id).data.tags.get(names.SUITE_DIGEST))
        raws.append(kept_results(client, run_id))
    if len(digests) != 1:
        raise SystemExit(f"the runs measured different suites (digests {sorted(map(str, digests))}): "
                         "pool checks of one suite only")
    members, panel, baselines, sota, seeds = pool(raws)
    result = {"runs": [r for _, r in args.run], "suite_digest": digests.pop(), "seeds": seeds,
              "members": len(members), "splits": args.splits,
              "by_seeds_per_set": ceilings(members, panel, baselines, sota, seeds, config.compare.loss_tol,
                                           config.compare.metric, args.splits)}
    for k, entry in result["by_seeds_per_set"].items():
        line = "; ".join(f"{name} " + ", ".join(
            f"{g} {v['mean']} [{v['min']}, {v['max']}]" + (f" (S-B {v['spearman_brown_from_3']})"
                                                          if "spearman_brown_from_3" in v else "")
            for g, v in by_group.items()) for name, by_group in entry.items())
        print(f"{k} seeds per set: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
