"""An archive against reward collapse (issue 29): the symbolic generator's parents drawn from the
behaviour archive (`[discover] parents_from = "archive"`) against today's choice, the top by
screen_score (`"top"`), over the same fixed budget of rounds.

Each arm runs `--rounds` real discovery rounds of `--n` activation hypotheses into its own sqlite
store, on a small fast suite (default iris and moons: two tasks, for speed), one-pass screening,
the best `--top-k` of each round trained in full and confirmed on fresh seeds and a fresh split
(`--no-confirm` skips that). Round r has seed `--first-seed` + r in both arms; the first round (no
parents yet, so the same in both) runs once, and each arm goes on from a copy of its store.

Measured per arm, after each round:
- `coverage`: the share of the activation grid's cells the archive holds (all evaluated
  hypotheses so far, in that arm's store);
- `top_k_distance`: the mean pairwise behavioural distance (descriptors in [0, 1], archive.distance)
  between the round's best `--k` hypotheses by screen_score: near 0 is reward collapse;
- `best_full_b_wr`: the best test B-WR of a fully trained hypothesis so far, and
  `best_confirmed_b_wr`: the best B-WR of a confirmation run so far.

`python bench/archive.py --json` ends with one JSON line: {"arms": {arm: {...}}, "spec": {...}}.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ARMS = ("top", "archive")


@dataclass(frozen=True)
class Spec:
    rounds: int = 4
    n: int = 16
    top_k: int = 2
    k: int = 4  # the round's top k whose behavioural spread is measured
    seeds: int = 2
    datasets: tuple[str, ...] = ("iris", "moons")
    confirm: bool = True
    first_seed: int = 0  # round r has seed first_seed + r (another value: another replicate)


def config_for(spec: Spec, parents_from: str):
    from mlr_mlflow.config import Config, with_overrides

    return with_overrides(Config(), suite={"datasets": spec.datasets},
                          discover={"screen": "one-pass", "parents_from": parents_from, "parents": 8},
                          confirm={"enabled": spec.confirm},
                          sandbox={"train_timeout_s": 3600.0, "hypothesis_budget_s": 900.0})


def round_measures(client, exp_id: str, round_id: str, k: int) -> dict:
    """The round's top-k spread and its fully trained and confirmed results."""
    from mlr_mlflow.fingerprint import decode
    from mlr_mlflow.generate.archive import Archive, mean_pairwise_distance
    from mlr_mlflow.tracking import names
    from mlr_mlflow.tracking.queries import runs_of_round

    runs = [r for r in runs_of_round(client, exp_id, round_id)
            if r.data.tags.get(names.STATUS) == "evaluated"]
    fingerprint = {}
    for r in runs:
        fp = decode(r.data.tags.get(names.FINGERPRINT))
        if fp is not None:
            fingerprint.setdefault(r.data.tags[names.HYPOTHESIS_SHA256], fp)
    screened = sorted(((r.data.metrics[names.SCREEN_SCORE], r.data.tags[names.HYPOTHESIS_SHA256])
                       for r in runs if names.SCREEN_SCORE in r.data.metrics), reverse=True)
    grid = Archive("activation")
    points = []
    for _, sha in screened:
        placed = grid.place(fingerprint[sha]) if sha in fingerprint else None
        if placed is not None:
            points.append(placed[1])
        if len(points) == k:
            break
    full = [r.data.metrics[names.B_WR] for r in runs
            if r.data.tags.get(names.VARIANT) == "full" and names.B_WR in r.data.metrics]
    confirmed = [r.data.metrics[names.B_WR] for r in runs
                 if r.data.tags.get(names.VARIANT) == "confirm" and names.B_WR in r.data.metrics]
    return {"top_k_distance": mean_pairwise_distance(points),
            "best_screen_score": screened[0][0] if screened else None,
            "full_b_wr": max(full, default=None), "confirmed_b_wr": max(confirmed, default=None)}


def one_round(client, config, spec: Spec, r: int, label: str) -> dict:
    from mlr_mlflow.generate.context import build_archive
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import experiment_id

    summary = Round(client, config, "activation").run(n=spec.n, top_k=spec.top_k, seeds=spec.seeds,
                                                      seed=spec.first_seed + r)
    exp_id = experiment_id(client, config.experiment_name("activation"))
    archive = build_archive(client, exp_id, "activation")
    row = {"round": r, "evaluated": summary.evaluated, "cells": len(archive.cells),
           "coverage": round(archive.coverage, 4),
           **round_measures(client, exp_id, summary.round_id, spec.k)}
    print(f"{label} round {r + 1}/{spec.rounds}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def run_arms(base: Path, spec: Spec, arms: list[str]) -> dict:
    """The first round (seed 0, no parents: the same in every arm) runs once, with the baselines
    it trains; each arm goes on from a copy of that store."""
    import os
    import shutil

    from mlr_mlflow.tracking import connect

    os.chdir(base)  # the stores' artifacts go under base/mlruns (the copies share round 0's)
    started = time.perf_counter()
    first = one_round(connect(f"sqlite:///{base / 'first.db'}"), config_for(spec, arms[0]), spec, 0,
                      "both")
    shared_s = time.perf_counter() - started
    out = {}
    for arm in arms:
        shutil.copy(base / "first.db", base / f"{arm}.db")
        client = connect(f"sqlite:///{base / f'{arm}.db'}")
        started = time.perf_counter()
        rounds = [first] + [one_round(client, config_for(spec, arm), spec, r, arm)
                            for r in range(1, spec.rounds)]
        full = [x["full_b_wr"] for x in rounds if x["full_b_wr"] is not None]
        confirmed = [x["confirmed_b_wr"] for x in rounds if x["confirmed_b_wr"] is not None]
        later = [x["top_k_distance"] for x in rounds[1:]]  # rounds that had parents
        out[arm] = {"rounds": rounds, "coverage": rounds[-1]["coverage"], "cells": rounds[-1]["cells"],
                    "mean_top_k_distance_after_first": sum(later) / len(later) if later else None,
                    "best_full_b_wr": max(full, default=None),
                    "best_confirmed_b_wr": max(confirmed, default=None),
                    "wall_s": round(time.perf_counter() - started + shared_s, 1)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=Spec.rounds)
    p.add_argument("--n", type=int, default=Spec.n)
    p.add_argument("--top-k", type=int, default=Spec.top_k)
    p.add_argument("--k", type=int, default=Spec.k)
    p.add_argument("--seeds", type=int, default=Spec.seeds)
    p.add_argument("--datasets", default=",".join(Spec.datasets))
    p.add_argument("--no-confirm", dest="confirm", action="store_false",
                   help="skip the confirmation of the selected (then only full B-WR is compared)")
    p.add_argument("--first-seed", type=int, default=Spec.first_seed,
                   help="round r has seed first-seed + r: another value gives another replicate")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--out", default="", help="a directory for the stores (default: a temporary one)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    spec = Spec(args.rounds, args.n, args.top_k, args.k, args.seeds,
                tuple(d for d in args.datasets.split(",") if d), args.confirm, args.first_seed)
    result = {"spec": asdict(spec), "arms": {}}
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        base = Path(args.out or tmp).resolve()
        base.mkdir(parents=True, exist_ok=True)
        result["arms"] = run_arms(base, spec, args.arms.split(","))
    for arm, out in result["arms"].items():
        print(f"{arm:8s} coverage {out['coverage']:.3f} ({out['cells']} cells)  top-{spec.k} distance "
              f"{out['mean_top_k_distance_after_first']}  best full B-WR {out['best_full_b_wr']}  "
              f"best confirmed {out['best_confirmed_b_wr']}  {out['wall_s']} s")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
