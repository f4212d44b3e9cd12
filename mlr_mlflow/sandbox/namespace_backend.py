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

from .bwrap_backend import INNER_PACKAGE_PARENT, SYSTEM_DIRS, TMP_BYTES, python_prefixes
from .identity import MAX_TASKS, fresh_uid
from .subprocess_backend import BOOTSTRAP, PACKAGE_PARENT, SubprocessSandbox

log = logging.getLogger(__name__)

TOOLS = ("unshare", "mount", "umount", "pivot_root", "prlimit", "setpriv")
DEVICES = ("null", "zero", "full", "random", "urandom")
ROOT = "/tmp"  # where the new root is assembled, on a tmpfs private to the mount namespace


def _q(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


def _bind(src: str, dst: str, directory: bool = True) -> list[str]:
    make = f"mkdir -p {_q(ROOT + dst)}" if directory else \
        f"mkdir -p {_q(str(Path(ROOT + dst).parent))} && : > {_q(ROOT + dst)}"
    # A user namespace may not clear the nosuid/nodev flags of the source mount: keep them if needed.
    target = _q(ROOT + dst)
    return [make, f"mount --bind {_q(src, ROOT + dst)}",
            f"mount -o remount,bind,ro {target} 2>/dev/null || "
            f"mount -o remount,bind,ro,nosuid,nodev {target}"]


def setup_script(inner: list[str], uid: int | None, prefixes: list[str] | None = None) -> str:
    """The shell that runs inside the new namespaces: assemble the root, enter it, drop, exec."""
    lines = ["set -e", "umask 022", 'worker_path="$PATH"', 'PATH="/usr/sbin:/sbin:$PATH"',
             f"mount -t tmpfs -o size=8m,mode=0755 mlr-root {ROOT}"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            lines.append(f"ln -s {_q(os.readlink(d), ROOT + d)}")
        elif os.path.isdir(d):
            lines += _bind(d, d)
    for prefix in python_prefixes() if prefixes is None else prefixes:
        lines += _bind(prefix, prefix)
    lines += _bind(str(Path(PACKAGE_PARENT) / "mlr_mlflow"), f"{INNER_PACKAGE_PARENT}/mlr_mlflow")
    if os.path.exists("/etc/ld.so.cache"):
        lines += _bind("/etc/ld.so.cache", "/etc/ld.so.cache", directory=False)
    lines.append(f"mkdir -p {ROOT}/dev {ROOT}/proc {ROOT}/tmp {ROOT}/.old")
    for dev in DEVICES:
        if os.path.exists(f"/dev/{dev}"):
            lines += [f": > {ROOT}/dev/{dev}", f"mount --bind /dev/{dev} {ROOT}/dev/{dev}"]
    lines += [
        f"mount -t tmpfs -o size={TMP_BYTES},mode=1777,nosuid,nodev mlr-tmp {ROOT}/tmp",
        # /proc of the new pid namespace (only this worker's processes); skipped where the kernel
        # refuses it (a container that masks parts of the host's /proc)
        f"mount -t proc -o nosuid,nodev,noexec proc {ROOT}/proc 2>/dev/null || rmdir {ROOT}/proc",
        f"cd {ROOT}", "pivot_root . .old", "umount -l /.old", "rmdir /.old",
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


@lru_cache(maxsize=1)
def namespace_available() -> bool:
    """Linux, util-linux present, and the kernel lets this user create the namespaces."""
    search = "/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
    if not sys.platform.startswith("linux") or any(shutil.which(t, path=search) is None for t in TOOLS):
        return False
    try:
        probe = f"import sys; sys.path.insert(0, {INNER_PACKAGE_PARENT!r}); import mlr_mlflow.sandbox.worker"
        done = subprocess.run(namespace_command(inner_python(probe)), capture_output=True,
                              timeout=60, env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("sandbox: the namespace backend's self-test failed: %s", exc)
        return False
    if done.returncode != 0:
        log.warning("sandbox: the namespace backend's self-test exited %d: %s", done.returncode,
                    done.stderr.decode(errors="replace").strip()[-300:])
    return done.returncode == 0


class NamespaceSandbox(SubprocessSandbox):
    """`SubprocessSandbox` with the worker wrapped in fresh namespaces (see the module docstring)."""

    name = "namespace"

    def identity(self) -> tuple[None, None]:
        return None, None  # set inside the namespaces (see setup_script)

    def command(self) -> list[str]:
        return namespace_command(inner_python(BOOTSTRAP.format(parent=INNER_PACKAGE_PARENT)))
