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
