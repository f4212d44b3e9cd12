"""One scheduler per job store: the tracking lease (tracking/lease.py) named `scheduler`, in the job
store's database.

APScheduler's FAQ: a job store must not be shared by several schedulers. `start` takes this lease or
refuses with who holds it. It is the same lease that makes rounds of a kind one at a time, so it
inherits its rules rather than repeating them: a compare-and-set row with a fencing token, a holder
on this machine judged by its process (a dead scheduler is taken over at once, a live one never),
one elsewhere by its heartbeat (taken over after `stale_s` without one), and a holder that finds
itself taken over (or cannot renew for `stale_s`) sets `lost` and calls its `on_lost` callbacks,
which pause and stop its scheduler, so two schedulers never run jobs from one store. A callback that
fails is logged and reported when the scheduler stops (`Lease.errors`).
"""
from __future__ import annotations

import time

from ..config import UsageError
from ..tracking.lease import Lease, LeaseBusy, SqlLeases

NAME = "scheduler"


class SchedulerBusy(UsageError):
    """Another scheduler holds the job store (a usage error: exit status 2)."""


class SchedulerLock(Lease):
    """The scheduler's lease on the job store at `url` (a SQLAlchemy URL).

    `clock` is the wall clock heartbeats are written and judged with (a test passes one it advances)."""

    def __init__(self, url: str, name: str = NAME, stale_s: float = 60.0, every_s: float = 15.0,
                 on_lost: list | None = None, clock=time.time):
        from sqlalchemy.exc import SQLAlchemyError

        from ..tracking import TrackingError

        try:
            backend = SqlLeases(url, clock=clock)
        except SQLAlchemyError as exc:
            raise TrackingError(f"job store {url!r} cannot be reached: {type(exc).__name__}: "
                                f"{(str(exc).splitlines() or [''])[0]}") from None
        super().__init__(backend, name, what="a scheduler on this job store", stale_s=stale_s,
                         every_s=every_s, clock=clock)
        self.on_lost.extend(on_lost or [])

    def holder(self) -> tuple[str, float] | None:
        """(owner, heartbeat) of the scheduler holding the store, None when none does."""
        held = self.backend.holder(self.name)
        return (held[0], held[2]) if held and held[0] else None

    def acquire(self, wait_s: float = 0.0, poll_s: float = 5.0) -> "SchedulerLock":
        try:
            super().acquire(wait_s, poll_s)
        except LeaseBusy:
            raise SchedulerBusy(f"another scheduler holds this job store ({self.busy_holder()}); "
                                f"only one may run per store. If it crashed, the lock frees itself "
                                f"at once on this host, after {self.stale_s:g} s elsewhere.") from None
        return self
