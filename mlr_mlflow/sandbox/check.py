"""`sandbox check`: prove a backend's process layer by attacking it, not by describing it.

Each property is measured by running code in the sandbox through the self-test target, which skips
the static allow-list and the restricted loader, as if both had been bypassed:
- network: connect to a listener this process opens on 127.0.0.1 (and to the caller's HOST:PORT);
  also open when the sandbox sees any interface but loopback;
- host_files: read a canary file written here for the check (and the caller's PATH);
- root_fs: create a file in /usr and beside the canary;
- secrets: look for a secret put in this process's environment in the worker's environment, and
  try to read the environment this process started with (/proc/PID/environ);
- processes: fork up to 200 children; memory: allocate past the bound the sandbox declares;
  wall_time: spin past a short time limit.
"""
from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import tempfile
import threading
from pathlib import Path

from ..config import SandboxConfig, UsageError
from . import open_sandbox, resolve_backend
from .base import SandboxCrash, SandboxError, SandboxTimeout
from .selftest import SELFTEST_TARGET

PROPERTIES = {"network": ("blocked", "open"), "host_files": ("hidden", "readable"),
              "root_fs": ("read-only", "writable"), "secrets": ("scrubbed", "visible"),
              "processes": ("bounded", "unbounded"), "memory": ("bounded", "unbounded"),
              "wall_time": ("bounded", "unbounded")}
FORKS = 200
SECRET_VAR = "MLR_SANDBOX_CHECK_SECRET"

NETWORK = """
import socket
reached = []
for host, port in TARGETS:
    try:
        socket.create_connection((host, port), timeout=3).close()
        reached.append(f"{host}:{port}")
    except OSError:
        pass
names = [n for _, n in socket.if_nameindex()] if hasattr(socket, "if_nameindex") else []
result = {"reached": reached, "interfaces": [n for n in names if n != "lo"]}
"""
FILES = """
read = []
for path in PATHS:
    try:
        with open(path, "rb") as fh:
            fh.read(1)
        read.append(path)
    except OSError:
        pass
result = read
"""
WRITE = """
import os
written = []
for path in PATHS:
    try:
        with open(path, "x") as fh:
            fh.write("x")
        written.append(path)
        os.remove(path)
    except OSError:
        pass
result = written
"""
SECRETS = """
import os
found = [k for k, v in os.environ.items() if SECRET in v]
try:
    with open(f"/proc/{PARENT}/environ", "rb") as fh:
        if MARK.encode() in fh.read():  # the environment this process started with
            found.append(f"/proc/{PARENT}/environ")
except OSError:
    pass
result = found
"""
PROCESSES = """
import os, time
children = []
try:
    for _ in range(FORKS):
        pid = os.fork()
        if pid == 0:
            time.sleep(1)
            os._exit(0)
        children.append(pid)
except OSError:
    pass
for pid in children:
    os.waitpid(pid, 0)
result = len(children)
"""
MEMORY = """
import resource
limits = []
soft = resource.getrlimit(resource.RLIMIT_AS)[0]
if soft != resource.RLIM_INFINITY:
    limits.append(soft)
for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
    try:
        text = open(path).read().strip()
        if text.isdigit() and int(text) < 1 << 60:
            limits.append(int(text))
    except OSError:
        pass
if not limits:
    result = "no bound declared"
else:
    try:
        block = bytearray(min(limits) + (256 << 20))
        result = "allocated past the bound"
    except MemoryError:
        result = "refused"
"""


class _Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server.getsockname()[1]

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self._stop.set()
        self._thread.join()
        self.server.close()


def parse_connect(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--connect wants HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def _run(sandbox, code: str, timeout: float = 30.0, **values):
    prelude = "".join(f"{k} = {v!r}\n" for k, v in values.items())
    answer = sandbox.call(SELFTEST_TARGET, {"code": prelude + code}, timeout)
    if "error" in answer:
        raise SandboxError(answer["error"])
    return answer["result"]


def check_sandbox(config: SandboxConfig, connect: list[str] = (), read: list[str] = ()) -> dict:
    """The isolation report of CONTRACT.md for the configured backend ("auto": the one it picks)."""
    targets = [parse_connect(c) for c in connect]
    for path in read:
        if not Path(path).is_file():
            raise UsageError(f"--read: no such file: {path}")
    backend = resolve_backend(config.backend)
    config = dataclasses.replace(config, backend=backend)
    secret = f"sk-check-{secrets.token_hex(12)}"
    saved = os.environ.get(SECRET_VAR)
    os.environ[SECRET_VAR] = secret  # in this process: the worker must not see it
    listener = _Listener()
    report: dict = {"backend": backend}
    evidence: dict = {}
    try:
        with tempfile.TemporaryDirectory(prefix="mlr-check-") as tmp, open_sandbox(config) as sandbox:
            canary = Path(tmp) / "canary.txt"
            canary.write_text("canary")
            canary.chmod(0o644)
            os.chmod(tmp, 0o755)
            net = _run(sandbox, NETWORK, TARGETS=[("127.0.0.1", listener.port), *targets])
            evidence["network"] = net
            reached = net["reached"] or net["interfaces"] or listener.accepted
            report["network"] = "open" if reached else "blocked"
            evidence["host_files"] = _run(sandbox, FILES, PATHS=[str(canary), *read])
            report["host_files"] = "readable" if evidence["host_files"] else "hidden"
            probe = f"mlr-check-{secrets.token_hex(6)}"
            evidence["root_fs"] = _run(sandbox, WRITE, PATHS=[f"/usr/{probe}", str(Path(tmp) / probe)])
            report["root_fs"] = "writable" if evidence["root_fs"] else "read-only"
            evidence["secrets"] = _run(sandbox, SECRETS, SECRET=secret, PARENT=os.getpid(),
                                       MARK=_start_environment_mark())
            report["secrets"] = "visible" if evidence["secrets"] else "scrubbed"
            forked = _run(sandbox, PROCESSES, timeout=60.0, FORKS=FORKS)
            evidence["processes"] = f"{forked} of {FORKS} forks succeeded"
            report["processes"] = "bounded" if forked < FORKS else "unbounded"
            report["memory"], evidence["memory"] = _memory(sandbox)
            report["wall_time"], evidence["wall_time"] = _wall_time(sandbox)
    finally:
        listener.close()
        if saved is None:
            os.environ.pop(SECRET_VAR, None)
        else:
            os.environ[SECRET_VAR] = saved
    report["ok"] = all(report[k] == good for k, (good, _) in PROPERTIES.items())
    report["evidence"] = evidence
    return report


def _start_environment_mark() -> str:
    """One NAME=value of the environment this process started with (what /proc shows of it)."""
    try:
        first = Path(f"/proc/{os.getpid()}/environ").read_bytes().split(b"\0")[0]
        return first.decode(errors="replace") or "\0"
    except OSError:
        return "\0"


def _memory(sandbox) -> tuple[str, str]:
    try:
        outcome = _run(sandbox, MEMORY, timeout=60.0)
    except SandboxCrash as crash:  # killed by a cgroup limit: bounded
        return "bounded", crash.reason
    return ("bounded" if outcome == "refused" else "unbounded"), outcome


def _wall_time(sandbox) -> tuple[str, str]:
    try:
        _run(sandbox, "while True:\n    pass\n", timeout=2.0)
    except SandboxTimeout as timeout:
        return "bounded", timeout.reason
    return "unbounded", "an endless loop returned"
