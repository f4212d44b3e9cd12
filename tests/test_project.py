"""The MLflow Project projects/evaluate (one hypothesis alone) reproduces a batched evaluation."""

import mlflow
import pytest
from mlflow import MlflowClient

from mlr_mlflow.resources import project_dir
from mlr_mlflow.tracking import names

from .conftest import SWISH, write


def test_project_run_matches_batched_run(tmp_path, tracking_uri, small_config, monkeypatch):
    from mlr_mlflow.config import with_overrides
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect

    path = write(tmp_path, "swish.py", SWISH)
    others = ["import torch\n\ndef activation(x):\n    return torch.tanh(x)\n",
              "def activation(x):\n    return x * 0.5\n"]
    config = with_overrides(small_config, suite={"datasets": ("iris", "xor")})
    batch = Evaluator(connect(tracking_uri), config).evaluate(
        [Hypothesis("activation", s) for s in (others[0], SWISH, others[1])], seeds=2)
    cli = {"run_id": batch[1].run_id}

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    submitted = mlflow.projects.run(
        str(project_dir()), entry_point="one_pass", env_manager="local", synchronous=True,
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
