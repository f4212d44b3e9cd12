"""One scheduler per job store: a lock row with a heartbeat in the job store's database.

APScheduler's FAQ: a job store must not be shared by several schedulers. `start` takes this lock
or refuses with who holds it. The holder refreshes its heartbeat; a crashed holder stops doing so,
and after `stale_s` the next `start` takes the lock over, so a crash never blocks forever.
Taking and refreshing are compare-and-swap updates, safe on sqlite and PostgreSQL alike, and their
row counts are honoured: a heartbeat that updates no row means another scheduler took the lock over
(this one was stopped, partitioned or swapping for longer than `stale_s`); the holder then sets
`lost` and calls its `on_lost` callbacks, which pause and stop its scheduler, so two schedulers never
run jobs from one store. A holder that cannot reach the database for `stale_s` gives up the same way.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from ..config import UsageError


class SchedulerBusy(UsageError):
    """Another scheduler holds the job store (a usage error: exit status 2)."""


class SchedulerLock:
    def __init__(self, url: str, table: str = "mlr_scheduler_lock", stale_s: float = 60.0,
                 every_s: float = 15.0, on_lost: list | None = None):
        from sqlalchemy import Column, Float, Integer, MetaData, String, Table, create_engine
        from sqlalchemy.exc import SQLAlchemyError

        from ..tracking import TrackingError

        self.stale_s, self.every_s = stale_s, every_s
        self.owner = f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex[:8]}"
        self.lost = threading.Event()
        self.on_lost = list(on_lost or [])
        meta = MetaData()
        self.table = Table(table, meta, Column("id", Integer, primary_key=True),
                           Column("owner", String(200)), Column("heartbeat", Float))
        try:
            self.engine = create_engine(url)
            meta.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise TrackingError(f"job store {url!r} cannot be reached: {type(exc).__name__}: "
                                f"{(str(exc).splitlines() or [''])[0]}") from None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> tuple[str, float] | None:
        from sqlalchemy import select

        with self.engine.connect() as conn:
            row = conn.execute(select(self.table.c.owner, self.table.c.heartbeat)
                               .where(self.table.c.id == 1)).first()
        return (row.owner, row.heartbeat) if row else None

    def acquire(self) -> None:
        from sqlalchemy import insert, update
        from sqlalchemy.exc import IntegrityError

        current = self.holder()
        now = time.time()  # after the read: a heartbeat read back is never "in the future"
        with self.engine.begin() as conn:
            if current is None:
                try:
                    conn.execute(insert(self.table).values(id=1, owner=self.owner, heartbeat=now))
                    taken = True
                except IntegrityError:
                    taken = False
            elif now - current[1] > self.stale_s or current[0] == self.owner:
                taken = conn.execute(update(self.table).where(
                    self.table.c.id == 1, self.table.c.owner == current[0],
                    self.table.c.heartbeat == current[1]).values(owner=self.owner, heartbeat=now)
                ).rowcount == 1
            else:
                taken = False
        if not taken:
            owner, beat = self.holder() or ("?", now)
            host, pid, _ = (owner.split("|") + ["", ""])[:3]
            raise SchedulerBusy(f"another scheduler holds this job store (pid {pid} on {host}, "
                                f"heartbeat {time.time() - beat:.0f} s ago); only one may run per "
                                f"store. If it crashed, the lock frees itself after {self.stale_s:g} s.")
        self._thread = threading.Thread(target=self._beat, name="mlr-scheduler-lock", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        from sqlalchemy import update

        last_ok = time.time()
        while not self._stop.wait(self.every_s):
            try:
                with self.engine.begin() as conn:
                    kept = conn.execute(update(self.table).where(self.table.c.id == 1,
                                                                 self.table.c.owner == self.owner)
                                        .values(heartbeat=time.time())).rowcount == 1
            except Exception:  # a transient database error: the next beat may succeed...
                if time.time() - last_ok <= self.stale_s:
                    continue
                kept = False  # ...but past stale_s another scheduler may have taken over
            if not kept:
                self._lose()
                return
            last_ok = time.time()

    def _lose(self) -> None:
        self.lost.set()
        for callback in self.on_lost:
            try:
                callback()
            except Exception:  # stopping must go on
                pass

    def release(self) -> None:
        from sqlalchemy import delete

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(self.table).where(self.table.c.id == 1,
                                                      self.table.c.owner == self.owner))
        finally:
            self.engine.dispose()
