"""Scale-out: the same evaluations on one Ray node and on two, and Ray's cost per batch.

    python bench/scale.py [--n 16] [--seeds 2] [--datasets iris,wine,moons,digits] [--batch-size 4] [--json]

Starts what a team runs (tests/team.py): `mlflow server` on a fresh PostgreSQL database with basic
auth, and a Ray cluster of two nodes of one CPU each (separate `ray start` processes, token auth).
The same n activation hypotheses (bench/throughput.py's) are evaluated, one-pass, in batches of
`--batch-size`, four ways, after a warm-up that caches the baselines and starts each node's Ray
worker (what a long-lived cluster has anyway):

- local: the local executor, one `Evaluator.evaluate` per batch, one after another, in this process;
- local (one job): the local executor on all n at once (what `discover` does without Ray);
- ray, 1 node: the Ray executor, its tasks restricted to the head node (a resource only it has);
- ray, 2 nodes: the Ray executor on both nodes.

speedup_2_nodes = time(ray, 1 node) / time(ray, 2 nodes); ray_overhead_per_batch_s =
(time(ray, 1 node) - time(local)) / batches: what dispatching a batch through Ray (JSON payload,
task, the worker's own MLflow connection and reads) adds to the same work done locally.
The last line with --json is one JSON object holding speedup_2_nodes (CONTRACT.md).
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


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--datasets", default="iris,wine,moons,digits")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from tests.team import ray_cluster, team_server  # the same set-up as the tests

    with tempfile.TemporaryDirectory(prefix="mlr-scale-") as tmp:
        where = Path(tmp)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
        with team_server(where) as server, ray_cluster(where, server.worker) as cluster:
            os.environ.update(server.admin)
            out = measure(server.url, cluster.address, args)
    out.update({"machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
                "load_avg_1m_at_end": round(os.getloadavg()[0], 2)})
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:>28}: {value}")
    return out


def measure(url: str, address: str, args) -> dict:
    from mlr_mlflow.config import Config, with_overrides
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.executors.ray_executor import RayExecutor
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect
    from throughput import hypotheses

    client = connect(url)
    # one training process per batch everywhere (a node has one CPU; the local executor is held to
    # one too, so that the overhead compares the same work on the same resources)
    config = with_overrides(Config(), suite={"datasets": tuple(args.datasets.split(","))},
                            executor={"kind": "ray", "address": address, "batch_size": args.batch_size},
                            sandbox={"workers": 1})
    hyps = [Hypothesis("activation", src, "bench") for src in hypotheses(args.n)]
    batches = [hyps[i:i + args.batch_size] for i in range(0, len(hyps), args.batch_size)]

    def ray_on(resource: str):
        return RayExecutor(client, with_overrides(config, executor={"sandbox_resource": resource}))

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    # warm-up, not timed: baselines cached, a Ray worker started on each node
    for resource in ("mlr_head", "mlr_second"):
        ray_on(resource).evaluate(hyps[:1], "one-pass", args.seeds)
    local = Evaluator(client, config)
    local.evaluate(hyps[:1], "one-pass", args.seeds)

    t_local = timed(lambda: [local.evaluate(b, "one-pass", args.seeds) for b in batches])
    t_local_one = timed(lambda: Evaluator(client, config).evaluate(hyps, "one-pass", args.seeds))
    t_ray1 = timed(lambda: ray_on("mlr_head").evaluate(hyps, "one-pass", args.seeds))
    t_ray2 = timed(lambda: ray_on("mlr_sandbox").evaluate(hyps, "one-pass", args.seeds))
    return {"n": args.n, "seeds": args.seeds, "datasets": args.datasets, "batch_size": args.batch_size,
            "batches": len(batches), "local_s": round(t_local, 2), "local_one_job_s": round(t_local_one, 2),
            "ray_1_node_s": round(t_ray1, 2), "ray_2_nodes_s": round(t_ray2, 2),
            "speedup_2_nodes": round(t_ray1 / t_ray2, 3),
            "speedup_2_nodes_vs_local": round(t_local / t_ray2, 3),
            "ray_overhead_per_batch_s": round((t_ray1 - t_local) / len(batches), 3)}


if __name__ == "__main__":
    main()
