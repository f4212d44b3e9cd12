"""Warm sandbox servers outlive the thread that started them, so the pool really reuses them."""
import subprocess
import threading

import pytest

from mlr_mlflow.config import SandboxConfig
from mlr_mlflow.sandbox import pool, prewarm_sandboxes, warm_sandbox
from mlr_mlflow.sandbox.bwrap_backend import BwrapSandbox, bwrap_available

PROBE = "mlr_mlflow.validate.dynamic:run_probe"
IDENTITY = {"source": "def activation(x):\n    return x\n", "kind": "activation"}

pytestmark = pytest.mark.skipif(not bwrap_available(), reason="bwrap cannot run here")


def _alive_a_second_later(proc: subprocess.Popen) -> bool:
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return True
    return False


def test_a_server_started_by_a_thread_that_ended_stays_warm():
    """bwrap's --die-with-parent kills the sandbox when the thread that started it ends: servers
    are therefore started by one long-lived thread. Before, this server died (SIGKILL) as soon as
    its thread ended, and the next call started a cold one."""
    sandbox = BwrapSandbox(SandboxConfig())
    try:
        thread = threading.Thread(target=lambda: sandbox.call(PROBE, IDENTITY, 60))
        thread.start()
        thread.join()
        server = sandbox._proc
        assert server is not None and _alive_a_second_later(server), server.returncode
        assert sandbox.call(PROBE, IDENTITY, 60) == {"reasons": []}
        assert sandbox._proc is server  # the same warm server answered
    finally:
        sandbox.close()


def test_prewarmed_servers_are_alive_when_a_call_takes_them():
    config = SandboxConfig(backend="bwrap")
    pool.close_idle()
    try:
        for thread in prewarm_sandboxes(config, 2, PROBE, IDENTITY):
            thread.join()
        idle = [s for found in pool._idle.values() for s in found]
        assert len(idle) == 2
        assert all(_alive_a_second_later(s._proc) for s in idle)
        with warm_sandbox(config) as sandbox:
            assert sandbox.call(PROBE, IDENTITY, 60) == {"reasons": []}
            assert any(sandbox._sandbox is s for s in idle)  # one of them, not a new server
    finally:
        pool.close_idle()


def test_a_killed_warm_sandbox_starts_no_server_for_a_call_that_already_held_it():
    """A share cancelled by another's failure: its WarmSandbox is killed while its thread may
    already hold the server object. `close` left that object free to start a fresh server on its
    next call (a rare failure of test_evaluator's share-kill test: the cancelled share trained to
    the end); killed, it is stopped for good and the call raises instead."""
    from mlr_mlflow.sandbox.base import SandboxCrash

    config = SandboxConfig(backend="bwrap")
    pool.close_idle()
    box = warm_sandbox(config)
    assert box.call(PROBE, IDENTITY, 60) == {"reasons": []}
    held = box._sandbox  # what a call in another thread already holds
    box.kill()
    assert held._proc is None
    with pytest.raises(SandboxCrash, match="stopped"):
        held.call(PROBE, IDENTITY, 60)
    assert held._proc is None  # no server was started for it
    with pytest.raises(RuntimeError, match="stopped"):
        box.call(PROBE, IDENTITY, 60)
    plain = BwrapSandbox(SandboxConfig())
    try:  # close, unlike stop, leaves the next call free to start a fresh server
        assert plain.call(PROBE, IDENTITY, 60) == {"reasons": []}
        plain.close()
        assert plain.call(PROBE, IDENTITY, 60) == {"reasons": []}
    finally:
        plain.close()
