"""namespace: the worker in new network, mount, pid, ipc and uts namespaces, built from util-linux alone.

Nothing needs installing: `unshare`, `mount`, `pivot_root`, `prlimit` and `setpriv` are part of
util-linux, present on practically every Linux system. Started by root, the namespaces are created
directly and the worker then drops to a user id of its own (`identity.fresh_uid`); started by an
unprivileged user, a user namespace comes first (where the kernel allows one) and the worker keeps
that namespace's root, with no capabilities. Either way:
- the network namespace is new and empty: no route anywhere, not even to the host's loopback;
- the root file system is a private tmpfs, remounted read-only, holding read-only binds of /usr,
  the Python installation and this package, a private size-capped /tmp, /proc of the new pid
  namespace and a few device nodes; nothing else of the host is visible;
- the worker is pid 1 of its pid namespace: killing it ends everything it started;
- no capabilities (bounding set cleared, no_new_privs) and RLIMIT_NPROC of 64 tasks, counted for
  its own uid or its own user namespace, so each sandbox has its own budget;
- the rlimits, scrubbed environment and wall clock of `SubprocessSandbox` apply as well.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from .bwrap_backend import INNER_PACKAGE_PARENT, SYSTEM_DIRS, TMP_BYTES, python_prefixes, worker_selftest
from .identity import MAX_TASKS, fresh_uid
from .probe_cache import kept
from .subprocess_backend import BOOTSTRAP, PACKAGE_PARENT, SubprocessSandbox

log = logging.getLogger(__name__)

TOOLS = ("unshare", "mount", "umount", "pivot_root", "prlimit", "setpriv")
DEVICES = ("null", "zero", "full", "random", "urandom")
# Where the new root is assembled, on a tmpfs private to the mount namespace: the first of these
# that holds nothing the root binds (a venv in /tmp moves it to /mnt), so no source is hidden.
ASSEMBLY_DIRS = ("/tmp", "/mnt", "/media", "/srv", "/var/tmp", "/opt", "/home", "/boot")


def _q(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


def _bind(root: str, src: str, dst: str, directory: bool = True) -> list[str]:
    make = f"mkdir -p {_q(root + dst)}" if directory else \
        f"mkdir -p {_q(str(Path(root + dst).parent))} && : > {_q(root + dst)}"
    # A user namespace may not clear the nosuid/nodev flags of the source mount: keep them if needed.
    target = _q(root + dst)
    return [make, f"mount --bind {_q(src, root + dst)}",
            f"mount -o remount,bind,ro {target} 2>/dev/null || "
            f"mount -o remount,bind,ro,nosuid,nodev {target}"]


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def assembly_dir(sources: list[str]) -> str | None:
    """Where to assemble the new root: a host directory that none of the bound `sources` lies in."""
    return next((d for d in ASSEMBLY_DIRS if os.path.isdir(d) and not os.path.islink(d)
                 and not any(_under(s, d) for s in sources)), None)


def setup_script(inner: list[str], uid: int | None, prefixes: list[str] | None = None) -> str:
    """The shell that runs inside the new namespaces: assemble the root, enter it, drop, exec."""
    prefixes = python_prefixes() if prefixes is None else prefixes
    package = str(Path(PACKAGE_PARENT) / "mlr_mlflow")
    binds = [(d, d) for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    binds += [(p, p) for p in prefixes] + [(package, f"{INNER_PACKAGE_PARENT}/mlr_mlflow")]
    root = assembly_dir([src for src, _ in binds] + ["/etc/ld.so.cache", "/dev"])
    if root is None:
        return (f"echo {_q('namespace: no directory to assemble the root in: each of ' + ' '.join(ASSEMBLY_DIRS))}"
                f"{_q(' is missing or holds the interpreter or this package')} >&2; exit 1")
    lines = ["set -e", "umask 022", 'worker_path="$PATH"', 'PATH="/usr/sbin:/sbin:$PATH"',
             f"mount -t tmpfs -o size=8m,mode=0755 mlr-root {root}",
             f"mkdir -p {root}/dev {root}/proc {root}/tmp {root}/.old",
             # the private /tmp first: an interpreter that lives in /tmp is bound on top of it
             f"mount -t tmpfs -o size={TMP_BYTES},mode=1777,nosuid,nodev mlr-tmp {root}/tmp"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            lines.append(f"ln -s {_q(os.readlink(d), root + d)}")
    for src, dst in binds:
        lines += _bind(root, src, dst)
    if os.path.exists("/etc/ld.so.cache"):
        lines += _bind(root, "/etc/ld.so.cache", "/etc/ld.so.cache", directory=False)
    for dev in DEVICES:
        if os.path.exists(f"/dev/{dev}"):
            lines += [f": > {root}/dev/{dev}", f"mount --bind /dev/{dev} {root}/dev/{dev}"]
    lines += [
        # /proc of the new pid namespace (only this worker's processes); skipped where the kernel
        # refuses it (a container that masks parts of the host's /proc)
        f"mount -t proc -o nosuid,nodev,noexec proc {root}/proc 2>/dev/null || rmdir {root}/proc",
        f"cd {root}", "pivot_root . .old", "umount -l /.old", "rmdir /.old",
        "mount -o remount,ro,bind /", "cd /tmp",
        'export HOME=/tmp TMPDIR=/tmp MPLCONFIGDIR=/tmp PATH="$worker_path"',
    ]
    drop = ["setpriv"]
    if uid is not None:
        drop += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    drop += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    # The task limit is set here, after the user namespace exists, so that it counts in it.
    lines.append("exec " + _q("prlimit", f"--nproc={MAX_TASKS}:{MAX_TASKS}", "--", *drop, *inner))
    return "\n".join(lines)


def namespace_command(inner: list[str], as_root: bool | None = None,
                      prefixes: list[str] | None = None) -> list[str]:
    """`prefixes`: the Python installation directories to bind (default: this interpreter's)."""
    as_root = os.geteuid() == 0 if as_root is None else as_root
    user = [] if as_root else ["--user", "--map-root-user"]
    return ["unshare", *user, "--net", "--mount", "--pid", "--ipc", "--uts", "--fork",
            "--kill-child", "--propagation", "private", "--",
            "/bin/sh", "-c", setup_script(inner, fresh_uid() if as_root else None, prefixes)]


def inner_python(code: str) -> list[str]:
    return [sys.executable, "-I", "-c", code]


SEARCH = "/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
TOOL_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def _tools_present() -> bool:
    return sys.platform.startswith("linux") and all(shutil.which(t, path=SEARCH) for t in TOOLS)


@lru_cache(maxsize=1)
@kept("namespace_selftest")
def namespace_selftest() -> str | None:
    """None when the worker starts in the namespaces here, else why not."""
    if not _tools_present():
        return "it needs Linux and util-linux (" + ", ".join(TOOLS) + ")"
    failure = worker_selftest(lambda code: namespace_command(inner_python(code)), env=TOOL_ENV)
    if failure:
        log.info("sandbox: the namespace backend is not usable: %s", failure)
    return failure


def namespace_available() -> bool:
    """Linux, util-linux present, and the worker starts in the namespaces here."""
    return namespace_selftest() is None


@lru_cache(maxsize=1)
@kept("namespaces_allowed")
def namespaces_allowed() -> bool:
    """The kernel lets this user create the namespaces (no Python involved: a bare `true`)."""
    if not _tools_present():
        return False
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    try:
        return subprocess.run(["unshare", *user, "--net", "--mount", "--pid", "--fork", "--", "true"],
                              capture_output=True, timeout=60, env=TOOL_ENV).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class NamespaceSandbox(SubprocessSandbox):
    """`SubprocessSandbox` with the worker wrapped in fresh namespaces (see the module docstring)."""

    name = "namespace"

    def identity(self) -> tuple[None, None]:
        return None, None  # set inside the namespaces (see setup_script)

    def command(self) -> list[str]:
        return namespace_command(inner_python(BOOTSTRAP.format(parent=INNER_PACKAGE_PARENT)))
