"""A batch of evaluations as JSON: what the round's process sends a worker, and what the worker
does with it.

Only hypothesis sources, the configuration and the ids of runs the round's process already created
cross the wire, never pickled hypotheses or functions. The worker validates, sandboxes, trains and
records exactly as the local executor does, into the same tracking store over its own connection
(its node's MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD). MLflow is the source of truth:
a batch dispatched again (its node died) skips the runs that already finished.
"""
from __future__ import annotations

import json

from ..config import Config, config_from_dict, with_overrides
from ..hypothesis import Hypothesis
from ..sandbox import resolve_backend
from ..tracking import connect, log, names
from ..evaluate.evaluation import Evaluation
from ..evaluate.evaluator import Evaluator

FINISHED_STATUSES = ("evaluated", "invalid")


def batch_payload(tracking_uri: str, config: Config, evaluations: list[Evaluation], seeds: int) -> str:
    return json.dumps({
        "tracking_uri": tracking_uri, "config": config.to_dict(), "seeds": seeds,
        "variant": evaluations[0].variant,
        "runs": [{"run_id": ev.run_id, "kind": ev.hypothesis.kind, "source": ev.hypothesis.source,
                  "generator": ev.hypothesis.generator, "sha256": ev.hypothesis.sha256}
                 for ev in evaluations]}, default=str)


def finished(run) -> bool:
    """A run whose evaluation is over (results or a rejection recorded): never done twice."""
    return run.info.status in ("FINISHED", "FAILED") and \
        run.data.tags.get(names.STATUS) in FINISHED_STATUSES


def evaluate_batch(payload_json: str, node_id: str = "") -> str:
    """Evaluate the batch's unfinished runs -> JSON {"evaluated": [run ids], "kept": [run ids],
    "node": node_id}. Each evaluated run is tagged with the node that evaluated it."""
    payload = json.loads(payload_json)
    client = connect(payload["tracking_uri"])
    config = config_from_dict(payload["config"])
    if not config.sandbox.workers:  # "as many as CPUs": the CPUs Ray gave this task, not the node's
        config = with_overrides(config, sandbox={"workers": max(1, int(config.executor.cpus_per_batch))})
    backend = resolve_backend(config.sandbox.backend)
    todo, kept = [], []
    for item in payload["runs"]:
        hypothesis = Hypothesis(item["kind"], item["source"], item["generator"])
        if hypothesis.sha256 != item["sha256"]:
            raise ValueError(f"run {item['run_id']}: the source does not hash to {item['sha256']}")
        run = client.get_run(item["run_id"])
        if finished(run):
            kept.append(item["run_id"])
            continue
        if run.info.status != "RUNNING":  # failed under a dead node's worker: evaluated afresh
            client.update_run(item["run_id"], status="RUNNING")
        log(client, item["run_id"], tags={names.SANDBOX: backend,
                                          **({names.EXECUTOR_NODE: node_id} if node_id else {})})
        todo.append(Evaluation(hypothesis=hypothesis, run_id=item["run_id"], variant=payload["variant"]))
    if todo:
        Evaluator(client, config).evaluate_opened(todo, int(payload["seeds"]))
    return json.dumps({"evaluated": [ev.run_id for ev in todo], "kept": kept, "node": node_id})
