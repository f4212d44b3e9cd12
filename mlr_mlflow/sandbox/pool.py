"""Warm sandboxes, reused by every evaluation call of this process (the rounds of one scheduler too).

A sandbox's worker is a server that imported torch and lightning once and forks a fresh child per
call (`worker`), so keeping it between calls shares nothing that hypothesis code touched: after each
call the server has killed what the child left running and emptied its private temporary directory.
What is shared between calls is only the server's memory from before any call (imported modules,
copied on write into each child) and its fixed environment and limits. A call that times out or
crashes kills the server as before; the next call starts a fresh one.
"""
from __future__ import annotations

import atexit
import threading
from typing import Any, Callable

MAX_IDLE = 2  # servers kept per configuration while no call uses them

_idle: dict[str, list] = {}
_lock = threading.Lock()


def _take(key: str):
    with _lock:
        found = _idle.get(key, [])
        return found.pop() if found else None


def _give_back(key: str, sandbox) -> None:
    alive = getattr(sandbox, "_proc", None) is not None and sandbox._proc.poll() is None
    with _lock:
        found = _idle.setdefault(key, [])
        if alive and len(found) < MAX_IDLE:
            found.append(sandbox)
            return
    sandbox.close()


@atexit.register
def close_idle() -> None:
    """End every idle warm server (at exit, and for tests that want a cold start)."""
    with _lock:
        servers = [s for found in _idle.values() for s in found]
        _idle.clear()
    for sandbox in servers:
        sandbox.close()


class WarmSandbox:
    """A `Sandbox` that borrows a warm server on its first call and gives it back on `close`."""

    def __init__(self, key: str, name: str, create: Callable[[], Any]):
        self.key, self.name, self._create = key, name, create
        self._sandbox = None

    def call(self, target: str, payload: Any, timeout: float) -> Any:
        if self._sandbox is None:
            self._sandbox = _take(self.key) or self._create()
        return self._sandbox.call(target, payload, timeout)

    def stderr_tail(self, limit: int = 2000) -> str:
        return self._sandbox.stderr_tail(limit) if self._sandbox is not None else ""

    def close(self) -> None:
        if self._sandbox is not None:
            sandbox, self._sandbox = self._sandbox, None
            _give_back(self.key, sandbox)

    def __enter__(self) -> "WarmSandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
