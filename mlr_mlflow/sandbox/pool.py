"""Warm sandboxes, reused by every evaluation call of this process (the rounds of one scheduler too).

A sandbox's worker is a server that imported torch and lightning once and forks a fresh child per
call (`worker`), so keeping it between calls shares nothing that hypothesis code touched: after each
call the server has killed what the child left running and emptied its private temporary directory.
What is shared between calls is only the server's memory from before any call (imported modules,
copied on write into each child) and its fixed environment and limits. A call that times out or
crashes kills the server as before; the next call starts a fresh one. A call whose child the server
killed on a posted deadline (`SandboxOvertime`) leaves the server alive and warm: it goes back.
"""
from __future__ import annotations

import atexit
import os
import threading
from typing import Any, Callable

# servers kept per configuration while no call uses them: an evaluation call trains on up to one
# per usable CPU (at most 8 unless [sandbox] workers says more) side by side, and they come back warm
MAX_IDLE = max(2, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))

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


def prewarm(key: str, create: Callable[[], Any], count: int, target: str, payload: Any,
            timeout: float = 600.0) -> list[threading.Thread]:
    """Start servers in the background until `count` are idle for `key`: each answers one call of
    `target` on `payload` (a call that imports what the real ones need and does nothing), then
    waits idle for the next evaluation call. Returns the threads, for a caller that must wait."""
    with _lock:
        missing = max(0, count - len(_idle.get(key, [])))

    def start() -> None:
        sandbox = create()
        try:
            sandbox.call(target, payload, timeout)
        except Exception:  # a server that cannot start now will fail its real call loudly
            sandbox.close()
            return
        _give_back(key, sandbox)

    threads = [threading.Thread(target=start, name="mlr-prewarm", daemon=True) for _ in range(missing)]
    for thread in threads:
        thread.start()
    return threads


class WarmSandbox:
    """A `Sandbox` that borrows a warm server on its first call and gives it back on `close`."""

    def __init__(self, key: str, name: str, create: Callable[[], Any]):
        self.key, self.name, self._create = key, name, create
        self._sandbox = None
        self._killed = False

    def bind(self) -> "WarmSandbox":
        """Take an idle server now (or a new one, started on the first call), so that what is
        left idle is known: `prewarm` after `bind` starts only the servers still missing."""
        if self._killed:
            raise RuntimeError("this sandbox was stopped: the call it served has failed")
        if self._sandbox is None:
            self._sandbox = _take(self.key) or self._create()
        return self

    def call(self, target: str, payload: Any, timeout: float, limit: str | None = None) -> Any:
        return self.bind()._sandbox.call(target, payload, timeout, limit)

    @property
    def warm_up_s(self) -> float:
        """Seconds the last call waited for its server to start and import (not the call's time)."""
        return getattr(self._sandbox, "warm_up_s", 0.0)

    def stderr_tail(self, limit: int = 2000) -> str:
        return self._sandbox.stderr_tail(limit) if self._sandbox is not None else ""

    def kill(self) -> None:
        """End the borrowed server now (a call in flight on it fails); this sandbox takes no
        other (a later call raises), and the server is not given back to the pool."""
        self._killed = True
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:  # stopped, not closed: a call that already holds it starts no other
            sandbox.stop()

    def close(self) -> None:
        if self._sandbox is not None:
            sandbox, self._sandbox = self._sandbox, None
            _give_back(self.key, sandbox)

    def __enter__(self) -> "WarmSandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
