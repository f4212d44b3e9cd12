"""Evaluate hypotheses: one MLflow run each, validated, trained in one batched job, judged by win rates.

Hypothesis code runs only inside the sandbox (probes and training); this process orchestrates and
logs. Baselines come from `baselines.get_references` and are never retrained here.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable

from ..config import Config, UsageError
from ..hypothesis import Hypothesis
from ..sandbox import SandboxError, resolve_backend, warm_sandbox
from ..tracking import (RunEnd, RunStart, create_run, end_runs, end_tags, experiment_id, finish, log,
                        log_artifact_files, log_datasets, names, start_runs)
from ..tracking.runs import dataset_inputs
from ..validate import runs_any_code, validate_many
from .baselines import components_for, environment_json, get_references, project_tags
from .datasets import Dataset, check_kind_fits, load_suite
from .description import note_of
from .evaluation import UNCERTAINTY, Evaluation, run_name
from .screen import screen_score
from .shares import culprits, shares
from .training.dispatch import prewarm_training, regroup, side_by_side, train_models
from .winrate import summarize

VARIANTS = ("one-pass", "full", "confirm", "transfer")
# how each variant trains: a confirmation is full training on seeds and a split of its own, a
# transfer test full training on held-out tasks
TRAINING = {"one-pass": "one-pass", "full": "full", "confirm": "full", "transfer": "full"}
HTTP_REQUESTS_AT_ONCE = 4  # results recorded side by side on a tracking server


class Evaluator:
    """Evaluates hypotheses into a tracking store under one configuration."""

    def __init__(self, client, config: Config, progress: Callable[[str], None] = lambda _: None,
                 suite: list[Dataset] | None = None):
        self.client, self.config, self.progress = client, config, progress
        self._given = config  # `config` is this, resolved for the kind of the call's hypotheses
        self._suite = suite
        self._prewarming: list = []  # threads starting warm servers for this call's other shares
        # Seconds per phase, summed over calls: read by bench/throughput.py. "tracking_background"
        # overlaps the sandbox's work; "tracking" is what tracking adds to wall time.
        self.timings: dict[str, float] = defaultdict(float)

    @contextmanager
    def _timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] += time.perf_counter() - start

    @property
    def suite(self) -> list[Dataset]:
        if self._suite is None:
            self._suite = load_suite(self.config.suite)
        return self._suite

    def evaluate(self, hypotheses: list[Hypothesis], variant: str = "one-pass", seeds: int = 3, *,
                 parent_run_id: str | None = None, round_id: str | None = None,
                 run_id: str | None = None) -> list[Evaluation]:
        """Evaluate `hypotheses` (one run each; `run_id` adopts an existing run, for one hypothesis).

        The runs are created and described on a background thread while the sandbox validates and
        trains (that thread and the sandbox mostly wait on I/O), so tracking adds little wall time;
        only the results are written after training.
        """
        if variant not in VARIANTS:
            raise UsageError(f"unknown variant {variant!r} (choose {' or '.join(VARIANTS)})")
        self._for_kind(hypotheses)
        if seeds < 1:
            raise UsageError("--seeds must be at least 1")
        first = self.config.suite.first_seed
        if run_id and len(hypotheses) != 1:
            raise ValueError("an existing run can hold only one hypothesis")
        suite = self.suite
        for kind in dict.fromkeys(h.kind for h in hypotheses):
            check_kind_fits(kind, suite)  # before any run is opened
        # no backend is probed for a batch that runs no code (every file fails its static checks)
        backend = resolve_backend(self.config.sandbox.backend) if runs_any_code(hypotheses) else "none"
        evaluations = [Evaluation(hypothesis=h, run_id="", variant=variant) for h in hypotheses]
        pool = ThreadPoolExecutor(1, thread_name_prefix="mlr-tracking")
        opening = pool.submit(self._timed_call, "tracking_background", self._open_runs, evaluations, variant, seeds, parent_run_id, round_id,
                              run_id, backend, suite)
        try:
            self._run(evaluations, variant, list(range(first, first + seeds)), suite)
            with self._timed("tracking"):
                opening.result()  # normally long done: waiting here counts as tracking time
                self._record_all(evaluations)
        except BaseException as exc:
            wait([opening])
            pool.shutdown()
            for ev in evaluations:
                if ev.run_id and self.client.get_run(ev.run_id).info.status == "RUNNING":
                    finish(self.client, ev.run_id, failed=True, status_tag="error",
                           reasons=[f"evaluation aborted: {type(exc).__name__}: {exc}"])
            raise
        pool.shutdown()
        return evaluations

    def _for_kind(self, hypotheses: list[Hypothesis]) -> None:
        """The one-pass learning rate of the hypotheses' kind where the given config leaves it unset
        (config.ModelConfig.for_kind): what the runs record and train at, whichever path built the
        config. A call mixing kinds trains one-pass at `lr`."""
        kinds = {h.kind for h in hypotheses}
        model = self._given.model.for_kind(kinds.pop()) if len(kinds) == 1 else self._given.model
        self.config = dataclasses.replace(self._given, model=model)

    def open_runs(self, hypotheses: list[Hypothesis], variant: str, seeds: int, *,
                  parent_run_id: str | None = None, round_id: str | None = None) -> list[Evaluation]:
        """Create and describe one run per hypothesis, nothing trained: an executor hands the run
        ids to workers that call `evaluate_opened`."""
        self._for_kind(hypotheses)
        evaluations = [Evaluation(hypothesis=h, run_id="", variant=variant) for h in hypotheses]
        self._open_runs(evaluations, variant, seeds, parent_run_id, round_id, None,
                        resolve_backend(self.config.sandbox.backend), self.suite)
        return evaluations

    def evaluate_opened(self, evaluations: list[Evaluation], seeds: int) -> None:
        """Validate, train and record runs that `open_runs` created, exactly as `evaluate` does."""
        self._for_kind([ev.hypothesis for ev in evaluations])
        first = self.config.suite.first_seed
        self._run(evaluations, evaluations[0].variant, list(range(first, first + seeds)), self.suite)
        self._record_all(evaluations)

    def record_unevaluated(self, hypotheses: list[Hypothesis], validations: list, seeds: int, *,
                           parent_run_id: str | None = None, round_id: str | None = None) -> list[str]:
        """Runs for hypotheses that were validated but not trained (screened out by the reward
        model): FINISHED with mlr.status=screened, or FAILED with the validator's reasons. Their
        Project tags still name the one-pass entry point, so any of them can be evaluated later."""
        self._for_kind(hypotheses)
        evaluations = [Evaluation(hypothesis=h, run_id="", variant="screened") for h in hypotheses]
        backend = resolve_backend(self.config.sandbox.backend)
        try:
            self._open_runs(evaluations, "one-pass", seeds, parent_run_id, round_id, None, backend,
                            self.suite)
        finally:
            ends = []
            for ev, result in zip(evaluations, validations):
                if not ev.run_id:
                    continue
                # an invalid one was not screened out: it never reached the reward model's choice
                screened = {names.VARIANT: "screened", names.NOTE: note_of(ev if result.valid else dataclasses.replace(
                                ev, valid=False, reasons=result.reasons)),
                            names.RUN_NAME: run_name(ev.hypothesis.sha256, "screened" if result.valid else "invalid")}
                if result.valid:
                    ends.append(RunEnd(ev.run_id, tags=end_tags("screened", tags=screened)))
                else:
                    ends.append(RunEnd(ev.run_id, failed=True, tags=end_tags(
                        "invalid", result.reasons, {names.STAGE: result.stage, **screened})))
            end_runs(self.client, ends)
        return [ev.run_id for ev in evaluations]

    def _timed_call(self, phase: str, fn, *args):
        with self._timed(phase):
            return fn(*args)

    def _open_runs(self, evaluations, variant, seeds, parent_run_id, round_id, run_id, backend,
                   suite) -> None:
        """Everything that does not depend on results: the run, its tags, params, source, config
        and datasets; on a database store all runs in one transaction (tracking/bulk.py), then
        each run's artifacts in one upload."""
        model = dataclasses.asdict(self.config.model)
        params = {"variant": variant, "seeds": seeds, "suite": ",".join(ds.name for ds in suite),
                  "first_seed": self.config.suite.first_seed, "split_seed": self.config.suite.split_seed,
                  **{f"model.{k}": v for k, v in model.items()}}
        config_json = json.dumps(self.config.to_dict(), indent=1, sort_keys=True, default=str)
        env_json = environment_json(backend)
        inputs = dataset_inputs(suite)
        starts, experiments = {}, {}  # experiment -> [(evaluation, what starts its run)]; kind -> experiment
        for ev in evaluations:
            h = ev.hypothesis
            tags = {names.ROLE: "hypothesis", names.KIND: h.kind, names.HYPOTHESIS_SHA256: h.sha256,
                    names.EXPRESSION: h.expression,
                    names.GENERATOR: h.generator, names.VARIANT: variant, names.SANDBOX: backend,
                    names.TASKS: ",".join(ds.name for ds in suite),
                    **{names.TASK_PREFIX + ds.name: f"{ds.source or ds.name} on {ds.family}" for ds in suite},
                    **project_tags(variant, h.kind, seeds, [ds.name for ds in suite])}
            if round_id:
                tags[names.ROUND_ID] = round_id
            if parent_run_id:
                tags[names.PARENT_RUN_ID] = parent_run_id
            origin = h.origin or {}
            tags.update(origin.get("tags", {}))
            start = RunStart(run_name(h.sha256, variant), tags, {"kind": h.kind, **params}, inputs,
                             {**origin.get("artifacts", {}), names.HYPOTHESIS_ARTIFACT: h.source,
                              names.CONFIG_ARTIFACT: config_json, names.ENVIRONMENT_ARTIFACT: env_json})
            if h.kind not in experiments:
                experiments[h.kind] = experiment_id(self.client, self.config.experiment_name(h.kind))
            starts.setdefault(experiments[h.kind], []).append((ev, start))
        for exp, pairs in starts.items():
            try:
                if run_id:  # an MLflow Project run: ours to describe, not to create
                    [(ev, start)] = pairs
                    ev.run_id = create_run(self.client, exp, start.name, start.tags, run_id=run_id)
                    log(self.client, run_id, params=start.params)
                    log_artifact_files(self.client, run_id, start.artifacts)
                    log_datasets(self.client, run_id, suite)
                else:
                    start_runs(self.client, exp, [start for _, start in pairs])
            finally:  # the runs that exist, even when a later one failed to start
                for ev, start in pairs:
                    ev.run_id = ev.run_id or start.run_id
                    ev.artifact_uri = start.artifact_uri
        for ev in evaluations:
            metrics = (ev.hypothesis.origin or {}).get("metrics")
            if metrics:  # what proposing it measured (an LLM's tokens, say)
                log(self.client, ev.run_id, metrics=metrics)

    def _shares(self, n: int, variant: str, seeds: list[int], suite) -> list[tuple[range, list[int]]]:
        epochs = 1 if TRAINING[variant] == "one-pass" else self.config.model.max_epochs
        return shares(n, [len(ds.y_train) for ds in suite], len(seeds), epochs,
                      self.config.sandbox.workers)

    def _run(self, evaluations: list[Evaluation], variant: str, seeds: list[int], suite) -> None:
        extra = len(self._shares(len(evaluations), variant, seeds, suite)) - 1
        if not runs_any_code([ev.hypothesis for ev in evaluations]):
            extra = 0  # no server to start early: every hypothesis fails its static checks
        with warm_sandbox(self.config.sandbox) as sandbox:
            if extra:  # their servers start while the probes run and the references are looked up
                sandbox.bind()  # this call's own server first, so only the others are started
                self._prewarming = prewarm_training(self.config, extra)
            self.progress(f"validating {len(evaluations)} hypothesis(es)")
            with self._timed("validate"):
                results = validate_many([ev.hypothesis for ev in evaluations], sandbox,
                                        self.config.sandbox)
            for ev, result in zip(evaluations, results):
                if not result.valid:
                    ev.reject(result.reasons, result.stage)
            valid = [ev for ev in evaluations if ev.valid]
            if valid:
                self._train(valid, variant, seeds, suite, sandbox)

    def _record_all(self, evaluations: list[Evaluation]) -> None:
        """Each run's results.json, then its metrics, tags and end: on a database store all runs in
        one transaction (tracking/bulk.py); on a tracking server run by run, several at once."""
        if str(self.client.tracking_uri).startswith(("http://", "https://")):
            # a tracking server answers requests side by side
            def record(ev: Evaluation) -> None:
                ev.write_results(self.client)
                end_runs(self.client, [ev.ending()])

            with ThreadPoolExecutor(HTTP_REQUESTS_AT_ONCE, thread_name_prefix="mlr-record") as pool:
                list(pool.map(record, evaluations))
            return
        for ev in evaluations:
            ev.write_results(self.client)
        end_runs(self.client, [ev.ending() for ev in evaluations])

    def _train(self, evaluations: list[Evaluation], variant, seeds, suite, sandbox) -> None:
        by_kind: dict[str, list[Evaluation]] = {}
        for ev in evaluations:
            by_kind.setdefault(ev.hypothesis.kind, []).append(ev)
        refs = {}
        with self._timed("references"):
            for kind in by_kind:
                exp = experiment_id(self.client, self.config.baselines_experiment_name(kind))
                refs[kind] = get_references(self.client, exp, kind, TRAINING[variant], seeds, suite,
                                            self.config, self.progress, sandbox)
        self.progress(f"training {len(evaluations)} hypothesis(es) x {len(seeds)} seed(s) on "
                      f"{len(suite)} dataset(s), {variant}, batched")
        with self._timed("train"):
            raw = self._train_isolated(evaluations, variant, seeds, suite, sandbox)
        for i, ev in enumerate(evaluations):
            error = raw.get(i) if isinstance(raw.get(i), str) else None
            if error is not None:
                ev.reject([f"failed during training: {error}"], "training")
                continue
            baselines, sota = refs[ev.hypothesis.kind]
            c = self.config.compare
            metric = c.metric
            summary = summarize(raw[i], baselines, sota, c.loss_tol, c.ci_level, c.bootstrap, metric)
            ev.b_wr, ev.bsota_wr, ev.datasets = summary["b_wr"], summary["bsota_wr"], summary["datasets"]
            ev.val_b_wr, ev.val_bsota_wr = summary["val_b_wr"], summary["val_bsota_wr"]
            ev.screen_score = screen_score(raw[i], baselines, sota, c.loss_tol, metric)
            ev.metric, ev.log_loss_ratio = metric, summary["log_loss_ratio"]
            ev.uncertainty = {k: summary[k] for k in UNCERTAINTY}
            ev.per_seed = raw[i]

    def _train_isolated(self, evaluations, variant, seeds, suite, sandbox) -> dict:
        """Index -> Results, or index -> reason. The work is split into `shares`, each trained by
        its own sandboxed process (this call's `sandbox` for the first, a warm one of this
        process's pool for each other), side by side; a hypothesis that failed in any share failed."""
        parts = self._shares(len(evaluations), variant, seeds, suite)
        if len(parts) == 1:
            return self._train_job(evaluations, variant, seeds, suite, sandbox)

        prewarming, self._prewarming = self._prewarming, []

        def job(part, box, cancelled):
            hyps, datasets = part
            return self._train_job([evaluations[i] for i in hyps], variant, seeds,
                                   [suite[d] for d in datasets], box, cancelled)

        def wait_for_prewarming():  # a server being warmed is ready sooner than a new one
            for thread in prewarming:
                thread.join()

        by = "dataset" if len(parts[0][1]) < len(suite) else "hypothesis"
        self.progress(f"training in {len(parts)} sandboxed processes side by side, split by {by}")
        answers = side_by_side(parts, job, sandbox, self.config, before=wait_for_prewarming)
        out: dict = {}
        for (hyps, _), answer in zip(parts, answers):
            for j, value in answer.items():
                i = hyps[j]
                if isinstance(value, str) or isinstance(out.get(i), str):
                    out[i] = out[i] if isinstance(out.get(i), str) else value
                else:
                    out[i] = {**out.get(i, {}), **value}
        order = [ds.name for ds in suite]  # the suite's order, as one job gives it
        return {i: value if isinstance(value, str) else {d: value[d] for d in order if d in value}
                for i, value in out.items()}

    def _train_job(self, evaluations, variant, seeds, suite, sandbox,
                   cancelled: threading.Event | None = None) -> dict:
        """Index -> Results, or index -> reason. One job for all; if it fails, one job each, so
        that one hostile or broken hypothesis cannot sink the others. A share whose call was
        `cancelled` (another share failed the call) stops instead of retrying."""
        models = [{"key": f"{i}:{s}", "seed": s,
                   "components": components_for(ev.hypothesis.kind, ev.hypothesis.source)}
                  for i, ev in enumerate(evaluations) for s in seeds]
        try:
            answer = train_models(models, suite, TRAINING[variant], self.config, sandbox)
        except SandboxError as exc:
            if cancelled is not None and cancelled.is_set():
                raise
            if len(evaluations) == 1:
                return {0: exc.reason}
            stopped = culprits(exc, len(evaluations))
            if stopped:  # killed on one call's time limit: those fail, the others train again
                rest = [i for i in range(len(evaluations)) if i not in stopped]
                self.progress(f"{len(stopped)} hypothesis(es) stopped ({exc.reason}); retrying the "
                              f"other {len(rest)} in one batch")
                again = self._train_job([evaluations[i] for i in rest], variant, seeds, suite,
                                        sandbox, cancelled) if rest else {}
                return {**{i: exc.reason for i in stopped},
                        **{i: again[j] for j, i in enumerate(rest)}}
            self.progress(f"the batched job failed ({exc.reason}); retrying the {len(evaluations)} "
                          "hypotheses one by one")
            out = {}
            for i, ev in enumerate(evaluations):
                one = self._train_job([ev], variant, seeds, suite, sandbox, cancelled)
                out[i] = one[0]
            return out
        out = {}
        for i in range(len(evaluations)):
            failed = [answer["errors"][f"{i}:{s}"] for s in seeds if f"{i}:{s}" in answer["errors"]]
            out[i] = failed[0] if failed else regroup(answer["results"], str(i), seeds)
        return out
