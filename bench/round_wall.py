"""Wall time of a default round (issue 27's goal: within 2x the former default's), by stage.

    python bench/round_wall.py [--rounds 2] [--presets classic,tuned] [--root CHECKOUT] [--seeds N] [--json]

`--root` measures another checkout of the package (an earlier commit, for a before-and-after); the
preset `default` runs with an empty config: whatever suite that checkout defaults to.

For each suite preset: a fresh sqlite store in a scratch directory, then `--rounds` default rounds
(`mlr-mlflow discover --kind activation`: 32 symbolic hypotheses, top 4, 3 seeds) one after the
other, each as a user starts it (a fresh interpreter); `--seeds N` passes `--seeds N` to each round
(what a round on more seeds than the default costs). Round 1 trains the references; later rounds
reuse them. Reports each round's wall time and the stage times the round logs (`generation_s`,
`one_pass_s`, `full_s`, `confirm_s`, `transfer_s`), and per round number the ratio of the presets'
times. Figures and the machine go in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("generation_s", "one_pass_s", "full_s", "confirm_s", "transfer_s")


def one_round(where: Path, config: Path, root: Path = ROOT, seeds: int | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "MLFLOW_TRACKING_URI": f"sqlite:///{where}/mlflow.db"}
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mlr_mlflow", "discover", "--kind", "activation",
                           "--config", str(config), "--json", *(["--seeds", str(seeds)] if seeds else [])],
                          cwd=where, env=env, capture_output=True,
                          text=True, timeout=3600)
    wall = time.perf_counter() - begin
    if done.returncode != 0:
        raise SystemExit(f"discover exited {done.returncode}:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    from mlflow import MlflowClient

    metrics = MlflowClient(f"sqlite:///{where}/mlflow.db").get_run(out["round_run_id"]).data.metrics
    return {"wall_s": round(wall, 1), **{k: round(metrics[k], 1) for k in STAGES if k in metrics},
            "evaluated": out.get("evaluated"), "full": out.get("full_evaluated")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--presets", default="classic,tuned")
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose mlr_mlflow is measured")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per round (default: discover's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for preset in args.presets.split(","):
        with tempfile.TemporaryDirectory(prefix=f"mlr-round-{preset}-") as tmp:
            where = Path(tmp)
            config = where / "mlr.toml"
            config.write_text("" if preset == "default" else f'[suite]\npreset = "{preset}"\n')
            results[preset] = []
            for number in range(1, args.rounds + 1):
                r = one_round(where, config, Path(args.root), args.seeds)
                results[preset].append(r)
                print(f"{preset:<8} round {number}: {r['wall_s']:7.1f} s  "
                      + "  ".join(f"{k} {r[k]:.1f}" for k in STAGES if k in r), file=sys.stderr, flush=True)
    presets = list(results)
    ratios = {}
    if len(presets) == 2:
        a, b = presets
        ratios = {f"round {i + 1}": round(rb["wall_s"] / ra["wall_s"], 2)
                  for i, (ra, rb) in enumerate(zip(results[a], results[b]))}
        print(f"{b} / {a}: " + ", ".join(f"{k} {v}x" for k, v in ratios.items()), file=sys.stderr)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs", file=sys.stderr)
    if args.json:
        print(json.dumps({"rounds": results, "ratios": ratios, "seeds": args.seeds, "load_average": load,
                          "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
