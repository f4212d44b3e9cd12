"""Starting and ending many runs in one transaction (tracking/bulk.py) leaves exactly the runs that
MLflow's public calls leave, on sqlite and on PostgreSQL; a batch the transaction refuses is written
by the public path from nothing."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException

from mlr_mlflow.evaluate.datasets import load_suite
from mlr_mlflow.config import SuiteConfig
from mlr_mlflow.tracking import RunEnd, RunStart, end_runs, end_tags, log, log_artifact_files, names, start_runs
from mlr_mlflow.tracking.runs import dataset_inputs

from .team import fresh_databases

ENDS = [  # what ends each of four runs: evaluated, evaluated, invalid, screened under a new name
    {"metrics": {"b_wr": 0.75, "iris.test_acc": 0.9, "earlier": 2.0, "nan": float("nan")},
     "tags": {names.STATUS: "evaluated"}},
    {"metrics": {"b_wr": 0.25, "iris.test_acc": 0.6}, "tags": {names.STATUS: "evaluated"}},
    {"failed": True, "tags": end_tags("invalid", ["too slow", "line two"], {names.STAGE: "probe"})},
    {"tags": end_tags("screened", tags={names.RUN_NAME: "renamed-screened", "long": "x" * 9000})},
]


def _open(client, exp: str, i: int) -> str:
    """A run as the evaluator leaves it before results: tags, params, a metric logged earlier at a
    later step (it stays the latest) and one at step 0 (the new value replaces it)."""
    run = client.create_run(exp, run_name=f"run-{i}", tags={names.STATUS: "running", "mlr.kind": "activation"})
    early = int(time.time() * 1000) - 60_000
    client.log_batch(run.info.run_id, params=[], tags=[RunTag("mlr.round_id", "r1")],
                     metrics=[Metric("earlier", 1.0, early, 5), Metric("b_wr", 0.1, early, 0)])
    return run.info.run_id


def _state(client, run_id: str) -> dict:
    run = client.get_run(run_id)
    history = {k: sorted((m.value, m.step) for m in client.get_metric_history(run_id, k))
               for k in run.data.metrics}
    return {"status": run.info.status, "name": run.info.run_name, "ended": run.info.end_time is not None,
            "metrics": run.data.metrics, "tags": {k: v for k, v in run.data.tags.items()
                                                   if k != "mlflow.runName" or v.startswith("renamed")},
            "params": run.data.params, "history": history}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_one_transaction_leaves_the_runs_the_public_calls_leave(tmp_path, database):
    def check(uri):
        client = MlflowClient(uri)
        exp = client.create_experiment("bulk", artifact_location=str(tmp_path / "artifacts"))
        public = [_open(client, exp, i) for i in range(len(ENDS))]
        bulk = [_open(client, exp, i) for i in range(len(ENDS))]
        for run_id, end in zip(public, ENDS):  # MLflow's own calls, run by run
            metrics = [Metric(k, v, int(time.time() * 1000), 0) for k, v in end.get("metrics", {}).items()
                       if v == v]
            client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v[:8000]) for k, v in end["tags"].items()])
            client.set_terminated(run_id, "FAILED" if end.get("failed") else "FINISHED")
        assert end_runs(client, [RunEnd(r, **e) for r, e in zip(bulk, ENDS)]) == "one transaction"
        for a, b in zip(public, bulk):
            assert _state(client, a) == _state(client, b)
        ours = _state(client, bulk[0])
        assert ours["metrics"] == {"b_wr": 0.75, "iris.test_acc": 0.9, "earlier": 1.0}  # step 5 stays latest
        assert ours["history"]["b_wr"] == [(0.1, 0), (0.75, 0)]
        assert _state(client, bulk[3])["name"] == "renamed-screened"
        assert len(_state(client, bulk[3])["tags"]["long"]) == 8000
        found = client.search_runs([exp], f"metrics.b_wr > 0.5 and tags.`{names.STATUS}` = 'evaluated'")
        assert sorted(r.info.run_id for r in found) == sorted([public[0], bulk[0]])

    if database == "sqlite":
        check(f"sqlite:///{tmp_path}/mlflow.db")
    else:
        with fresh_databases("bulk") as (url,):
            check(url)


def test_a_batch_the_transaction_refuses_is_written_run_by_run_from_nothing(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.create_experiment("bulk", artifact_location=str(tmp_path / "artifacts"))
    first, deleted, last = (_open(client, exp, i) for i in range(3))
    client.delete_run(deleted)
    ends = [RunEnd(r, {"b_wr": 0.5}, {names.STATUS: "evaluated"}) for r in (first, deleted, last)]
    with pytest.raises(MlflowException, match="active"):  # what MLflow's own call raises
        end_runs(client, ends)
    assert _state(client, first)["status"] == "FINISHED"  # the public path, before the deleted run
    untouched = _state(client, last)  # the transaction left nothing of itself
    assert untouched["status"] == "RUNNING" and untouched["metrics"]["b_wr"] == 0.1
    assert untouched["tags"][names.STATUS] == "running"


def _started(client, run_id: str) -> dict:
    run = client.get_run(run_id)
    inputs = sorted((i.dataset.name, i.dataset.digest, i.dataset.source_type, i.dataset.source,
                     i.dataset.profile, tuple((t.key, t.value) for t in i.tags))
                    for i in run.inputs.dataset_inputs)
    root = Path(client.download_artifacts(run_id, ""))
    files = {str(f.relative_to(root)): f.read_text() for f in sorted(root.rglob("*")) if f.is_file()}
    return {"status": run.info.status, "name": run.info.run_name, "user": run.info.user_id,
            "stage": run.info.lifecycle_stage, "ended": run.info.end_time,
            "started": run.info.start_time is not None, "tags": run.data.tags, "params": run.data.params,
            "metrics": run.data.metrics, "inputs": inputs,
            "artifacts": files,
            "artifact_uri_ends": run.info.artifact_uri.endswith(f"{run_id}/artifacts")}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_starting_in_one_transaction_leaves_the_runs_the_public_calls_leave(tmp_path, database):
    suite = load_suite(SuiteConfig(datasets=("iris", "moons")))
    inputs = dataset_inputs(suite)

    def starts():
        return [RunStart(f"hyp-{i}", {"mlr.kind": "activation", names.PARENT_RUN_ID: "p" * 32, "mlflow.user": "ann"},
                         {"kind": "activation", "seeds": 3, "long": "y" * 7000}, inputs,
                         {"hypothesis.py": f"def activation(x):\n    return x * {i}\n", "sub/config.json": "{}"})
                for i in range(3)]

    def check(uri):
        client = MlflowClient(uri)
        exp = client.create_experiment("bulk", artifact_location=str(tmp_path / "artifacts"))
        public = []
        for start in starts():  # MLflow's own calls, run by run
            run = client.create_run(exp, tags=start.tags, run_name=start.name)
            log(client, run.info.run_id, params=start.params)
            log_artifact_files(client, run.info.run_id, start.artifacts)
            client.log_inputs(run.info.run_id, datasets=start.datasets)
            public.append(run.info.run_id)
        ours = starts()
        start_runs(client, exp, ours)
        assert all(s.run_id and s.artifact_uri.endswith(f"{s.run_id}/artifacts") for s in ours)
        for a, b in zip(public, ours):
            assert _started(client, a) == _started(client, b.run_id)
        state = _started(client, ours[0].run_id)
        assert state["user"] == "ann" and len(state["params"]["long"]) == 6000 and len(state["inputs"]) == 2
        found = client.search_runs([exp], "params.kind = 'activation' and tags.`mlr.kind` = 'activation'")
        assert len(found) == 6
        # newest first, as MLflow orders runs: the batch's own order kept, after the public ones
        assert [r.info.run_id for r in found] == [s.run_id for s in reversed(ours)] + public[::-1]
        # one dataset row per name and digest in the experiment, shared by every run's input
        store = client._tracking_client.store
        from mlflow.store.tracking.dbmodels.models import SqlDataset
        with store.ManagedSessionMaker() as session:
            assert session.query(SqlDataset).filter(SqlDataset.experiment_id == exp).count() == 2

    if database == "sqlite":
        check(f"sqlite:///{tmp_path}/mlflow.db")
    else:
        with fresh_databases("bulkstart") as (url,):
            check(url)
