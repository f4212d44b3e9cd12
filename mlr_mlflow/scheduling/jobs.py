"""What a scheduled job runs. Every execution is an MLflow run in the `mlr-jobs` experiment, with
the job id, its status, duration and error, so failures are visible in MLflow and `scheduler status`.

Jobs call the layers below the command line (rounds, the reward registry, audits) directly.

A `discover` or `resume` job waits (up to `wait_hours`, default 12) while another round of its kind
runs anywhere (the kind's lease, round/resume.py), so the nightly round and a resume never overlap and
neither is lost. A `discover` job's `executor = "ray"` (and `ray_address`) runs its evaluations
on a Ray cluster, as `discover --executor ray` does. When a job succeeds, the jobs that run
`after` it (`then`) run next, in order.
"""
from __future__ import annotations

import importlib
import json
import time
import traceback
from ..config import UsageError

JOBS_EXPERIMENT = "mlr-jobs"
LLM_KEYS = ("model", "base_url", "prompt", "context")  # context: a directory of papers
WAIT_HOURS = 12.0


def _discover(client, config, kwargs: dict, resume: bool) -> dict:
    from ..config import for_discovery
    from ..executors import check_executor, with_executor
    from ..kinds import get_kind
    from ..round import discover

    kind = kwargs.pop("kind", "activation")
    get_kind(kind)
    llm = {key: kwargs.pop(key) for key in LLM_KEYS if key in kwargs}
    config = with_executor(for_discovery(config, kwargs.pop("generator", None), llm),
                           kwargs.pop("executor", None), kwargs.pop("ray_address", None))
    check_executor(config)
    wait_s = float(kwargs.pop("wait_hours", WAIT_HOURS)) * 3600
    summary = discover(client, config, kind, resume=resume, wait_s=wait_s, **kwargs)
    if summary is None:
        return {"resumed": None}
    return summary.to_dict()


def _builtin(run: str, client, config_path: str | None, kwargs: dict) -> tuple[dict, dict]:
    """(the job's result, metrics for its job run)."""
    from ..config import load_config

    if ":" in run:
        module, _, name = run.partition(":")
        return getattr(importlib.import_module(module), name)(**kwargs) or {}, {}
    config = load_config(config_path)
    if run in ("discover", "resume"):
        return _discover(client, config, kwargs, resume=run == "resume"), {}
    if run in ("reward-train", "reward-promote"):
        from ..reward import registry

        kind = kwargs.pop("kind", "activation")
        if run == "reward-promote":
            return registry.promote(client, config, kind), {}
        from ..reward.features.embed import DEFAULT_ENCODER

        result = registry.train(client, config, kind, kwargs.get("encoder") or DEFAULT_ENCODER,
                                features=registry.parse_features(kwargs.get("features")))
        return result.to_dict(kind), {}
    if run == "audit-sample":
        from ..audit import audit_sample

        result = audit_sample(client, config, **kwargs)
        return result, {"audits": result["audited"], "pass_rate": result["pass_rate"]}
    raise UsageError(f"unknown built-in job {run!r}")


def execute(job_id: str, run: str, kwargs: dict, tracking_uri: str, config_path: str | None = None,
            then: list | None = None) -> dict:
    """Run one job once, recorded as an MLflow run, then on success the jobs of `then`
    ([id, run, kwargs, their own then], ...); re-raises nothing (the scheduler goes on)."""
    outcome = _execute_one(job_id, run, kwargs, tracking_uri, config_path)
    if outcome["ok"]:
        followers = [execute(f_id, f_run, f_kwargs, tracking_uri, config_path, f_then)
                     for f_id, f_run, f_kwargs, f_then in then or ()]
        if followers:
            outcome["then"] = followers
    return outcome


def _execute_one(job_id: str, run: str, kwargs: dict, tracking_uri: str,
                 config_path: str | None = None) -> dict:
    from ..tracking import connect, experiment_id, finish, log, log_json, names

    client = connect(tracking_uri)
    run_id = client.create_run(experiment_id(client, JOBS_EXPERIMENT), run_name=job_id, tags={
        names.ROLE: "job", names.JOB_ID: job_id, names.JOB_RUN: run}).info.run_id
    log(client, run_id, params={"kwargs": json.dumps(kwargs, sort_keys=True)})
    start = time.time()
    try:
        result, metrics = _builtin(run, client, config_path, dict(kwargs))
    except BaseException as exc:
        log(client, run_id, metrics={"duration_s": time.time() - start},
            tags={names.JOB_ERROR: f"{type(exc).__name__}: {exc}"[:4000]})
        log_json(client, run_id, {"traceback": traceback.format_exc()[-8000:]}, names.JOB_ERROR_ARTIFACT)
        finish(client, run_id, failed=True, status_tag="failed", reasons=[f"{type(exc).__name__}: {exc}"])
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"ok": False, "run_id": run_id, "error": f"{type(exc).__name__}: {exc}"}
    log(client, run_id, metrics={"duration_s": time.time() - start, **metrics})
    log_json(client, run_id, result, names.JOB_RESULT_ARTIFACT)
    failed = metrics.get("pass_rate") is not None and metrics["pass_rate"] < 1.0
    if failed:  # an audit that did not reproduce everything is a failure `scheduler status` shows
        error = f"{result['audited'] - result['reproduced']} of {result['audited']} audited run(s) not reproduced"
        finish(client, run_id, failed=True, status_tag="failed", reasons=[error],
               tags={names.JOB_ERROR: error})
        return {"ok": False, "run_id": run_id, "error": error, "result": result}
    finish(client, run_id, status_tag="succeeded")
    return {"ok": True, "run_id": run_id, "result": result}
