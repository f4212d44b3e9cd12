"""The reward model's scores do not depend on time: each row is measured on its own, within its own
limit; a row that cannot be measured in time is flagged (NaN score, measured=False, a reason), never
scored from partial features; a request is bounded in rows and in time; and JSON nested too deeply
is the client's error (400), not the server's (500)."""
import json

import numpy as np
import pandas as pd
import pytest

import mlr_mlflow
from mlr_mlflow.reward.pyfunc import RewardModel, code_digest
from mlr_mlflow.reward.ranker import Features

from .conftest import SWISH
from .test_reward_pyfunc import SOURCES

# fast on the behaviour grid (22 points), endless in Python on the probes' 4096 draws
SLOW_AT_PROBES = "def activation(x):\n    while x.numel() > 1000:\n        x = x + 0\n    return x\n"
# one call in C that checks no signal for hours (the tick cannot interrupt it)
C_LOOP = "def activation(x):\n    return x * (sum(range(10 ** 12)) % 2)\n"
FLAGS = {"structural": True, "grid": True, "probes": True, "embedding": False}


def save_model(tmp_path, limits: dict) -> str:
    import mlflow.pyfunc
    import xgboost as xgb
    from mlflow.models import infer_signature
    from pathlib import Path

    X = Features(**FLAGS).matrix("activation", SOURCES, None, None)
    model = xgb.XGBRegressor(n_estimators=20, max_depth=2, min_child_weight=0, n_jobs=1)
    model.fit(X, np.linspace(0.1, 0.9, len(X)))
    model.save_model(str(tmp_path / "model.json"))
    package = Path(mlr_mlflow.__file__).parent
    meta = {"kind": "activation", "algorithm": "regressor", "encoder": "none", "features": FLAGS,
            "limits": limits, "code_digest": code_digest(package)}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "encoder").mkdir()
    example = pd.DataFrame({"code": SOURCES[:2]})
    path = str(tmp_path / "reward_model")
    mlflow.pyfunc.save_model(path, python_model=RewardModel(), code_paths=[str(package)],
                             pip_requirements=["xgboost"],
                             signature=infer_signature(example, np.zeros(2), params={"details": False}),
                             artifacts={"xgb": str(tmp_path / "model.json"),
                                        "meta": str(tmp_path / "meta.json"),
                                        "encoder": str(tmp_path / "encoder")})
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("reward"), {"row_s": 3.0, "request_s": 120.0,
                                                          "max_rows": 4})


def test_a_slow_row_is_flagged_and_a_benign_row_beside_it_scores_as_it_does_alone(model_path):
    """Before, the probes of a whole request shared one call: a row that ran out of time there got
    NaN probe features and, its grid features being fine, a normal-looking score; and a row that
    held the call in C made the others' features NaN too."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_path)
    alone = model.predict(pd.DataFrame({"code": [SWISH]}))
    plain = model.predict(pd.DataFrame({"code": [SLOW_AT_PROBES, SWISH]}))
    assert np.isnan(plain[0]) and plain[1] == alone[0] and np.isfinite(alone[0])
    rows = model.predict(pd.DataFrame({"code": [SLOW_AT_PROBES, C_LOOP, SWISH]}),
                         params={"details": True})
    assert list(rows["measured"]) == [False, False, True]
    assert np.isnan(rows["score"][0]) and np.isnan(rows["score"][1])
    assert all("within 3 s (reward limits.row_s)" in r for r in rows["reason"][:2])
    assert rows["score"][2] == alone[0] and rows["reason"][2] == ""


def test_grid_features_of_a_row_do_not_depend_on_the_rows_beside_it():
    from mlr_mlflow.reward.features.grid import behaviour_rows
    from mlr_mlflow.reward.rows import ScoringLimits

    limits = ScoringLimits(row_s=1.0)
    alone, _ = behaviour_rows("activation", [SWISH], limits=limits)
    mixed, unmeasured = behaviour_rows("activation", [C_LOOP, SWISH], limits=limits)
    np.testing.assert_array_equal(mixed[1], alone[0])
    assert unmeasured[0] and "limits.row_s" in unmeasured[0] and unmeasured[1] is None


def test_a_request_is_bounded_in_rows_and_time(tmp_path):
    """Three rows holding a call in C held a serving worker for 40 s; now a request has
    `request_s` seconds of measurement in all, and at most `max_rows` rows."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(save_model(tmp_path, {"row_s": 1.0, "request_s": 2.5,
                                                           "max_rows": 4}))
    with pytest.raises(MlflowException, match="limits.max_rows") as refused:
        model.predict(pd.DataFrame({"code": [SWISH] * 5}))
    assert refused.value.get_http_status_code() == 400
    rows = model.predict(pd.DataFrame({"code": [C_LOOP, C_LOOP, C_LOOP, SWISH]}),
                         params={"details": True})
    assert not rows["measured"].any() and rows["score"].isna().all()
    # the first row takes at least its own limit and grace (2 s), the second the rest of 2.5 s:
    # the last ones are never started
    assert "(reward limits.request_s)" in rows["reason"][3]
    assert all("limits.row_s" in r or "limits.request_s" in r for r in rows["reason"])


def test_json_nested_too_deeply_is_a_bad_request_not_an_internal_error(model_path):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(model_path)  # what `mlflow models serve` does first
    body = '{"dataframe_records": ' + "[" * 200_000 + "]" * 200_000 + "}"
    with pytest.raises(MlflowException, match="nested too deeply") as caught:
        scoring_server.invocations(body, "application/json", model,
                                   model.metadata.get_input_schema())
    assert caught.value.get_http_status_code() == 400
    fine = scoring_server.invocations(json.dumps({"dataframe_records": [{"code": SWISH}]}),
                                      "application/json", model, model.metadata.get_input_schema())
    assert fine.status == 200 and np.isfinite(json.loads(fine.response)["predictions"][0])
