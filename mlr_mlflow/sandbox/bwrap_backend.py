"""bubblewrap: the worker in new pid, network, ipc, uts and cgroup namespaces, as a user of its own.

Inside, the root file system holds only read-only binds of what Python needs (/usr, the Python
installation, this package) and a private, size-capped /tmp. The network namespace is empty (its
own loopback only), so neither the internet nor services on the host's loopback can be reached.
Started by root, bwrap mounts with root's rights and the worker then drops to a uid/gid of its own
(`identity.fresh_uid`, not the shared `nobody`) with no capabilities, so that RLIMIT_NPROC (which
root ignores) bounds its processes and threads by itself. Started by another user, bwrap makes a
user namespace, inside which the kernel counts RLIMIT_NPROC per namespace: the worker sets its
64-task limit first thing there. The rlimits and wall clock of `SubprocessSandbox` apply as well.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from .identity import MAX_TASKS, fresh_uid
from .probe_cache import kept
from .subprocess_backend import BOOTSTRAP, PACKAGE_PARENT, SubprocessSandbox

log = logging.getLogger(__name__)

INNER_PACKAGE_PARENT = "/opt/mlr"
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin")
NOBODY = 65534  # the docker backend's user (its pids limit is per container)
TMP_BYTES = 64 << 20

# Run first inside the sandbox: the task limit, then (bwrap started by root) the drop to a fresh uid.
LIMIT_TASKS = "import resource; resource.setrlimit(resource.RLIMIT_NPROC, ({n}, {n})); "
DROP_PRIVILEGES = "import os; os.setgroups([]); os.setgid({id}); os.setuid({id}); "


def _system_binds() -> list[str]:
    args = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    return args


def python_prefixes() -> list[str]:
    """The Python installation (and venv) directories that /usr does not already cover."""
    return [p for p in dict.fromkeys([sys.base_prefix, sys.prefix])
            if not any(p == d or p.startswith(d + "/") for d in SYSTEM_DIRS)]


def _python_binds() -> list[str]:
    """The Python installation (and venv), with world-readable parents so nobody can reach it."""
    args = []
    for prefix in python_prefixes():
        for parent in reversed(Path(prefix).parents):
            if str(parent) != "/":
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", prefix, prefix]
    return args


def bwrap_command(inner: list[str], as_root: bool | None = None) -> list[str]:
    as_root = os.geteuid() == 0 if as_root is None else as_root
    if as_root:  # no user namespace: the worker drops to nobody itself (see DROP_PRIVILEGES)
        isolation = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                     "--unshare-cgroup-try", "--cap-drop", "ALL",
                     "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        isolation = ["--unshare-all", "--cap-drop", "ALL"]
    # bwrap mounts in argument order: the private /tmp, /proc and /dev come first, so that an
    # interpreter living under one of them (a venv in /tmp) is bound on top of them, not hidden.
    args = ["bwrap", *isolation, "--die-with-parent", "--new-session",
            "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
            *_system_binds(), *_python_binds(),
            "--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", INNER_PACKAGE_PARENT,
            "--ro-bind", str(Path(PACKAGE_PARENT) / "mlr_mlflow"), f"{INNER_PACKAGE_PARENT}/mlr_mlflow"]
    if os.path.exists("/etc/ld.so.cache"):
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    args += ["--chdir", "/tmp",
             "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp",
             "--"]
    return args + inner


def inner_python(code: str) -> list[str]:
    """The command that runs `code` as the sandboxed Python, privileges dropped where needed."""
    prefix = LIMIT_TASKS.format(n=MAX_TASKS)
    if os.geteuid() == 0:
        prefix += DROP_PRIVILEGES.format(id=fresh_uid())
    return [sys.executable, "-I", "-c", prefix + code]


def bwrap_installed() -> bool:
    return shutil.which("bwrap") is not None


@lru_cache(maxsize=1)
@kept("bwrap_selftest")
def bwrap_selftest() -> str | None:
    """None when the worker starts inside bwrap here, else why not (not installed; a container
    that forbids its namespaces; an interpreter the sandbox's user cannot reach)."""
    if not bwrap_installed():
        return "bwrap is not installed (apt-get install -y bubblewrap)"
    failure = worker_selftest(lambda code: bwrap_command(inner_python(code)))
    if failure:
        log.info("sandbox: bwrap is installed but %s", failure)
    return failure


WORKER_PROBE = f"import sys; sys.path.insert(0, {INNER_PACKAGE_PARENT!r}); import mlr_mlflow.sandbox.worker"


def worker_selftest(command, env: dict | None = None) -> str | None:
    """Start an isolating backend's sandbox (`command(code)` -> argv) and import the worker in it:
    None when that works, else why not (its exit status and the end of its error output)."""
    try:
        done = subprocess.run(command(WORKER_PROBE), capture_output=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"its self-test failed: {exc}"
    return None if done.returncode == 0 else (
        f"its self-test exited {done.returncode}: "
        + " ".join(done.stderr.decode(errors="replace").split())[-300:])


def bwrap_available() -> bool:
    """bwrap is installed and the worker starts inside it here."""
    return bwrap_selftest() is None


@lru_cache(maxsize=1)
@kept("bwrap_namespaces_allowed")
def bwrap_namespaces_allowed() -> bool:
    """The kernel lets bwrap create its namespaces here (no Python involved: a bare `true`)."""
    if not bwrap_installed():
        return False
    isolation = ["--unshare-pid", "--unshare-net"] if os.geteuid() == 0 else ["--unshare-all"]
    try:
        return subprocess.run(["bwrap", *isolation, "--ro-bind", "/", "/", "--", "true"],
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class BwrapSandbox(SubprocessSandbox):
    """`SubprocessSandbox` with the worker wrapped in bubblewrap."""

    name = "bwrap"

    def identity(self) -> tuple[None, None]:
        return None, None  # set inside the sandbox (see inner_python)

    def command(self) -> list[str]:
        return bwrap_command(inner_python(BOOTSTRAP.format(parent=INNER_PACKAGE_PARENT)))
