"""A suite check as one MLflow run: params, metrics, the suite's digest, report and figure.

The run lives in experiment `<experiment_prefix><kind>-instrument` (tracking.names), tagged
`mlr.role=suite-check`, `mlr.kind` and `mlr.suite.digest`, so that a round can find the check that
measured the very suite it runs on (`find_check`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path

from ..config import Config
from ..evaluate.datasets import Dataset
from ..tracking import create_run, experiment_id, finish, log, log_datasets, names
from ..tracking.queries import latest_suite_check
from ..tracking.runs import end_failed


def suite_digest(suite: list[Dataset], config: Config) -> str:
    """What a suite's numbers depend on besides the component: each task's dataset digest (arrays
    and split) and model family, the model configuration, and the win rule (`[compare] metric`)
    where it is not accuracy: a check under one rule says nothing of win rates under the other, and
    checks made before the rule existed keep their digest. Likewise the one-pass learning rate
    counts only where it differs from `lr` (what every check before it trained one-pass at)."""
    model = dataclasses.asdict(config.model)
    if model.get("one_pass_lr") in (None, model["lr"]):
        model.pop("one_pass_lr", None)
    material = {"datasets": {d.name: d.digest for d in suite}, "families": {d.name: d.family for d in suite},
                "model": model}
    if config.compare.metric != "accuracy":
        material["metric"] = config.compare.metric
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def find_check(client, config: Config, kind: str, suite: list[Dataset]):
    """The newest finished suite check of `kind` on exactly this suite, or None (creates nothing)."""
    exp = client.get_experiment_by_name(names.instrument_experiment(config.experiment_prefix, kind))
    if exp is None:
        return None
    return latest_suite_check(client, exp.experiment_id, kind, suite_digest(suite, config))


def metrics_of(out: dict) -> dict[str, float]:
    metrics = {names.FULL_NOISE_CEILING: out["full_noise_ceiling"], names.CHEAP_VS_FULL: out["cheap_vs_full"],
               "order_inversions": len(out["order_check"]["inversions"]),
               "order_inversions_on_both_sets": out["order_check"].get("inversions_on_both_sets", 0),
               names.VERDICT_NOISE_CEILING: out["verdict_noise_ceiling"], names.CHEAP_VS_VERDICT: out["cheap_vs_verdict"]}
    for key, per_task in (("", out["tasks"]), ("one_pass.", out["tasks_one_pass"])):
        for task, values in per_task.items():
            for stat, value in values.items():
                metrics[names.dataset_metric(task, key + stat)] = value
    for rung, by_stat in out["noise_ceilings"].items():
        for stat, by_group in by_stat.items():
            for group, value in by_group.items():
                metrics[names.ceiling_metric(rung, stat, group)] = value
    for target, by_stat in out["cheap_agreement"].items():
        for stat, by_group in by_stat.items():
            for group, value in by_group.items():
                metrics[names.agreement_metric(target, stat, group)] = value
    return metrics


NOTE_LIMIT = 8000  # characters of a tag's value that `tracking.log` keeps


def _note(report: str) -> str:
    """The run's description: the whole report when it fits a tag, else its head (verdicts, tasks)."""
    if len(report) <= NOTE_LIMIT:
        return report
    head = report.split("\n## Noise ceilings")[0][:NOTE_LIMIT - 100]
    return f"{head}\n\nThe whole report: artifact `{names.SUITE_CHECK_REPORT}`.\n"


def record(client, config: Config, kind: str, suite: list[Dataset], out: dict, report: str,
           figure: bytes, raw: dict | None = None) -> str:
    """Log the check as one finished run -> its id (a failure ends it FAILED, then raises)."""
    exp_id = experiment_id(client, names.instrument_experiment(config.experiment_prefix, kind))
    tasks = ",".join(d.name for d in suite)
    run_id = create_run(client, exp_id, f"suite check {kind} · {len(suite)} tasks", {
        names.ROLE: names.SUITE_CHECK_ROLE, names.KIND: kind, names.SUITE_DIGEST: suite_digest(suite, config),
        names.TASKS: tasks, names.SCREEN_STATISTIC: out["screen_statistic"]})
    try:
        out["run_id"] = run_id
        log(client, run_id, metrics=metrics_of(out), tags={names.NOTE: _note(report)},
            params={"kind": kind, "seeds": out["seeds"]["per_set"], "seeds_a": out["seeds"]["a"],
                    "seeds_b": out["seeds"]["b"], "tasks": tasks, "panel": len(out["members"]),
                    "screen_statistic": out["screen_statistic"]})
        with tempfile.TemporaryDirectory(prefix="mlr-suite-check-") as tmp:
            Path(tmp, names.SUITE_CHECK_ARTIFACT).write_text(json.dumps(out, indent=1, sort_keys=True, default=str))
            Path(tmp, names.SUITE_CHECK_REPORT).write_text(report)
            Path(tmp, names.SUITE_CHECK_FIGURE).write_bytes(figure)
            if raw is not None:
                Path(tmp, names.SUITE_CHECK_RESULTS).write_text(json.dumps(raw, sort_keys=True))
            client.log_artifacts(run_id, tmp)
        log_datasets(client, run_id, suite)
        finish(client, run_id, status_tag="evaluated")
    except BaseException as exc:
        end_failed(client, run_id, exc)
        raise
    return run_id
