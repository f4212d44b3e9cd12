"""What a scheduled job runs. Every execution is an MLflow run in the `mlr-jobs` experiment, with
the job id, its status, duration and error, so failures are visible in MLflow and `scheduler status`.
"""
from __future__ import annotations

import importlib
import json
import time
import traceback

JOBS_EXPERIMENT = "mlr-jobs"


def _builtin(run: str, tracking_uri: str, config_path: str | None, kwargs: dict) -> dict:
    from .. import commands

    if run == "discover":
        summary = commands.discover(tracking_uri=tracking_uri, config_path=config_path, **kwargs)
        return summary.to_dict()
    if run == "resume":
        summary = commands.discover(tracking_uri=tracking_uri, config_path=config_path, resume=True,
                                    **kwargs)
        return summary.to_dict() if summary else {"resumed": None}
    if run == "reward-train":
        return commands.reward("train", tracking_uri=tracking_uri, config_path=config_path, **kwargs)
    if run == "reward-promote":
        return commands.reward("promote", tracking_uri=tracking_uri, config_path=config_path, **kwargs)
    module, _, name = run.partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs) or {}


def execute(job_id: str, run: str, kwargs: dict, tracking_uri: str, config_path: str | None = None) -> dict:
    """Run one job once, recorded as an MLflow run; re-raises nothing (the scheduler goes on)."""
    from ..tracking import connect, experiment_id, finish, log, log_json

    client = connect(tracking_uri)
    run_id = client.create_run(experiment_id(client, JOBS_EXPERIMENT), run_name=job_id, tags={
        "mlr.role": "job", "mlr.job.id": job_id, "mlr.job.run": run}).info.run_id
    log(client, run_id, params={"kwargs": json.dumps(kwargs, sort_keys=True)})
    start = time.time()
    try:
        result = _builtin(run, tracking_uri, config_path, dict(kwargs))
    except BaseException as exc:
        log(client, run_id, metrics={"duration_s": time.time() - start},
            tags={"mlr.job.error": f"{type(exc).__name__}: {exc}"[:4000]})
        log_json(client, run_id, {"traceback": traceback.format_exc()[-8000:]}, "error.json")
        finish(client, run_id, failed=True, status_tag="failed", reasons=[f"{type(exc).__name__}: {exc}"])
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"ok": False, "run_id": run_id, "error": f"{type(exc).__name__}: {exc}"}
    log(client, run_id, metrics={"duration_s": time.time() - start})
    log_json(client, run_id, result, "result.json")
    finish(client, run_id, status_tag="succeeded")
    return {"ok": True, "run_id": run_id, "result": result}
