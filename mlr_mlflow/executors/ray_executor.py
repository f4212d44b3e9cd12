"""The Ray executor: a round's evaluations as batches of Ray tasks on a cluster.

This process creates every run first (tags, params, source, config, datasets), makes sure the
reference components are cached in MLflow, then sends each batch as JSON (batch.py) to a Ray task
that asks for `cpus_per_batch` CPUs and one unit of the custom resource that marks nodes able to
sandbox. Results are read back from MLflow as batches complete. A batch whose node dies is
dispatched again (by Ray's task retries, then by this loop up to `max_attempts`); the worker skips
the runs that finished, so nothing is lost and nothing is evaluated twice.

Ray's token authentication is on: RAY_AUTH_MODE defaults to "token" here, and the token comes
from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, as for `ray start`.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Callable

from ..config import Config, ExecutorConfig, UsageError
from ..evaluate.baselines import get_references
from ..evaluate.evaluation import Evaluation
from ..evaluate.evaluator import TRAINING, VARIANTS, Evaluator
from ..tracking import experiment_id, finish
from .batch import batch_payload, evaluate_batch


def run_on_node(payload_json: str) -> str:
    """The Ray task: a JSON batch in, a JSON answer out, the node's id on every run it evaluates."""
    import ray

    return evaluate_batch(payload_json, ray.get_runtime_context().get_node_id())


def connect_ray(executor: ExecutorConfig):
    """The `ray` module, connected to the configured cluster with token authentication."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError:
        raise UsageError("the ray executor needs Ray: pip install 'mlr-mlflow[ray]'") from None
    ray._raylet.Config.initialize("")  # Ray reads RAY_AUTH_MODE once, maybe before we set it
    address = executor.address or os.environ.get("RAY_ADDRESS") or "auto"
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        except Exception as exc:  # ConnectionError, an auth failure, a bad address: all the user's to fix
            raise UsageError(f"cannot connect to the Ray cluster at {address}: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return ray


def check_capacity(ray, e: ExecutorConfig) -> None:
    """Ray would wait forever for a node that can run the tasks: refuse at once instead."""
    resources = ray.cluster_resources()
    if resources.get(e.sandbox_resource, 0) < 1 or resources.get("CPU", 0) < e.cpus_per_batch:
        raise UsageError(f"no node of the Ray cluster offers {e.cpus_per_batch:g} CPU(s) and the "
                         f"resource {e.sandbox_resource!r} (start nodes with `ray start --resources "
                         f"'{{\"{e.sandbox_resource}\": N}}'` where they can sandbox)")


class RayExecutor:
    """Evaluates hypotheses as Ray tasks; same calls and answers as the local Evaluator."""

    def __init__(self, client, config: Config, progress: Callable[[str], None] = lambda _: None):
        self.client, self.config, self.progress = client, config, progress
        self.local = Evaluator(client, config, progress)  # creates runs, caches references

    def record_unevaluated(self, *args, **kwargs) -> list[str]:
        return self.local.record_unevaluated(*args, **kwargs)

    def evaluate(self, hypotheses, variant: str = "one-pass", seeds: int = 3, *,
                 parent_run_id: str | None = None, round_id: str | None = None,
                 run_id: str | None = None) -> list[Evaluation]:
        if run_id:  # one existing run (the `evaluate` verb's adoption): nothing to fan out
            return self.local.evaluate(hypotheses, variant, seeds, parent_run_id=parent_run_id,
                                       round_id=round_id, run_id=run_id)
        if variant not in VARIANTS:
            raise UsageError(f"unknown variant {variant!r} (choose {' or '.join(VARIANTS)})")
        if seeds < 1:
            raise UsageError("--seeds must be at least 1")
        if not hypotheses:
            return []
        ray = connect_ray(self.config.executor)
        check_capacity(ray, self.config.executor)
        self._cache_references(hypotheses, variant, seeds)
        size = self.config.executor.batch_size
        groups = [hypotheses[i:i + size] for i in range(0, len(hypotheses), size)]
        opened: list[list[Evaluation]] = []
        done: dict[str, Evaluation] = {}

        def open_batch(i: int) -> list[Evaluation]:
            """The runs of batch i, created just before it is sent (the first batch trains while
            the round's process creates the next one's runs)."""
            opened.append(self.local.open_runs(groups[i], variant, seeds, parent_run_id=parent_run_id,
                                               round_id=round_id))
            return opened[-1]

        def collect(batch: list[Evaluation]) -> None:  # read back while other batches still run
            for ev in batch:
                done[ev.run_id] = Evaluation.from_run(self.client.get_run(ev.run_id), ev.hypothesis)

        try:
            self._dispatch(ray, len(groups), open_batch, collect, variant, seeds)
        except BaseException as exc:
            for ev in (ev for batch in opened for ev in batch):  # as the local executor does
                if self.client.get_run(ev.run_id).info.status == "RUNNING":
                    finish(self.client, ev.run_id, failed=True, status_tag="error",
                           reasons=[f"evaluation aborted: {type(exc).__name__}: {exc}"])
            raise
        return [done[ev.run_id] for batch in opened for ev in batch]

    def _cache_references(self, hypotheses, variant: str, seeds: int) -> None:
        """Trains what the baselines cache lacks here, once, rather than on every node at once."""
        first = self.config.suite.first_seed
        for kind in dict.fromkeys(h.kind for h in hypotheses):
            exp = experiment_id(self.client, self.config.baselines_experiment_name(kind))
            get_references(self.client, exp, kind, TRAINING[variant], list(range(first, first + seeds)),
                           self.local.suite, self.config, self.progress)

    def _dispatch(self, ray, n_batches: int, open_batch, collect, variant: str, seeds: int) -> None:
        from tqdm import tqdm

        e = self.config.executor
        task = ray.remote(run_on_node).options(
            num_cpus=e.cpus_per_batch, resources={e.sandbox_resource: 1}, max_retries=e.max_attempts)
        self.progress(f"{variant}: {n_batches} Ray task(s) of up to {e.batch_size} hypotheses")
        batches, payloads, pending = [], [], {}
        with tqdm(total=n_batches, desc=f"{variant} on ray", unit="batch", file=sys.stderr,
                  disable=not sys.stderr.isatty()) as bar:
            try:
                while pending or len(batches) < n_batches:
                    if len(batches) < n_batches:  # send the next batch, then look for answers
                        batches.append(open_batch(len(batches)))
                        payloads.append(batch_payload(self.client.tracking_uri, self.config,
                                                      batches[-1], seeds))
                        pending[task.remote(payloads[-1])] = (len(batches) - 1, 1)
                        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0)
                    else:
                        ready, _ = ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        bar.update(self._answered(ray, task, ref, pending, batches, payloads, collect))
            finally:
                for ref in pending:
                    ray.cancel(ref, force=True)

    def _answered(self, ray, task, ref, pending, batches, payloads, collect) -> int:
        """One finished Ray task: its batch's runs read back (1: a batch done), or, where its node
        died, the batch sent again (0; up to max_attempts; its finished runs are kept there)."""
        from ray.exceptions import RayError, RayTaskError

        i, attempt = pending.pop(ref)
        try:
            answer = json.loads(ray.get(ref))
        except RayTaskError:
            raise  # the batch itself failed, as it would have here
        except RayError as exc:  # its node or worker died: MLflow knows what finished
            if attempt >= self.config.executor.max_attempts:
                raise
            self.progress(f"batch {i + 1} lost ({type(exc).__name__}); dispatching it again, its "
                          "finished runs are kept")
            pending[task.remote(payloads[i])] = (i, attempt + 1)
            return 0
        collect(batches[i])
        self.progress(f"batch {i + 1} done on node {answer['node'][:12]}: "
                      f"{len(answer['evaluated'])} evaluated, {len(answer['kept'])} kept")
        return 1
