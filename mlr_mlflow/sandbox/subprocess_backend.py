"""A sandbox made of a plain child process: scrubbed environment, private working directory,
rlimits (memory, CPU, file size, processes, core dumps) and a wall-clock kill.

This is the weakest backend: the process still shares the network and can read what the user can.
Stronger backends wrap the same worker. Processes: started by root, the worker drops to a user id
of its own with a 64-task limit, when that user can reach this Python and package (otherwise it
stays root, which RLIMIT_NPROC does not bound); started by another user, the limit is 64 tasks
above what that user already runs, since the kernel counts all of a user's processes together.
"""
from __future__ import annotations

import json
import os
import pickle
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..config import SandboxConfig
from .base import SandboxCallError, SandboxCrash, SandboxOvertime, SandboxTimeout
from .identity import MAX_TASKS, fresh_uid, interpreter_world_reachable, user_task_count
from .worker import ANSWER_HEADER, HEADER, READY

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
MAX_ANSWER_BYTES = 64 << 20
WARM_UP_S = 300.0  # the server's start and its imports (torch, lightning): not the call's time
BOOTSTRAP = ("import sys; sys.path.insert(0, {parent!r}); "
             "from mlr_mlflow.sandbox.worker import main; main()")

SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "output size limit exceeded",
    signal.SIGKILL: "killed (memory or time limit)",
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGABRT: "aborted",
}


def scrubbed_env(config: SandboxConfig, home: str) -> dict[str, str]:
    """Only what a worker needs, plus the user's allow-list: no keys, tokens or tracking URIs."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": home,
    }
    env.update({k: os.environ[k] for k in config.env_allow if k in os.environ})
    return env


def _limits(config: SandboxConfig, cpu_seconds: int, nproc: int | None = None, uid: int | None = None):
    def apply():
        mem = config.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        out = config.output_kb << 10
        resource.setrlimit(resource.RLIMIT_FSIZE, (out, out))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
    return apply


# Servers are started from one thread that lives as long as this process. bwrap's
# --die-with-parent (PR_SET_PDEATHSIG) kills the sandbox when the *thread* that started it exits,
# not the process: a server started by a short-lived thread (the background start of warm servers,
# a share's training thread) died as soon as that thread ended, and the next call paid a cold
# start (tests/test_sandbox_pool.py).
_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def _forget_spawner() -> None:  # a forked child has none of its parent's threads
    global _spawner
    _spawner = None


os.register_at_fork(after_in_child=_forget_spawner)


def spawn(*args, **kwargs) -> subprocess.Popen:
    """subprocess.Popen(*args, **kwargs), run by the process's long-lived spawner thread."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(1, thread_name_prefix="mlr-sandbox-spawner")
    return _spawner.submit(subprocess.Popen, *args, **kwargs).result()


STOPPED = "the sandbox was stopped: the call it served has failed"


class SubprocessSandbox:
    """A long-lived, warm worker server that runs each call in a fresh child of its own (see
    `worker`); a call that times out or crashes gets a fresh server next time."""

    name = "subprocess"

    def __init__(self, config: SandboxConfig | None = None, *, cpu_seconds: int | None = None):
        self.config = config or SandboxConfig()
        # CPU time is a backstop for the wall clock (which ends a call); it never goes below a minute.
        self.cpu_seconds = cpu_seconds or max(60, int(self.config.train_timeout_s * 2))
        self._proc: subprocess.Popen | None = None
        self._home: tempfile.TemporaryDirectory | None = None
        self._stderr = None
        self.warm_up_s = 0.0  # of the last call: until the server said it was warm (not its time)
        self._stopped = False  # stop(): no server is started again

    def command(self) -> list[str]:
        return [sys.executable, "-I", "-c", BOOTSTRAP.format(parent=PACKAGE_PARENT)]

    def identity(self) -> tuple[int | None, int | None]:
        """(user id the worker drops to, its RLIMIT_NPROC); None where not set (see the docstring)."""
        if os.geteuid() != 0:
            return None, user_task_count(os.getuid()) + MAX_TASKS
        if interpreter_world_reachable(str(Path(PACKAGE_PARENT) / "mlr_mlflow")):
            return fresh_uid(), MAX_TASKS
        return None, None

    def environment(self, home: str) -> dict[str, str]:
        """The environment of the process this backend starts."""
        return scrubbed_env(self.config, home)

    def _start(self) -> subprocess.Popen:
        self._home = tempfile.TemporaryDirectory(prefix="mlr-sandbox-")
        self._stderr = tempfile.TemporaryFile()
        uid, nproc = self.identity()
        if uid is not None:
            os.chown(self._home.name, uid, uid)
        return spawn(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=self._home.name, env=self.environment(self._home.name),
            preexec_fn=_limits(self.config, self.cpu_seconds, nproc, uid), start_new_session=True,
            close_fds=True)

    def call(self, target: str, payload: Any, timeout: float, limit: str | None = None) -> Any:
        if self._stopped:
            raise SandboxCrash(STOPPED)
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._proc = self._start()
            if self._stopped:  # stopped from another thread while this one started a server
                self._kill()
                raise SandboxCrash(STOPPED)
        self.warm_up_s = 0.0
        sent = time.monotonic()
        nonce = os.urandom(16)
        request = pickle.dumps({"target": target, "payload": payload, "nonce": nonce},
                               protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._proc.stdin.write(HEADER.pack(len(request)) + request)
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise self._crash() from None
        (answered, size) = ANSWER_HEADER.unpack(
            self._read(ANSWER_HEADER.size, time.monotonic() + WARM_UP_S, WARM_UP_S,
                       "the sandbox server's start-up limit"))
        if answered != nonce or size != READY:
            self._kill()
            raise SandboxCrash("sandbox worker broke the protocol (no start frame)")
        self.warm_up_s = time.monotonic() - sent  # the server's start and imports, if any
        deadline = time.monotonic() + timeout  # warm: from here on the call's own clock runs
        (answered, size) = ANSWER_HEADER.unpack(self._read(ANSWER_HEADER.size, deadline, timeout,
                                                           limit))
        if answered != nonce:  # only the server knows the nonce of the request it answers
            self._kill()
            raise SandboxCrash("sandbox answer does not belong to this request")
        if size > MAX_ANSWER_BYTES:
            self._kill()
            raise SandboxCrash(f"sandbox answer of {size} bytes exceeds the limit")
        message = json.loads(self._read(size, deadline, timeout, limit))
        overtime = message.get("overtime")
        if not message.get("ok") and isinstance(overtime, dict):  # killed by the server: it lives on
            culprit = overtime.get("culprit")
            raise SandboxOvertime(str(message.get("error")),
                                  culprit if isinstance(culprit, list) else None)
        if not message.get("ok"):
            raise SandboxCallError(message.get("error", "unknown error"))
        return message["result"]

    def _read(self, n: int, deadline: float, timeout: float, limit: str | None = None) -> bytes:
        data = b""
        fd = self._proc.stdout.fileno()
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self._kill()
                raise SandboxTimeout(f"timed out after {timeout:g} s ({limit or 'wall-clock limit'})")
            chunk = os.read(fd, n - len(data))
            if not chunk:
                raise self._crash()
            data += chunk
        return data

    def _crash(self) -> SandboxCrash:
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        tail, flooded = self.stderr_tail(), self._stderr_size() >= (self.config.output_kb << 10)
        self._kill()
        if code is not None and code < 0:
            reason = SIGNAL_REASONS.get(-code, f"killed by signal {signal.Signals(-code).name}")
        else:
            reason = f"worker exited with status {code}"
        if "MemoryError" in tail or "std::bad_alloc" in tail:
            reason = "out of memory (the sandbox memory limit was reached)"
        elif flooded:
            reason = SIGNAL_REASONS[signal.SIGXFSZ]
            tail = tail[-80:]
        return SandboxCrash(f"sandbox worker died: {reason}" + (f"; last output: {tail[-300:]}" if tail else ""))

    def _stderr_size(self) -> int:
        return os.fstat(self._stderr.fileno()).st_size if self._stderr is not None else 0

    def stderr_tail(self, limit: int = 2000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        return self._stderr.read().decode(errors="replace").strip()

    def _kill(self) -> None:
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                try:
                    stream.close()
                except OSError:  # unflushed request to a dead worker
                    pass
            self._proc = None
        if self._home is not None:
            self._home.cleanup()
            self._home = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        self._kill()

    def stop(self) -> None:
        """Close for good, from any thread: the server is killed now (a call in flight on it fails)
        and none is started again (a later call raises), where `close` leaves the next call free
        to start a fresh one. A call that another share's failure cancelled must not train on."""
        self._stopped = True
        self._kill()

    def __enter__(self) -> "SubprocessSandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
