"""`mlr-mlflow sandbox check`: on every backend available here, against the caller's own listener
and canary file, the verdicts match what really happened (the listener's own count, the file)."""
import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from mlr_mlflow.sandbox import available_backends

BACKENDS = available_backends()
ISOLATING = {"bwrap", "namespace", "docker"}
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(1)
                conn.close()
            except OSError:
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def sandbox_check(*args: str) -> tuple[int, dict | None, str]:
    done = subprocess.run([sys.executable, "-m", "mlr_mlflow", "sandbox", "check", *args, "--json"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    lines = done.stdout.strip().splitlines()
    payload = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return done.returncode, payload, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sandbox_check_reports_what_really_happened(backend, listener, tmp_path):
    port, accepted = listener
    canary = tmp_path / "canary.txt"
    canary.write_text("mine")
    code, out, text = sandbox_check("--backend", backend, "--connect", f"127.0.0.1:{port}",
                                    "--read", str(canary))
    assert out is not None, text
    assert out["backend"] == backend
    assert {"network", "host_files", "root_fs", "secrets", "processes", "memory", "wall_time",
            "ok"} <= set(out)
    if backend in ISOLATING:
        assert not accepted, "the caller's listener was reached"
        assert out["ok"] is True and code == 0, text
        assert (out["network"], out["host_files"], out["root_fs"], out["secrets"]) == \
               ("blocked", "hidden", "read-only", "scrubbed")
        assert out["processes"] == out["memory"] == out["wall_time"] == "bounded"
    else:  # the plain subprocess shares the network and the files, and says so
        assert accepted, "the subprocess backend should have reached the listener"
        assert out["network"] == "open" and out["host_files"] == "readable"
        assert str(canary) in out["evidence"]["host_files"]
        assert out["ok"] is False and code == 1
        assert out["memory"] == out["wall_time"] == "bounded"


@pytest.mark.parametrize("args", [["--connect", "nonsense"], ["--read", "/no/such/canary"],
                                  ["--backend", "nosuch"]])
def test_sandbox_check_usage_errors_exit_2(args):
    code, _, text = sandbox_check(*args)
    assert code == 2, text


# --- an interpreter anywhere: a virtual environment under /tmp, for root and for `nobody` ---------
import shutil  # noqa: E402
import tempfile  # noqa: E402

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__import__("mlr_mlflow").__file__)))
AS_NOBODY = ["runuser", "-u", "nobody", "--"]


def venv_in_tmp(base_python: str, mode: int = 0o755) -> str:
    """A real venv directly under /tmp (where the sandboxes mount their private /tmp), seeing the
    base installation's packages."""
    where = tempfile.mkdtemp(prefix="mlr-venv-", dir="/tmp")
    subprocess.run([base_python, "-m", "venv", "--system-site-packages", "--without-pip", where],
                   check=True, timeout=120)
    subprocess.run(["chmod", "-R", "a+rX", where], check=True)
    os.chmod(where, mode)
    return where


@pytest.fixture(scope="module")
def tmp_venvs():
    made = {}
    yield lambda who: made.get(who) or made.setdefault(
        who, venv_in_tmp(sys.executable if who == "root" else "/usr/bin/python3"))
    for where in made.values():
        shutil.rmtree(where, ignore_errors=True)


def in_venv(venv: str, args: list[str], as_nobody: bool = False, **env) -> subprocess.CompletedProcess:
    command = [*(AS_NOBODY if as_nobody else []), "env", f"PYTHONPATH={PACKAGE_PARENT}",
               *(f"{k}={v}" for k, v in env.items()), f"{venv}/bin/python", "-m", "mlr_mlflow", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd="/")


@pytest.mark.parametrize("backend", ["bwrap", "namespace"])
@pytest.mark.parametrize("who", ["root", "nobody"])
def test_sandbox_check_holds_with_the_interpreter_under_tmp(backend, who, tmp_venvs):
    """Both kernel backends bind the interpreter's real directories on top of their private /tmp
    (they used to hide it: `execvp /tmp/...: No such file`, `mount: /tmp/tmp/...`)."""
    if backend == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    if who == "nobody" and (os.geteuid() != 0 or shutil.which("runuser") is None
                            or not os.path.exists("/usr/bin/python3")):
        pytest.skip("needs root (to become nobody) and a system python3")
    if who == "root" and os.geteuid() != 0:
        who = "this user"
    venv = tmp_venvs(who)
    done = in_venv(venv, ["sandbox", "check", "--backend", backend, "--json"], as_nobody=who == "nobody")
    if who == "nobody" and "not usable here" in done.stderr and "user namespace" in done.stderr.lower():
        pytest.skip("this kernel does not give unprivileged users namespaces")
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend and out["ok"] is True, out


def test_auto_refuses_to_run_unisolated_where_the_machine_offers_namespaces(tmp_path, tmp_venvs):
    """An interpreter neither kernel backend can place in its root (named through /proc/self/root,
    which each sandbox replaces with its own /proc), on a machine that does give this user
    namespaces: `auto` used to fall back to the plain subprocess (network and files in reach) after
    one warning line; now it exits 2 naming both causes and the opt-in, and the opt-in
    (`[sandbox] backend = "subprocess"`) still runs it."""
    from mlr_mlflow.sandbox.namespace_backend import namespaces_allowed

    if not namespaces_allowed():
        pytest.skip("this machine gives this user no namespaces: the plain subprocess is all it offers")
    if "docker" in BACKENDS:
        pytest.skip("a Docker daemon here would be picked before the plain subprocess")
    venv = "/proc/self/root" + tmp_venvs("root" if os.geteuid() == 0 else "this user")
    hypothesis = tmp_path / "h.py"
    hypothesis.write_text("import torch\ndef activation(x):\n    return torch.relu(x)\n")
    refused = in_venv(venv, ["validate", str(hypothesis), "--kind", "activation", "--json"])
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "WARNING: reduced isolation" not in refused.stderr  # nothing ran in the plain subprocess
    first, *more = refused.stderr.strip().splitlines()  # one error; a long one goes on indented
    assert all(line.startswith("  ") for line in more), refused.stderr
    error = json.loads(refused.stdout.strip().splitlines()[-1])["error"]
    assert "refusing to run generated code unisolated" in error, error
    assert "bwrap:" in error and "namespace:" in error and 'backend = "subprocess"' in error
    opted_in = tmp_path / "unisolated.toml"
    opted_in.write_text('[sandbox]\nbackend = "subprocess"\n')
    chosen = in_venv(venv, ["validate", str(hypothesis), "--kind", "activation", "--json",
                            "--config", str(opted_in)])
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    assert json.loads(chosen.stdout.strip().splitlines()[-1])["valid"] is True
    assert "WARNING: reduced isolation" in chosen.stderr
