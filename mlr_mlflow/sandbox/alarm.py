"""The one time limit used inside sandbox workers: a periodic SIGALRM tick and a deadline.

While the alarm is armed, every tick checks the current deadline and, once it has passed, raises
`Overtime` into whatever runs. `Overtime` is a BaseException (so `except Exception` in hypothesis
code does not catch it; the static checks forbid bare `except:` and `finally`), and it is raised
again on every tick for as long as the deadline stays passed, so code that swallowed it once meets
it again a tick later. The deadline can move while armed: the probes set one per hypothesis, the
training guard one per call of hypothesis code (None while trusted code runs, so the tick costs
nothing there). Signals reach only the main thread: elsewhere the alarm is inert, and the caller's
own clock (the sandbox's wall-clock kill, the guard's time accounting) still applies.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager


class Overtime(BaseException):
    """Raised into code that ran past its deadline (again on every tick while it stays past it)."""


class Alarm:
    """A periodic tick; `deadline` (time.perf_counter() value or None) says when to fire."""

    def __init__(self, tick_s: float = 0.2):
        self.tick_s = tick_s
        self.deadline: float | None = None
        self._previous = None
        self._armed = False

    def _tick(self, signum, frame) -> None:
        if self.deadline is not None and time.perf_counter() >= self.deadline:
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
def time_limit(seconds: float, tick_s: float = 0.2):
    """Raise `Overtime` into the block once it has run `seconds` (main thread only)."""
    alarm = Alarm(tick_s)
    with alarm:
        alarm.deadline = time.perf_counter() + seconds
        yield alarm
