"""Starting and ending many runs at once.

MLflow's public calls end a run in two requests (`log_batch`, `set_terminated`). On a database
store each `log_batch` opens four transactions and loads the run four times: about 28 ms of CPU a
run on sqlite, a fifth of a one-pass batch's wall time once training got fast (docs/benchmarks.md).
Starting one costs as much again (create, params, dataset inputs: 36 ms), on a thread beside the
training processes, for the same two cores.
On a database store (sqlite, PostgreSQL: MLflow's `SqlAlchemyStore`) `start_runs` and `end_runs` write the same
rows through MLflow's own SQLAlchemy models and session (private API, reached only through
mlflow_internals.py), for a whole batch in one transaction: the
same validation of keys and values, the same run rows, tags, params and dataset inputs (a dataset
row shared per experiment, name and digest), the same metric history and latest-metric rules, the
same run name, status and end time. tests/test_bulk.py checks that they leave exactly the runs the
public calls leave, on sqlite and PostgreSQL.

Everything else takes MLflow's public path run by run: a tracking server over HTTP (workers never
touch its database), plugin stores, and any batch the one transaction refuses (a run deleted or
missing, a metric already logged with the same timestamp, a database error). The transaction
rolls back whole, so the public path starts from nothing written and raises what MLflow raises.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from . import mlflow_internals as internals
from . import names
from .runs import log, log_artifact_files

_log = logging.getLogger(__name__)

CHUNK = 500  # runs per transaction: keeps every IN (...) list well inside the databases' limits


@dataclass
class RunStart:
    """What starts one run: its name, tags, params, dataset inputs (`runs.dataset_inputs`) and small
    text artifacts (path -> text). `start_runs` fills in `run_id` and `artifact_uri` as soon as
    the run exists, so a caller whose batch fails half-way still knows which runs to end."""
    name: str
    tags: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    datasets: list = field(default_factory=list)
    artifacts: dict = field(default_factory=dict)
    run_id: str = ""
    artifact_uri: str = ""


@dataclass
class RunEnd:
    """What ends one run: metrics (non-finite ones are left out, as `runs.log` does), tags, and
    FINISHED or FAILED."""
    run_id: str
    metrics: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    failed: bool = False


def start_runs(client, experiment_id: str, starts: list[RunStart]) -> None:
    """Create and describe one run per `starts` in `experiment_id`. On a database store the runs
    are created in one transaction, then their artifacts written where it put them."""
    store = internals.database_store(client)
    done = 0
    if store is not None:
        try:
            while done < len(starts):
                _start_in_one_transaction(store, experiment_id, starts[done:done + CHUNK])
                done = min(done + CHUNK, len(starts))
        except Exception as exc:  # this chunk rolled back whole; those before it stay created
            _log.warning("starting %d runs in one transaction failed (%s: %s); starting them run by run",
                         len(starts) - done, type(exc).__name__, exc)
        for start in starts[:done]:
            log_artifact_files(client, start.run_id, start.artifacts, start.artifact_uri)
    for start in starts[done:]:
        run = client.create_run(experiment_id, tags=start.tags, run_name=start.name)
        start.run_id, start.artifact_uri = run.info.run_id, run.info.artifact_uri
        log(client, start.run_id, params=start.params)
        log_artifact_files(client, start.run_id, start.artifacts)
        if start.datasets:
            client.log_inputs(start.run_id, datasets=start.datasets)


def end_runs(client, ends: list[RunEnd]) -> str:
    """End every run of `ends`; returns how: "one transaction" or "run by run"."""
    store = internals.database_store(client)
    done = 0
    if store is not None and len({e.run_id for e in ends}) == len(ends):
        try:
            while done < len(ends):
                _end_in_one_transaction(store, ends[done:done + CHUNK])
                done = min(done + CHUNK, len(ends))
            return "one transaction"
        except Exception as exc:  # this chunk rolled back whole; those before it stay ended
            _log.warning("ending %d runs in one transaction failed (%s: %s); ending them run by run",
                         len(ends) - done, type(exc).__name__, exc)
    for e in ends[done:]:
        log(client, e.run_id, metrics=e.metrics, tags=e.tags)
        client.set_terminated(e.run_id, status="FAILED" if e.failed else "FINISHED")
    return "run by run"


def _end_in_one_transaction(store, ends: list[RunEnd]) -> None:
    from mlflow.entities import LifecycleStage
    from mlflow.exceptions import MlflowException
    from sqlalchemy import insert

    db = internals.models()
    SqlLatestMetric, SqlMetric, SqlRun, SqlTag = db.SqlLatestMetric, db.SqlMetric, db.SqlRun, db.SqlTag

    now = int(time.time() * 1000)
    metrics, tags = [], []
    for e in ends:
        for key, value in e.metrics.items():
            if value is None or not math.isfinite(value):
                continue
            internals.validate_metric(key, float(value), now, 0)
            metrics.append({"run_uuid": e.run_id, "key": key, "value": float(value),
                            "timestamp": now, "step": 0, "is_nan": False})
        for key, value in e.tags.items():
            tag = internals.validate_tag(key, str(value)[:8000])  # truncated as runs.log truncates
            tags.append((e.run_id, tag.key, tag.value))
    ids = [e.run_id for e in ends]
    with internals.write_session(store) as session:
        runs = {r.run_uuid: r for r in session.query(SqlRun).filter(SqlRun.run_uuid.in_(ids))}
        for run_id in ids:
            if run_id not in runs or runs[run_id].lifecycle_stage != LifecycleStage.ACTIVE:
                raise MlflowException(f"run {run_id} is missing or not active")
        if metrics:
            session.execute(insert(SqlMetric), metrics)
            keys = sorted({m["key"] for m in metrics})
            latest = {(m.run_uuid, m.key): m for m in session.query(SqlLatestMetric).filter(
                SqlLatestMetric.run_uuid.in_(ids), SqlLatestMetric.key.in_(keys))
                .order_by(SqlLatestMetric.run_uuid, SqlLatestMetric.key).with_for_update()}
            fresh = []
            for m in metrics:
                old = latest.get((m["run_uuid"], m["key"]))
                if old is None:
                    fresh.append(m)
                elif internals.replaces_latest(m["step"], m["timestamp"], m["value"], old):
                    old.value, old.step, old.timestamp, old.is_nan = (
                        m["value"], m["step"], m["timestamp"], m["is_nan"])
            if fresh:
                session.execute(insert(SqlLatestMetric), fresh)
        if tags:
            current = {(t.run_uuid, t.key): t for t in session.query(SqlTag).filter(
                SqlTag.run_uuid.in_(ids), SqlTag.key.in_(sorted({k for _, k, _ in tags})))}
            new = {}
            for run_id, key, value in tags:
                if (run_id, key) in current:
                    current[(run_id, key)].value = value
                else:
                    new[(run_id, key)] = {"run_uuid": run_id, "key": key, "value": value}
                if key == names.RUN_NAME:
                    runs[run_id].name = value  # MLflow keeps the run name in both places
            if new:
                session.execute(insert(SqlTag), list(new.values()))
        for e in ends:
            runs[e.run_id].status = "FAILED" if e.failed else "FINISHED"
            runs[e.run_id].end_time = now


def _start_in_one_transaction(store, experiment_id: str, starts: list[RunStart]) -> None:
    import uuid

    from mlflow.entities import LifecycleStage
    from mlflow.exceptions import MlflowException
    from sqlalchemy import insert

    db = internals.models()
    SqlDataset, SqlInput, SqlInputTag, SqlParam, SqlRun, SqlTag = (
        db.SqlDataset, db.SqlInput, db.SqlInputTag, db.SqlParam, db.SqlRun, db.SqlTag)
    user_tag = internals.user_tag()

    experiment = store.get_experiment(experiment_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise MlflowException(f"experiment {experiment_id} is not active")
    now = int(time.time() * 1000)
    runs, tags, params, created = [], [], [], []
    for i, start in enumerate(starts):
        run_id = uuid.uuid4().hex
        uri = internals.run_artifact_uri(experiment.artifact_location, run_id)
        created.append((run_id, uri))
        run_tags = {names.RUN_NAME: start.name, **{k: str(v)[:8000] for k, v in start.tags.items()}}
        if run_tags[names.RUN_NAME] != start.name:
            raise MlflowException("the run name and the mlflow.runName tag differ")
        # one millisecond apart, in the batch's order, as the public calls would start them: an
        # order by start time (MLflow's default, "newest first") keeps the order they were opened in
        runs.append({"run_uuid": run_id, "name": start.name, "artifact_uri": uri, "experiment_id": experiment_id,
                     "source_type": "UNKNOWN", "source_name": "", "entry_point_name": "",
                     "user_id": start.tags.get(user_tag, "unknown"), "status": "RUNNING",
                     "start_time": now + i, "end_time": None, "deleted_time": None, "source_version": "",
                     "lifecycle_stage": LifecycleStage.ACTIVE})
        for key, value in run_tags.items():
            tag = internals.validate_tag(key, value)
            tags.append({"run_uuid": run_id, "key": tag.key, "value": tag.value})
        for key, value in start.params.items():
            value = str(value)[:6000]  # as runs.log cuts it
            internals.validate_param(key, value)
            params.append({"run_uuid": run_id, "key": key, "value": value})
    wanted = {(i.dataset.name, i.dataset.digest): i.dataset for s in starts for i in s.datasets}
    with internals.write_session(store) as session:
        uuids = {}
        if wanted:
            uuids = {(d.name, d.digest): d.dataset_uuid for d in session.query(SqlDataset).filter(
                SqlDataset.experiment_id == experiment_id,
                SqlDataset.name.in_(sorted({n for n, _ in wanted})),
                SqlDataset.digest.in_(sorted({d for _, d in wanted})))}
        new_datasets = []
        for key, ds in wanted.items():
            if key not in uuids:
                uuids[key] = uuid.uuid4().hex
                new_datasets.append({"dataset_uuid": uuids[key], "experiment_id": experiment_id, "name": ds.name,
                                     "digest": ds.digest, "dataset_source_type": ds.source_type,
                                     "dataset_source": ds.source, "dataset_schema": ds.schema,
                                     "dataset_profile": ds.profile})
        inputs, input_tags = [], []
        for (run_id, _), start in zip(created, starts):
            seen = set()
            for item in start.datasets:  # one input per dataset and run, the first one kept
                key = (item.dataset.name, item.dataset.digest)
                if key in seen:
                    continue
                seen.add(key)
                input_uuid = uuid.uuid4().hex
                inputs.append({"input_uuid": input_uuid, "source_type": "DATASET", "source_id": uuids[key],
                               "destination_type": "RUN", "destination_id": run_id})
                input_tags += [{"input_uuid": input_uuid, "name": t.key, "value": t.value} for t in item.tags]
        session.execute(insert(SqlRun), runs)
        for model, rows in ((SqlTag, tags), (SqlParam, params), (SqlDataset, new_datasets),
                            (SqlInput, inputs), (SqlInputTag, input_tags)):
            if rows:
                session.execute(insert(model), rows)
    for start, (run_id, uri) in zip(starts, created):  # committed
        start.run_id, start.artifact_uri = run_id, uri
