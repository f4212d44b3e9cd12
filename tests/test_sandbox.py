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
            sb.call("mlr_mlflow.evaluate.training.job:train", _empty_job(), 0.01)
        assert call_source(sb, "def activation(x):\n    return x\n") == {"reasons": []}
        assert sb._proc.pid != first


def _empty_job():
    return {"datasets": [], "models": [], "model": {}, "variant": "one-pass"}


def test_errors_in_the_target_come_back_as_call_errors():
    with SubprocessSandbox() as sb:
        with pytest.raises(SandboxCallError, match="KeyError"):
            sb.call("mlr_mlflow.evaluate.training.job:train", {"variant": "one-pass"}, 60)


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
    """The server is killed from outside while a call is in flight (its probe spins until the
    worker's own 20 s probe limit): the call reports the death, and the next call gets a fresh one.
    (Killed between calls instead, the server was either seen dead and restarted quietly, or not
    yet, depending on how fast it died: the test used to race.)"""
    import threading

    with SubprocessSandbox() as sb:
        call_source(sb, "def activation(x):\n    return x\n")
        server = sb._proc
        killer = threading.Timer(1.0, os.kill, (server.pid, 9))
        killer.start()
        try:
            with pytest.raises(SandboxCrash, match="died|killed"):
                call_source(sb, "def activation(x):\n    while True:\n        pass\n", timeout=60)
        finally:
            killer.cancel()
        assert call_source(sb, "def activation(x):\n    return x\n") == {"reasons": []}
        assert sb._proc is not server


# --- backends: which one auto picks, what each says, how docker gets its environment -------------
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from mlr_mlflow.sandbox import available_backends  # noqa: E402

CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**CHILD_ENV, **env})


@pytest.mark.skipif("namespace" not in available_backends(), reason="no namespaces for this user here")
def test_auto_picks_the_namespace_backend_when_bwrap_is_not_on_path(tmp_path):
    """A fresh Linux machine without bubblewrap gets namespace isolation, not the plain subprocess."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    done = run_python("from mlr_mlflow.sandbox import resolve_backend, bwrap_available\n"
                      "print(resolve_backend('auto'), bwrap_available())", PATH=str(bin_dir))
    assert done.stdout.split() == ["namespace", "False"], done.stderr


def test_the_subprocess_warning_is_said_once_per_process():
    done = run_python("from mlr_mlflow.config import SandboxConfig\n"
                      "from mlr_mlflow.sandbox import open_sandbox, announce_backend\n"
                      "c = SandboxConfig(backend='subprocess')\n"
                      "for _ in range(3):\n    open_sandbox(c).close()\n"
                      "announce_backend(c)\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("reduced isolation") == 1, done.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None
                    or not os.path.exists("/usr/bin/python3"),
                    reason="needs root (to become an unprivileged user) and a system python3")
def test_backends_hold_for_an_unprivileged_user():
    """As `nobody` (no capabilities, user namespaces only): the namespace backend (and rootless
    bwrap where installed) isolate fully, 64 tasks per sandbox included, and even the plain
    subprocess is held to 64 tasks above what the user already runs."""
    code = ("import json\nfrom mlr_mlflow.config import SandboxConfig\n"
            "from mlr_mlflow.sandbox import available_backends\n"
            "from mlr_mlflow.sandbox.check import check_sandbox\n"
            "out = {b: check_sandbox(SandboxConfig(backend=b)) for b in available_backends()}\n"
            "print(json.dumps(out))\n")
    from mlr_mlflow.sandbox.identity import world_reachable

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__import__("mlr_mlflow").__file__)))
    if not world_reachable(os.path.join(package_parent, "mlr_mlflow", "sandbox", "check.py")):
        pytest.skip("this checkout is not readable by other users")
    done = subprocess.run(["runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={package_parent}",
                           "/usr/bin/python3", "-c", code], capture_output=True, text=True,
                          timeout=300, cwd="/")
    if "not usable here" in done.stderr:
        pytest.skip("this kernel does not give unprivileged users namespaces")
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["namespace"]["ok"] is True, out["namespace"]
    if shutil.which("bwrap"):
        assert out["bwrap"]["ok"] is True, out["bwrap"]
    assert out["subprocess"]["processes"] == "bounded", out["subprocess"]
    assert out["subprocess"]["network"] == "open"  # and it says so


def test_docker_passes_allowed_values_by_name_and_keeps_the_users_docker_environment(monkeypatch):
    from mlr_mlflow.sandbox.docker_backend import DockerSandbox

    monkeypatch.setenv("MLR_TEST_TOKEN", "value-that-ps-must-not-show")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    monkeypatch.setenv("DOCKER_CONTEXT", "rootless")
    sandbox = DockerSandbox(SandboxConfig(env_allow=("MLR_TEST_TOKEN",)))
    command, env = sandbox.command(), sandbox.environment("/unused")
    assert "value-that-ps-must-not-show" not in " ".join(command)
    assert command[command.index("MLR_TEST_TOKEN") - 1] == "-e"
    assert env["MLR_TEST_TOKEN"] == "value-that-ps-must-not-show"
    assert env["DOCKER_HOST"] == "unix:///run/user/1000/docker.sock" and env["DOCKER_CONTEXT"] == "rootless"


@pytest.mark.skipif("docker" not in available_backends(), reason="no Docker daemon here")
def test_docker_worker_sees_allowed_values_and_the_client_follows_docker_host(monkeypatch, tmp_path):
    from mlr_mlflow.sandbox.docker_backend import DockerSandbox
    from mlr_mlflow.sandbox.selftest import SELFTEST_TARGET

    monkeypatch.setenv("MLR_TEST_TOKEN", "passed-by-name")
    with DockerSandbox(SandboxConfig(env_allow=("MLR_TEST_TOKEN",))) as sb:
        out = sb.call(SELFTEST_TARGET, {"code": "import os\nresult = os.environ.get('MLR_TEST_TOKEN')"}, 60)
    assert out["result"] == "passed-by-name"
    # A DOCKER_HOST of the user's is the one the client uses (here: one where no daemon listens).
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    with DockerSandbox(SandboxConfig()) as sb:
        with pytest.raises(SandboxCrash):
            sb.call(SELFTEST_TARGET, {"code": "result = 1"}, 60)
