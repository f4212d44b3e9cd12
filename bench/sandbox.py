"""Start-up cost of each sandbox backend available here: a fresh worker until its first answer.

    python bench/sandbox.py [--repeat 5] [--json]

For each backend, `--repeat` times: open the sandbox, send one trivial call through the self-test
target (the worker is started by that call: namespaces, mounts, container and interpreter), close.
Reports the median and the range in seconds, and a warm call on an already-started worker. The
last line with --json is one JSON object: {backend: {"start_s", "start_min_s", "start_max_s",
"warm_call_ms"}}. Figures and the machine go in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from mlr_mlflow.config import SandboxConfig
from mlr_mlflow.sandbox import available_backends, open_sandbox
from mlr_mlflow.sandbox.selftest import SELFTEST_TARGET


def measure(backend: str, repeat: int) -> dict:
    starts = []
    for _ in range(repeat):
        begin = time.perf_counter()
        with open_sandbox(SandboxConfig(backend=backend)) as sandbox:
            sandbox.call(SELFTEST_TARGET, {"code": "result = 1"}, 120)
            starts.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            for _ in range(20):
                sandbox.call(SELFTEST_TARGET, {"code": "result = 1"}, 120)
            warm = (time.perf_counter() - begin) / 20
    return {"start_s": round(statistics.median(starts), 3), "start_min_s": round(min(starts), 3),
            "start_max_s": round(max(starts), 3), "warm_call_ms": round(warm * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = {b: measure(b, args.repeat) for b in available_backends()}
    for backend, row in out.items():
        print(f"{backend:<11} start {row['start_s']:.3f} s ({row['start_min_s']:.3f}-{row['start_max_s']:.3f})"
              f"  warm call {row['warm_call_ms']:.2f} ms")
    if args.json:
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
