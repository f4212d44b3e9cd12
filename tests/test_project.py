"""The MLflow Project projects/evaluate reproduces what the CLI records."""
import json

import mlflow
import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.evaluate.evaluator import PROJECT_DIR
from mlr_mlflow.tracking import names

from .conftest import SWISH, write


def test_project_run_matches_cli_run(tmp_path, tracking_uri, capsys, monkeypatch):
    path = write(tmp_path, "swish.py", SWISH)
    assert main(["evaluate", str(path), "--kind", "activation", "--tracking-uri", tracking_uri,
                 "--seeds", "2", "--datasets", "iris,xor", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    submitted = mlflow.projects.run(
        str(PROJECT_DIR), entry_point="one_pass", env_manager="local", synchronous=True,
        parameters={"hypothesis": str(path), "kind": "activation", "seeds": "2",
                    "datasets": "iris,xor"}, experiment_name="mlr-activation")
    assert submitted.get_status() == "FINISHED"

    client = MlflowClient(tracking_uri)
    project_run, cli_run = client.get_run(submitted.run_id), client.get_run(cli["run_id"])
    assert project_run.data.tags[names.HYPOTHESIS_SHA256] == cli_run.data.tags[names.HYPOTHESIS_SHA256]
    assert project_run.data.tags["mlflow.project.entryPoint"] == "one_pass"
    assert set(project_run.data.metrics) == set(cli_run.data.metrics)
    for key, value in cli_run.data.metrics.items():
        assert project_run.data.metrics[key] == pytest.approx(value, abs=1e-9), key
