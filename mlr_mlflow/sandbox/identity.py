"""Who a sandboxed worker runs as, and how many processes it may have.

RLIMIT_NPROC counts the processes (threads included) of a user, and root is exempt from it. So a
worker started by root drops to a user id of its own, unused by anyone else (`fresh_uid`): each
sandbox then has a 64-task budget of its own instead of sharing one with every other sandbox that
runs as `nobody`. Inside a fresh user namespace (rootless bwrap, the namespace backend run by an
unprivileged user) the kernel counts per namespace, so the same limit is per sandbox there too.
"""
from __future__ import annotations

import os
import secrets
import stat
import sys
from pathlib import Path

MAX_TASKS = 64
# Far above any uid a distribution hands out, below the 32-bit "no uid" values.
UID_BASE = 2_000_000_000
UID_SPAN = 100_000_000


def fresh_uid() -> int:
    """A user (and group) id no other process uses: one per sandbox worker."""
    return UID_BASE + secrets.randbelow(UID_SPAN)


def user_task_count(uid: int) -> int:
    """Tasks (processes and threads) that `uid` runs now, the count RLIMIT_NPROC compares with."""
    count = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


def world_reachable(path: str) -> bool:
    """Any user can reach `path`: every parent directory is searchable and the path readable."""
    p = Path(path).resolve()
    for parent in reversed(p.parents):
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    try:
        return bool(os.stat(p).st_mode & stat.S_IROTH)
    except OSError:
        return False


def interpreter_world_reachable(package_dir: str) -> bool:
    """Another user could start this Python and import this package (needed to drop to one)."""
    return all(world_reachable(p) for p in (sys.executable, sys.prefix, sys.base_prefix, package_dir))
