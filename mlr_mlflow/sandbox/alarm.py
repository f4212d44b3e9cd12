"""The one time limit used inside sandbox workers: a periodic SIGALRM tick and a deadline, watched
from outside as well.

While the alarm is armed, every tick checks the current deadline and, once it has passed, raises
`Overtime` into whatever runs. `Overtime` is a BaseException (so `except Exception` in hypothesis
code does not catch it; the static checks forbid bare `except:` and `finally`), and it is raised
again on every tick for as long as the deadline stays passed, so code that swallowed it once meets
it again a tick later. The deadline can move while armed: the probes set one per hypothesis, the
training guard one per call of hypothesis code (None while trusted code runs, so the tick costs
nothing there). Signals reach only the main thread: elsewhere the alarm is inert.

A signal handler runs only between bytecodes, so one long call in C (`pow(3, 40_000_000)`, a huge
`10 ** 10 ** 8`) never meets it. Every deadline is therefore also published, with the reason to give
and who to blame, in the `Watch` the worker server shares with its child (`worker`): the server,
which runs no hypothesis code, kills the child once a deadline is `GRACE_S` past and answers with
that reason (`SandboxOvertime` in the caller), so a time limit holds whatever the code calls.
"""
from __future__ import annotations

import json
import math
import mmap
import signal
import struct
import threading
import time
from contextlib import contextmanager

GRACE_S = 1.0  # past a deadline, the tick's turn first; then the server kills the child
_HEAD = struct.Struct("=dI")  # deadline (time.monotonic(), 0 = none), length of the JSON note
_NONE = _HEAD.pack(0.0, 0)


class Overtime(BaseException):
    """Raised into code that ran past its deadline (again on every tick while it stays past it)."""


class Watch:
    """A page shared between the worker server and its child: the child's current deadline and the
    note to answer with if the server has to kill it. The server trusts it no further than this:
    code that escaped the restricted loader could clear it, and then the call's own wall clock
    (the parent's kill of the whole server) still ends the call."""

    SIZE = 1 << 16

    def __init__(self):
        self._map = mmap.mmap(-1, self.SIZE)  # anonymous and shared: inherited by fork
        self._note, self._size = None, 0  # the note last written (the training guard repeats it)

    def post(self, deadline: float | None, note: dict | None = None) -> None:
        if deadline is None or not math.isfinite(deadline) or note != self._note:
            self._map[:_HEAD.size] = _NONE  # never a new deadline with an old note
        if deadline is None or not math.isfinite(deadline):
            return
        if note != self._note:
            body = json.dumps(note or {}).encode()
            if len(body) > self.SIZE - _HEAD.size:  # too many culprits to name: the reason alone
                body = json.dumps({"reason": (note or {}).get("reason")}).encode()[:self.SIZE - _HEAD.size]
            self._map[_HEAD.size:_HEAD.size + len(body)] = body
            self._note, self._size = note, len(body)
        self._map[:_HEAD.size] = _HEAD.pack(deadline, self._size)

    def overdue(self, grace_s: float = GRACE_S) -> dict | None:
        """The posted note once its deadline is more than `grace_s` past, else None."""
        deadline, size = _HEAD.unpack(self._map[:_HEAD.size])
        if not deadline or time.monotonic() < deadline + grace_s:
            return None
        try:
            note = json.loads(bytes(self._map[_HEAD.size:_HEAD.size + min(size, self.SIZE)]))
        except ValueError:
            note = None
        return note if isinstance(note, dict) else {}


_watch: Watch | None = None  # set in a sandbox worker's child only (`attach`), one per process


def attach(watch: Watch | None) -> None:
    """Publish this process's deadlines in `watch` (the worker's child, right after fork)."""
    global _watch
    _watch = watch


class Alarm:
    """A periodic tick; `deadline` (time.perf_counter() value or None) says when to fire. `set`
    also says what to report and whom to blame if the deadline has to be enforced from outside."""

    def __init__(self, tick_s: float = 0.2):
        self.tick_s = tick_s
        self._deadline: float | None = None
        self._previous = None
        self._armed = False

    @property
    def deadline(self) -> float | None:
        return self._deadline

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        self.set(value)

    def set(self, deadline: float | None, reason: str = "time limit reached",
            culprit: list | None = None) -> None:
        self._deadline = deadline
        if _watch is not None:
            outside = None if deadline is None else time.monotonic() + (deadline - time.perf_counter())
            _watch.post(outside, {"reason": reason, "culprit": culprit})

    def _tick(self, signum, frame) -> None:
        if self._deadline is not None and time.perf_counter() >= self._deadline:
            raise Overtime()

    def __enter__(self) -> "Alarm":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGALRM, self._tick)
            signal.setitimer(signal.ITIMER_REAL, self.tick_s, self.tick_s)
            self._armed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._armed = False
        self.deadline = None


@contextmanager
def time_limit(seconds: float, tick_s: float = 0.2, reason: str | None = None,
               culprit: list | None = None):
    """Raise `Overtime` into the block once it has run `seconds` (main thread only); past
    `GRACE_S` more, the worker server kills the process and answers `reason`."""
    alarm = Alarm(tick_s)
    with alarm:
        alarm.set(time.perf_counter() + seconds, reason or f"timed out after {seconds:g} s", culprit)
        yield alarm
