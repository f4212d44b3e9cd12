"""Answers before work (issue 31): how long the commands that run no hypothesis code take.

    python bench/answers.py [--repeat 3] [--json] [--root CHECKOUT]

`--root` measures another checkout of the package (an earlier commit, for a before-and-after).

Each command runs `--repeat` times as a user runs it (`python -m mlr_mlflow ...`, a fresh
interpreter), in a scratch directory with its own store and probe cache:
- an error: `evaluate` of a file that does not exist;
- `scheduler status` (the packaged default schedule);
- `discover --resume` with nothing to resume.
The store is created once before timing (MLflow's first-use migration is not an answer). Reports the
median wall time, its range, the median CPU time of the process (user + system, less sensitive to a
busy machine) against the issue's goals, and how many sandbox self-tests ran (goal: none). The last
line with --json is one JSON object. Figures and the machine go in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {  # name -> (arguments, goal in seconds, exit status expected)
    "an error": (["evaluate", "missing.py", "--kind", "activation"], 2.0, 2),
    "scheduler status": (["scheduler", "status"], 3.0, 0),
    "--resume, nothing to resume": (["discover", "--resume"], 3.0, 0),
}


def timed(args: list[str], where: Path, env: dict, expected: int) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mlr_mlflow", *args], cwd=where, env=env,
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - begin
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expected:
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}, expected {expected}:\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose mlr_mlflow is measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlr-answers-") as tmp:
        where = Path(tmp)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([args.root, os.environ.get("PYTHONPATH", "")]),
               "MLR_MLFLOW_CACHE_DIR": str(where / "cache"),
               "MLFLOW_TRACKING_URI": f"sqlite:///{where}/mlflow.db"}
        timed(["discover", "--resume"], where, env, 0)  # creates the store's tables: not timed
        results = {}
        for name, (argv, goal, expected) in COMMANDS.items():
            runs = [timed(argv, where, env, expected) for _ in range(args.repeat)]
            walls, cpus = [w for w, _ in runs], [c for _, c in runs]
            results[name] = {"wall_s": round(statistics.median(walls), 2), "wall_min_s": round(min(walls), 2),
                             "wall_max_s": round(max(walls), 2), "cpu_s": round(statistics.median(cpus), 2),
                             "goal_s": goal}
        log = where / "cache" / "probes.log"
        probes = len(log.read_text().splitlines()) if log.exists() else 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{'command':<30} {'wall (median)':>14} {'range':>14} {'CPU':>7} {'goal':>6}")
    for name, r in results.items():
        print(f"{name:<30} {r['wall_s']:>12.2f} s {r['wall_min_s']:>6.2f}–{r['wall_max_s']:<6.2f}"
              f" {r['cpu_s']:>5.2f} s {r['goal_s']:>4.0f} s")
    print(f"sandbox self-tests run: {probes}; load average {load:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        print(json.dumps({"commands": results, "probes": probes, "load_average": load,
                          "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
