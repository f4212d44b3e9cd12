"""The sandbox seam: bounded, scrubbed, answers only in JSON, survives its worker dying."""
import os

import pytest

from mlr_mlflow.config import SandboxConfig
from mlr_mlflow.sandbox import SandboxCallError, SandboxCrash, SandboxTimeout, SubprocessSandbox

PROBE = "mlr_mlflow.validate.dynamic:run_probe"


def call_source(sb, source, timeout=20.0):
    return sb.call(PROBE, {"source": source, "kind": "activation"}, timeout=timeout)


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-canary")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///secret.db")
    with SubprocessSandbox() as sb:
        sb.call(PROBE, {"source": "def activation(x):\n    return x\n", "kind": "activation"}, 20)
        env = open(f"/proc/{sb._proc.pid}/environ", "rb").read().decode()
    assert "sk-secret-canary" not in env and "secret.db" not in env
    assert "OMP_NUM_THREADS=1" in env


def test_allow_listed_variables_pass(monkeypatch):
    monkeypatch.setenv("MLR_TEST_ALLOWED", "yes")
    with SubprocessSandbox(SandboxConfig(env_allow=("MLR_TEST_ALLOWED",))) as sb:
        sb.call(PROBE, {"source": "def activation(x):\n    return x\n", "kind": "activation"}, 20)
        env = open(f"/proc/{sb._proc.pid}/environ", "rb").read().decode()
    assert "MLR_TEST_ALLOWED=yes" in env


def test_timeout_kills_the_worker_and_the_next_call_gets_a_fresh_one():
    with SubprocessSandbox() as sb:
        call_source(sb, "def activation(x):\n    return x\n")
        first = sb._proc.pid
        with pytest.raises(SandboxTimeout, match="timed out"):
            sb.call("mlr_mlflow.evaluate.job:train", _empty_job(), 0.01)
        assert call_source(sb, "def activation(x):\n    return x\n") == {"reasons": []}
        assert sb._proc.pid != first


def _empty_job():
    return {"datasets": [], "models": [], "model": {}, "variant": "one-pass"}


def test_errors_in_the_target_come_back_as_call_errors():
    with SubprocessSandbox() as sb:
        with pytest.raises(SandboxCallError, match="KeyError"):
            sb.call("mlr_mlflow.evaluate.job:train", {"variant": "one-pass"}, 60)


def test_targets_outside_the_package_are_refused():
    with SubprocessSandbox() as sb:
        with pytest.raises(SandboxCallError, match="must live in mlr_mlflow"):
            sb.call("os:system", "true", 20)


def test_memory_limit_is_a_clear_reason():
    source = "import torch\ndef activation(x):\n    y = torch.ones(40000, 40000, 8)\n    return x\n"
    with SubprocessSandbox(SandboxConfig(memory_mb=2048)) as sb:
        answer = call_source(sb, source)
    assert any("memory" in r.lower() or "allocate" in r.lower() for r in answer["reasons"]), answer


def test_worker_crash_is_reported(tmp_path):
    with SubprocessSandbox() as sb:
        call_source(sb, "def activation(x):\n    return x\n")
        os.kill(sb._proc.pid, 9)
        with pytest.raises(SandboxCrash, match="died|killed"):
            call_source(sb, "def activation(x):\n    return x\n")
