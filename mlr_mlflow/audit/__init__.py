"""Audit: re-execute hypothesis and baseline runs from their own MLflow record and compare.

An audit is a run of its own in the experiment `mlr-audits` (`mlr.role=audit`, `mlr.audit.of`) with
`audit.json` and a readable `audit.md`; the re-execution is the MLflow Project run nested under it
(`mlr.role=audit-rerun`), and the audited run gets `mlr.audit.verdict` and `mlr.audited_by`.
What is compared and how a verdict is reached: `compare.py`.
"""
from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import Config
from ..hypothesis import Hypothesis
from ..kinds import KINDS, get_kind
from ..tracking import experiment_id, finish, log, log_json, names
from ..tracking.queries import hypothesis_runs, newest_runs
from .compare import NOT_REPRODUCED, REPRODUCED, Comparison, RunRecord, Tolerances, compare
from .report import markdown
from .recorded import TamperedRecord
from .rerun import AuditError, docker_ready, local_path, project_call, run_docker, run_local

AUDITS_EXPERIMENT = "mlr-audits"
AUDITABLE = ("hypothesis", "baseline")
MAX_SOURCE_BYTES = 200_000  # ten times the validator's limit on a hypothesis source
MAX_JSON_BYTES = 20_000_000
ENVS = ("local", "docker")


@dataclass
class AuditResult:
    run_id: str
    audit_run_id: str
    verdict: str
    max_abs_diff: float
    differences: list[dict] = field(default_factory=list)
    rerun_run_id: str | None = None
    compared: int = 0

    @property
    def reproduced(self) -> bool:
        return self.verdict != NOT_REPRODUCED

    def to_dict(self) -> dict:
        return {"reproduced": self.reproduced, "run_id": self.run_id, "audit_run_id": self.audit_run_id,
                "max_abs_diff": self.max_abs_diff, "verdict": self.verdict,
                "differences": self.differences, "rerun_run_id": self.rerun_run_id}


def _get_run(client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise AuditError(f"no run {run_id!r} in the tracking store") from None


def _download(client, run_id: str, name: str, into: Path, required: bool = True) -> Path | None:
    from mlflow.exceptions import MlflowException

    try:
        return Path(client.download_artifacts(run_id, name, str(into)))
    except (MlflowException, OSError):
        if required:
            raise AuditError(f"run {run_id}: its artifact {name} is gone; it cannot be audited") from None
        return None


def read_record(client, run, into: Path, required: bool = True) -> RunRecord:
    into.mkdir(parents=True, exist_ok=True)
    get = lambda name, req=required: _download(client, run.info.run_id, name, into, req)  # noqa: E731
    source, results = get(names.HYPOTHESIS_ARTIFACT), get(names.RESULTS_ARTIFACT)
    config, env = get(names.CONFIG_ARTIFACT), get(names.ENVIRONMENT_ARTIFACT, False)
    return RunRecord(run_id=run.info.run_id, tags=dict(run.data.tags), params=dict(run.data.params),
                     metrics=dict(run.data.metrics), results=_results(_load(results)) or {},
                     config=_load(config), environment=_load(env),
                     datasets={d.dataset.name: d.dataset.digest for d in run.inputs.dataset_inputs},
                     source=_text(source, MAX_SOURCE_BYTES) if source else "")


def _text(path: Path, limit: int) -> str:
    """A recorded artifact's text: a regular file of at most `limit` bytes (a record is untrusted)."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > limit:
        raise TamperedRecord(path.name, f"not a regular file of at most {limit} bytes")
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise TamperedRecord(path.name, "not UTF-8 text") from None


def _load(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        data = json.loads(_text(path, MAX_JSON_BYTES))
    except ValueError:
        raise TamperedRecord(path.name, "not JSON") from None
    if not isinstance(data, dict):
        raise TamperedRecord(path.name, f"a JSON {type(data).__name__}, not an object")
    return data


def _results(results: dict | None) -> dict | None:
    """results.json: dataset -> seed -> {metric: number or null}, or the record is refused."""
    for ds, seeds in (results or {}).items():
        if not isinstance(seeds, dict) or not all(
                isinstance(m, dict) and all(v is None or isinstance(v, (int, float)) for v in m.values())
                for m in seeds.values()):
            raise TamperedRecord(names.RESULTS_ARTIFACT, f"{str(ds)[:40]!r} is not seed -> metric numbers")
    return results


def _check_auditable(run) -> None:
    tags = run.data.tags
    role = tags.get(names.ROLE)
    if role not in AUDITABLE:
        raise AuditError(f"run {run.info.run_id} is not a hypothesis or baseline run "
                         f"({names.ROLE}={role or 'none'}); only those can be audited")
    if run.info.status != "FINISHED" or tags.get(names.STATUS) != "evaluated":
        raise AuditError(f"run {run.info.run_id} was not evaluated (status {run.info.status}, "
                         f"{names.STATUS}={tags.get(names.STATUS)}): there are no results to reproduce")


def _expected(record: RunRecord, comparison: Comparison) -> str | None:
    """The hash the source should have; for a baseline, the source must be the packaged component."""
    kind = record.tags.get(names.KIND, "")
    if record.tags.get(names.ROLE) == "baseline":
        component = record.tags.get(names.BASELINE_COMPONENT, "")
        if kind in KINDS and record.source != get_kind(kind).component(component):
            comparison.add("tamper", names.HYPOTHESIS_ARTIFACT, f"baseline {component}", "packaged component differs",
                           False)
        return None
    return Hypothesis(kind, record.source).sha256


def audit_run(client, config: Config, run_id: str, env: str = "local",
              progress: Callable[[str], None] = lambda _: None) -> AuditResult:
    if env not in ENVS:
        raise AuditError(f"unknown --env {env!r} (choose local or docker)")
    original = _get_run(client, run_id)
    _check_auditable(original)
    tol = Tolerances(config.audit.acc_tol, config.audit.loss_rtol, config.audit.wr_tol)
    with tempfile.TemporaryDirectory(prefix="mlr-audit-") as tmp:
        call, refused, tags = None, None, dict(original.data.tags)
        try:  # everything the run recorded is checked before anything is executed
            record = read_record(client, original, Path(tmp, "original"))
            call = project_call(record.tags, Path(tmp, "original"), Path(tmp, "input"), config)
        except TamperedRecord as exc:
            refused = exc
        if env == "docker" and call is not None:
            docker_ready()
        exp = experiment_id(client, AUDITS_EXPERIMENT)
        sha8 = tags.get(names.HYPOTHESIS_SHA256, "")[:8] or tags.get(names.BASELINE_COMPONENT, "baseline")
        audit_id = client.create_run(exp, run_name=f"audit {sha8} {tags.get(names.VARIANT, '')}", tags={
            names.ROLE: "audit", names.AUDIT_OF: run_id, names.AUDIT_ENV: env,
            names.KIND: tags.get(names.KIND, "")}).info.run_id
        try:
            if call is None:
                result = _refuse(client, run_id, audit_id, refused, progress)
            else:
                result = _rerun(client, config, original, record, call, env, exp, audit_id, Path(tmp),
                                progress, tol)
            log(client, audit_id, metrics={names.AUDIT_MAX_ABS_DIFF: result.max_abs_diff,
                                           names.AUDIT_REPRODUCED: float(result.reproduced),
                                           names.AUDIT_DIFFERENCES: len(result.differences),
                                           names.AUDIT_COMPARED: result.compared},
                tags={names.AUDIT_VERDICT: result.verdict,
                      names.AUDIT_RERUN: result.rerun_run_id or "none: the record was refused"})
            log_json(client, audit_id, result.to_dict(), names.AUDIT_ARTIFACT)
            client.log_text(audit_id, markdown(result.to_dict(), tags), names.AUDIT_REPORT)
            log(client, run_id, tags={names.AUDIT_VERDICT: result.verdict, names.AUDITED_BY: audit_id})
        except BaseException as exc:
            finish(client, audit_id, failed=True, status_tag="error",
                   reasons=[f"{type(exc).__name__}: {exc}"])
            raise
        finish(client, audit_id, status_tag=result.verdict, failed=not result.reproduced)
    progress(f"run {run_id}: {result.verdict} (max abs diff {result.max_abs_diff:.3g}, "
             f"{len(result.differences)} difference(s))")
    return result


def _refuse(client, run_id: str, audit_id: str, refused: TamperedRecord, progress) -> AuditResult:
    """A record that names what this package would not have recorded: reported, never executed."""
    progress(f"run {run_id}: its record is refused ({refused}); nothing it names is executed")
    comparison = Comparison()
    comparison.add("tamper", refused.key, refused.reason, "refused: not re-executed", False)
    return AuditResult(run_id, audit_id, comparison.verdict, 0.0, comparison.differences, None)


def _rerun(client, config: Config, original, record: RunRecord, call, env: str, exp: str,
           audit_id: str, tmp: Path, progress, tol: Tolerances) -> AuditResult:
    """Re-execute a checked Project call and compare its run with the original."""
    run_id = original.info.run_id
    progress(f"re-executing run {run_id} ({call.entry_point}, {env}) from its own record")
    if env == "docker":
        # where the run's own and the cached baselines' artifacts are read
        exps = [client.get_experiment(original.info.experiment_id),
                client.get_experiment_by_name(config.baselines_experiment_name(
                    record.tags.get(names.KIND, "")))]
        dirs = [d for d in (local_path(e.artifact_location) for e in exps if e) if d]
        rerun_id = run_docker(client.tracking_uri, exp, call.project, call.entry_point, call.params,
                              tmp, dirs)
    else:
        rerun_id = run_local(client.tracking_uri, exp, call.project, call.entry_point, call.params)
    log(client, rerun_id, tags={names.ROLE: "audit-rerun", names.AUDIT_OF: run_id,
                                names.PARENT_RUN_ID: audit_id})
    rerun = client.get_run(rerun_id)
    comparison = Comparison()
    for key, recorded, used in call.drift:  # another version's record, re-run with this one's Project
        comparison.add("project", key, recorded, used, True)
    expected = _expected(record, comparison)
    if rerun.info.status != "FINISHED":
        comparison.add("metric", "re-execution", "FINISHED", rerun.info.status, False)
    else:  # a failed re-execution has nothing else worth comparing
        fresh = read_record(client, rerun, tmp / "rerun", required=False)
        found = compare(record, fresh, tol, expected)
        comparison.differences += found.differences
        comparison.max_abs_diff, comparison.compared = found.max_abs_diff, found.compared
    return AuditResult(run_id, audit_id, comparison.verdict, comparison.max_abs_diff,
                       comparison.differences, rerun_id, comparison.compared)


def _many(client, config, run_ids: list[str], env: str, progress) -> list[AuditResult]:
    results = []
    for i, run_id in enumerate(run_ids, start=1):
        progress(f"audit {i}/{len(run_ids)}")
        results.append(audit_run(client, config, run_id, env, progress))
    return results


def audit_round(client, config: Config, round_run_id: str, env: str = "local",
                progress: Callable[[str], None] = lambda _: None) -> list[AuditResult]:
    """A round's leaderboard: its full-trained hypotheses (its one-pass ones if none was)."""
    run = _get_run(client, round_run_id)
    if run.data.tags.get(names.ROLE) != "round":
        raise AuditError(f"run {round_run_id} is not a round run (mlr.role="
                         f"{run.data.tags.get(names.ROLE) or 'none'})")
    round_id = run.data.tags[names.ROUND_ID]
    evaluated = [r for r in hypothesis_runs(client, run.info.experiment_id,
                                            f"tags.`{names.ROUND_ID}` = '{round_id}' and "
                                            f"tags.`{names.STATUS}` = 'evaluated'")
                 if r.info.status == "FINISHED"]
    chosen = [r for r in evaluated if r.data.tags.get(names.VARIANT) == "full"] or \
        [r for r in evaluated if r.data.tags.get(names.VARIANT) == "one-pass"]
    if not chosen:
        raise AuditError(f"round {round_run_id} has no evaluated hypothesis to audit")
    chosen.sort(key=lambda r: -(r.data.metrics.get(names.B_WR) or 0.0))
    return _many(client, config, [r.info.run_id for r in chosen], env, progress)


def sample_runs(client, config: Config, n: int, seed: int | None = None) -> list[str]:
    """`n` random runs among the recent evaluated hypothesis runs of every kind, plus each kind's
    current best (by full B-WR, else one-pass)."""
    bests: list[str] = []
    others: list[str] = []
    rng = random.Random(seed)
    for kind in KINDS:
        exp = client.get_experiment_by_name(config.experiment_name(kind))
        if exp is None:
            continue
        recent = [r for r in newest_runs(client, exp.experiment_id, 200,
                                         f"tags.`{names.ROLE}` = 'hypothesis' and "
                                         f"tags.`{names.STATUS}` = 'evaluated'")
                  if r.info.status == "FINISHED"]
        if not recent:
            continue
        best = max(recent, key=lambda r: (r.data.tags.get(names.VARIANT) == "full",
                                          r.data.metrics.get(names.B_WR) or 0.0))
        bests.append(best.info.run_id)
        others += [r.info.run_id for r in recent if r.info.run_id != best.info.run_id]
    return bests + rng.sample(others, min(n, len(others)))


def audit_sample(client, config: Config, n: int | None = None, env: str = "local",
                 seed: int | None = None, progress: Callable[[str], None] = lambda _: None) -> dict:
    run_ids = sample_runs(client, config, config.audit.sample if n is None else n, seed)
    results = _many(client, config, run_ids, env, progress)
    reproduced = sum(r.reproduced for r in results)
    return {"audits": [r.to_dict() for r in results], "audited": len(results),
            "reproduced": reproduced, "pass_rate": reproduced / len(results) if results else 1.0}


__all__ = ["AuditError", "AuditResult", "audit_run", "audit_round", "audit_sample", "sample_runs",
           "AUDITS_EXPERIMENT", "REPRODUCED"]
