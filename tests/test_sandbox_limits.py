"""Time limits that hold whatever the code calls: a deadline the target posts (`sandbox.alarm`) is
enforced by the worker server from outside, so one long call in C, which no SIGALRM tick can
interrupt, is killed on it, the caller learns which limit and whose call, and the warm server
serves on."""
import dataclasses

import pytest

from mlr_mlflow.config import ModelConfig, SandboxConfig, SuiteConfig
from mlr_mlflow.sandbox import SandboxOvertime, SubprocessSandbox, available_backends, open_sandbox
from mlr_mlflow.sandbox.selftest import SELFTEST_TARGET

from .hostile import C_LOOP_IN_TRAINING

# A long call in C under a posted deadline: sum(range(10 ** 12)) runs for hours and checks no signal.
IN_C = ("from mlr_mlflow.sandbox.alarm import time_limit\n"
        "with time_limit(0.5, reason='the test limit ([x] y_s)', culprit=['k:0']):\n"
        "    result = sum(range(10 ** 12))\n")
IDENTITY = "def activation(x):\n    return x\n"


@pytest.mark.parametrize("backend", [b for b in available_backends() if b != "docker"])
def test_a_call_in_c_past_its_deadline_is_killed_and_the_server_serves_on(backend):
    with open_sandbox(SandboxConfig(backend=backend)) as sandbox:
        assert sandbox.call(SELFTEST_TARGET, {"code": "result = 1"}, 60) == {"result": 1}
        server = sandbox._proc.pid
        with pytest.raises(SandboxOvertime) as caught:
            sandbox.call(SELFTEST_TARGET, {"code": IN_C}, 120)
        assert caught.value.reason == "the test limit ([x] y_s)"
        assert caught.value.culprit == ["k:0"]
        # the server was not touched: the same warm process answers the next call
        assert sandbox.call(SELFTEST_TARGET, {"code": "result = 2"}, 60) == {"result": 2}
        assert sandbox._proc.pid == server


def test_a_cleared_deadline_is_never_enforced():
    code = ("from mlr_mlflow.sandbox.alarm import Alarm\nimport time\n"
            "a = Alarm()\na.set(time.perf_counter() + 0.1, 'never')\na.set(None)\n"
            "time.sleep(1.5)\nresult = 'done'\n")
    with SubprocessSandbox() as sandbox:
        assert sandbox.call(SELFTEST_TARGET, {"code": code}, 60) == {"result": "done"}


def _job(models, budget_s):
    from mlr_mlflow.evaluate.datasets import load_suite

    suite = load_suite(SuiteConfig(datasets=("iris",)))
    return {"datasets": [d.payload() for d in suite], "models": models,
            "model": dataclasses.asdict(ModelConfig()), "variant": "one-pass", "budget_s": budget_s}


def test_training_kills_a_call_in_c_on_the_hypothesis_budget_and_names_it():
    """Before, the guard's tick could not reach inside `sum(range(10 ** 12))`: the job ran until the
    training job's wall clock (here 100 s) killed the whole server, naming no hypothesis."""
    from mlr_mlflow.evaluate.baselines import components_for
    from mlr_mlflow.evaluate.training.job import TRAIN_TARGET

    models = [{"key": "0:0", "seed": 0, "components": components_for("activation", IDENTITY)},
              {"key": "1:0", "seed": 0,
               "components": components_for("activation", C_LOOP_IN_TRAINING)}]
    with SubprocessSandbox(SandboxConfig(memory_mb=3072)) as sandbox:
        with pytest.raises(SandboxOvertime) as caught:
            sandbox.call(TRAIN_TARGET, _job(models, 1.0), timeout=100)
        assert caught.value.culprit == ["1:0"]
        assert "training time budget of 1 s ([sandbox] hypothesis_budget_s)" in caught.value.reason
        server = sandbox._proc.pid
        out = sandbox.call(TRAIN_TARGET, _job(models[:1], 1.0), timeout=100)
        assert set(out["results"]) == {"0:0"} and sandbox._proc.pid == server


def test_evaluate_fails_the_hypothesis_killed_in_c_and_trains_the_others_in_one_batch(
        tracking_uri, small_config):
    """End to end: the hypothesis whose call in C outlived its budget fails with the limit named;
    the batch is trained again without it (not one by one), so the good one is evaluated."""
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect

    from .conftest import SWISH

    config = dataclasses.replace(small_config, sandbox=dataclasses.replace(
        small_config.sandbox, hypothesis_budget_s=2, train_timeout_s=90))
    config = dataclasses.replace(config, suite=dataclasses.replace(config.suite, datasets=("iris",)))
    # the references first, under the default limits: only the hypotheses' job may hit the short one
    Evaluator(connect(tracking_uri), dataclasses.replace(config, sandbox=small_config.sandbox)).evaluate(
        [Hypothesis("activation", SWISH)], seeds=1)
    messages = []
    good, bad, other = Evaluator(connect(tracking_uri), config, messages.append).evaluate(
        [Hypothesis("activation", SWISH), Hypothesis("activation", C_LOOP_IN_TRAINING),
         Hypothesis("activation", IDENTITY)], seeds=1)
    assert not bad.valid
    assert "training time budget of 2 s ([sandbox] hypothesis_budget_s)" in bad.reasons[0]
    assert good.valid and good.b_wr is not None and other.valid and other.b_wr is not None
    assert any("retrying the other 2 in one batch" in m for m in messages)
    assert not any("one by one" in m for m in messages)
