"""An archive against reward collapse (issue 29): the symbolic generator's parents drawn from the
behaviour archive (`[discover] parents_from = "archive"`) against today's choice, the top by
screen_score (`"top"`), over the same fixed budget of rounds.

Each arm runs `--rounds` real discovery rounds of `--n` activation hypotheses into its own sqlite
store, on a small fast suite (default iris and moons: two tasks, for speed), one-pass screening,
the best `--top-k` of each round trained in full and, with `--confirm`, confirmed on fresh seeds
and a fresh split. Round r has seed r in both arms, so the first round (no parents yet) is the same.

Measured per arm, after each round:
- `coverage`: the share of the activation grid's cells the archive holds (all evaluated
  hypotheses so far, in that arm's store);
- `top_k_distance`: the mean pairwise behavioural distance (descriptors in [0, 1], archive.distance)
  between the round's best `--k` hypotheses by screen_score: near 0 is reward collapse;
- `best_full_b_wr`: the best test B-WR of a fully trained hypothesis so far; with `--confirm`,
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
    top_k: int = 1
    k: int = 4  # the round's top k whose behavioural spread is measured
    seeds: int = 2
    datasets: tuple[str, ...] = ("iris", "moons")
    confirm: bool = False


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


def run_arm(where: Path, spec: Spec, parents_from: str) -> dict:
    from mlr_mlflow.generate.context import build_archive
    from mlr_mlflow.rounds import Round
    from mlr_mlflow.tracking import connect, experiment_id

    client = connect(f"sqlite:///{where / 'mlflow.db'}")
    config = config_for(spec, parents_from)
    rounds = []
    started = time.perf_counter()
    for r in range(spec.rounds):
        summary = Round(client, config, "activation").run(n=spec.n, top_k=spec.top_k,
                                                          seeds=spec.seeds, seed=r)
        exp_id = experiment_id(client, config.experiment_name("activation"))
        archive = build_archive(client, exp_id, "activation")
        row = {"round": r, "evaluated": summary.evaluated, "cells": len(archive.cells),
               "coverage": round(archive.coverage, 4),
               **round_measures(client, exp_id, summary.round_id, spec.k)}
        rounds.append(row)
        print(f"{parents_from} round {r + 1}/{spec.rounds}: {json.dumps(row)}", file=sys.stderr,
              flush=True)
    full = [x["full_b_wr"] for x in rounds if x["full_b_wr"] is not None]
    confirmed = [x["confirmed_b_wr"] for x in rounds if x["confirmed_b_wr"] is not None]
    later = [x["top_k_distance"] for x in rounds[1:]]  # rounds that had parents
    return {"rounds": rounds, "coverage": rounds[-1]["coverage"], "cells": rounds[-1]["cells"],
            "mean_top_k_distance_after_first": sum(later) / len(later) if later else None,
            "best_full_b_wr": max(full, default=None),
            "best_confirmed_b_wr": max(confirmed, default=None),
            "wall_s": round(time.perf_counter() - started, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=Spec.rounds)
    p.add_argument("--n", type=int, default=Spec.n)
    p.add_argument("--top-k", type=int, default=Spec.top_k)
    p.add_argument("--k", type=int, default=Spec.k)
    p.add_argument("--seeds", type=int, default=Spec.seeds)
    p.add_argument("--datasets", default=",".join(Spec.datasets))
    p.add_argument("--confirm", action="store_true", help="confirm the selected (costly)")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--out", default="", help="a directory for the stores (default: a temporary one)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    spec = Spec(args.rounds, args.n, args.top_k, args.k, args.seeds,
                tuple(d for d in args.datasets.split(",") if d), args.confirm)
    result = {"spec": asdict(spec), "arms": {}}
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        base = Path(args.out or tmp)
        for arm in args.arms.split(","):
            (base / arm).mkdir(parents=True, exist_ok=True)
            result["arms"][arm] = run_arm(base / arm, spec, arm)
    for arm, out in result["arms"].items():
        print(f"{arm:8s} coverage {out['coverage']:.3f} ({out['cells']} cells)  top-{spec.k} distance "
              f"{out['mean_top_k_distance_after_first']}  best full B-WR {out['best_full_b_wr']}  "
              f"best confirmed {out['best_confirmed_b_wr']}  {out['wall_s']} s")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
