"""The reward model's pyfunc: an old champion scores with the feature code it was built with, even in
a process that imported a changed mlr_mlflow; invalid input comes back NaN, never a score; a
sandbox that cannot measure behaviour is an error, never a silent all-NaN feature matrix."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlr_mlflow
from mlr_mlflow.config import SandboxConfig
from mlr_mlflow.reward.features.structural import structural_matrix
from mlr_mlflow.reward.features.grid import BehaviourError, behaviour_matrix
from mlr_mlflow.reward.pyfunc import RewardModel, code_digest

from .conftest import SWISH

SOURCES = [SWISH, "import torch\n\ndef activation(x):\n    return torch.tanh(x)\n",
           "import torch\n\ndef activation(x):\n    return x * torch.tanh(x)\n",
           "import torch\n\ndef activation(x):\n    return torch.relu(x) + 0.1 * x\n",
           "import torch\n\ndef activation(x):\n    return torch.atan(x)\n",
           "import torch.nn.functional as F\n\ndef activation(x):\n    return F.softplus(x) - 0.5\n"]
NOT_HYPOTHESES = ["this is not python at all", "def activation(x):\n    return open('/etc/passwd')\n",
                  "import torch\n\ndef activation(x):\n    return x[0]\n"]  # fails in the sandbox
# The "old" package: one more structural feature (always 5) and behaviour features shifted by 100.
OLD_FEATURES = ('\nNAMES = NAMES + ("old.marker",)\n_new_structural = structural\n\n\n'
                'def structural(source):\n    values = _new_structural(source)\n'
                '    values[-1] = 5.0\n    return values\n')
OLD_GRID = ('\n_new_activation = _activation\n\n\n'
            'def _activation(fn):\n    return [v + 100.0 for v in _new_activation(fn)]\n')


def old_package(tmp_path) -> Path:
    """A copy of the package whose feature code differs from the one this process imported."""
    old = tmp_path / "old" / "mlr_mlflow"
    shutil.copytree(Path(mlr_mlflow.__file__).parent, old,
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(old / "reward" / "features" / "structural.py", "a") as fh:
        fh.write(OLD_FEATURES)
    with open(old / "reward" / "features" / "grid.py", "a") as fh:
        fh.write(OLD_GRID)
    return old


def save_model(tmp_path, package: Path, X: np.ndarray, grid: bool) -> str:
    import mlflow.pyfunc
    import xgboost as xgb

    model = xgb.XGBRegressor(n_estimators=20, max_depth=2, min_child_weight=0, n_jobs=1)
    model.fit(X, np.linspace(0.1, 0.9, len(X)))
    model.save_model(str(tmp_path / "model.json"))
    meta = {"kind": "activation", "algorithm": "regressor", "encoder": "none",
            "features": {"structural": True, "grid": grid, "embedding": False},
            "code_digest": code_digest(package)}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "encoder").mkdir()
    path = str(tmp_path / "reward_model")
    mlflow.pyfunc.save_model(path, python_model=RewardModel(), code_paths=[str(package)],
                             pip_requirements=["xgboost"],  # no inference: it runs the model
                             artifacts={"xgb": str(tmp_path / "model.json"),
                                        "meta": str(tmp_path / "meta.json"),
                                        "encoder": str(tmp_path / "encoder")})
    return path


def test_an_old_champion_scores_with_its_own_feature_code_in_a_process_with_a_changed_package(tmp_path):
    import mlflow.pyfunc

    old = old_package(tmp_path)
    grid_now = behaviour_matrix("activation", SOURCES)
    # the old code's features, written out independently of the loading mechanism under test
    X_old = np.hstack([structural_matrix(SOURCES), np.full((len(SOURCES), 1), 5.0), grid_now + 100.0])
    path = save_model(tmp_path, old, X_old, grid=True)
    loaded = mlflow.pyfunc.load_model(path)
    wrapped = loaded.unwrap_python_model()
    assert wrapped.package == f"mlr_mlflow_{code_digest(old)[:12]}"  # its own copy, by version
    assert wrapped.package != mlr_mlflow.__name__
    scores = loaded.predict(pd.DataFrame({"code": NOT_HYPOTHESES + SOURCES}))
    expected = wrapped.model.predict(X_old.astype(np.float32))
    np.testing.assert_allclose(scores[len(NOT_HYPOTHESES):], expected, rtol=1e-6)
    # not Python, statically rejected, failing in the sandbox: NaN, never a score
    assert np.isnan(scores[:len(NOT_HYPOTHESES)]).all()
    # the package this process imported would have built other features (one column fewer)
    assert structural_matrix(SOURCES).shape[1] == X_old.shape[1] - grid_now.shape[1] - 1


def test_a_model_built_with_the_imported_package_uses_it_and_marks_non_python_invalid(tmp_path):
    import io

    import mlflow.pyfunc
    from mlflow.pyfunc.scoring_server import predictions_to_json

    package = Path(mlr_mlflow.__file__).parent
    loaded = mlflow.pyfunc.load_model(save_model(tmp_path, package, structural_matrix(SOURCES),
                                                 grid=False))
    assert loaded.unwrap_python_model().package == "mlr_mlflow"
    scores = loaded.predict(pd.DataFrame({"code": NOT_HYPOTHESES[:2] + SOURCES[:1]}))
    assert np.isnan(scores[:2]).all() and np.isfinite(scores[2])
    served = io.StringIO()  # what `mlflow models serve` answers over REST
    predictions_to_json(scores, served)
    assert served.getvalue().startswith('{"predictions": [NaN, NaN, ')


def test_a_sandbox_that_cannot_measure_behaviour_is_an_error_not_nan_features():
    # too little memory for the worker to import torch: the sandbox fails, not the hypotheses
    config = SandboxConfig(backend="subprocess", memory_mb=64)
    with pytest.raises(BehaviourError, match="cannot measure activation behaviour"):
        behaviour_matrix("activation", SOURCES[:2], config)
