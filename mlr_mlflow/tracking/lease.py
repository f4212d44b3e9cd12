"""Leases with fencing tokens: who may work on the rounds of an experiment, across processes and hosts.

MLflow tags are last-writer-wins, so a claim written as a tag is not a compare-and-set. When the
tracking store is a SQL database (sqlite, PostgreSQL, MySQL), the lease is a row of our own table
`mlr_leases` in that same database, taken and renewed by conditional statements whose row count says
who won:

- acquire: INSERT the row (a unique key: one winner), or, when the holder is gone, UPDATE ... WHERE
  token, owner and heartbeat = <those read>, setting token + 1 (a renewal landing in between keeps
  the holder). The token is the fencing token: it only grows.
- renew (every heartbeat): UPDATE ... SET heartbeat WHERE owner = me AND token = mine. A row count
  of 0 means the lease was taken over: the holder stops (`check`, which renews synchronously rather
  than trust a heartbeat thread that load may have starved, raises LeaseLost at the next stage
  boundary) and writes nothing more.
- release: owner emptied, token kept, so tokens stay monotonic.

A holder is gone when its heartbeat is older than `stale_s`, except that a holder on this machine is
judged by its process: the owner string names the host, the boot, the pid namespace, the pid and the
process's start time, so a live process (even one whose heartbeat is late, e.g. stopped or swapping)
is never taken over, a dead one is taken over at once, and a container that shares the hostname but
not the pid namespace is never judged by a pid that means something else there.

Stores without SQL access (an HTTP tracking server): set MLR_MLFLOW_LEASE_URL to a SQLAlchemy URL
that every worker reaches (the server's own database, say). Without it the lease falls back to an
experiment tag written, then read back after `settle_s`: it separates processes that start seconds
apart but is not a compare-and-set (documented in the README).
"""
from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid

from ..config import UsageError
from . import names

log = logging.getLogger(__name__)

LEASE_URL_ENV = "MLR_MLFLOW_LEASE_URL"
SQL_SCHEMES = ("sqlite:", "postgresql", "mysql", "mssql")
STALE_S = 60.0
EVERY_S = 15.0


class LeaseBusy(UsageError):
    """Someone else holds the lease (a usage error: exit status 2)."""


class LeaseLost(UsageError):
    """This process held the lease and another took it over: it must stop writing (exit status 2,
    with who holds it now)."""


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when unknown), so a reused pid is
    not mistaken for the process that wrote the lease."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rpartition(")")[2].split()[19] if stat else ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def _here() -> tuple[str, str, str]:
    return socket.gethostname().replace("|", "_"), _read("/proc/sys/kernel/random/boot_id"), _pid_namespace()


def owner_id() -> str:
    """host|boot id|pid namespace|pid|start time|random: unique per holder object."""
    host, boot, ns = _here()
    return f"{host}|{boot}|{ns}|{os.getpid()}|{_start_time(os.getpid())}|{uuid.uuid4().hex[:12]}"


def describe(owner: str) -> str:
    parts = owner.split("|")
    return f"pid {parts[3]} on {parts[0]}" if len(parts) >= 6 else owner or "nobody"


def alive_here(owner: str) -> bool | None:
    """True/False when `owner` is a process of this machine and pid namespace (alive or not);
    None when that cannot be told from here (another host, boot or pid namespace)."""
    parts = owner.split("|")
    if len(parts) < 6 or tuple(parts[:3]) != _here() or not parts[1] or not parts[2]:
        return None
    pid, started = int(parts[3]), parts[4]
    now = _start_time(pid)
    if not now:
        return False
    return not started or now == started


def _can_take(owner: str, heartbeat: float, stale_s: float, now: float) -> bool:
    if not owner:
        return True  # released
    alive = alive_here(owner)
    if alive is not None:
        return not alive
    return now - heartbeat > stale_s


@functools.lru_cache(maxsize=8)
def _engine(url: str):
    from sqlalchemy import create_engine

    args = {"connect_args": {"timeout": 30}} if url.startswith("sqlite:") else {}
    return create_engine(url, **args)


class SqlLeases:
    """The `mlr_leases` table in a SQL database (the tracking store's own, normally).

    `clock` gives the heartbeats written and the time they are judged against: wall-clock seconds,
    since holders on other hosts compare them (a test passes a clock it advances instead of sleeping)."""

    def __init__(self, url: str, clock=time.time):
        from sqlalchemy import Column, Float, Integer, MetaData, String, Table
        from sqlalchemy.exc import SQLAlchemyError

        self.url, self.clock = url, clock
        self.engine = _engine(url)
        meta = MetaData()
        self.table = Table("mlr_leases", meta, Column("name", String(250), primary_key=True),
                           Column("owner", String(400), nullable=False), Column("token", Integer, nullable=False),
                           Column("heartbeat", Float, nullable=False))
        try:
            meta.create_all(self.engine)
        except SQLAlchemyError:  # created at the same moment by another process
            meta.create_all(self.engine)

    def holder(self, name: str) -> tuple[str, int, float] | None:
        from sqlalchemy import select

        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.owner, t.c.token, t.c.heartbeat).where(t.c.name == name)).first()
        return (row.owner, row.token, row.heartbeat) if row else None

    def try_acquire(self, name: str, owner: str, stale_s: float) -> int | None:
        """The new fencing token, or None when the lease is held by a live holder (or just taken)."""
        from sqlalchemy import insert, update
        from sqlalchemy.exc import IntegrityError

        t = self.table
        current = self.holder(name)
        with self.engine.begin() as conn:
            if current is None:
                try:
                    conn.execute(insert(t).values(name=name, owner=owner, token=1, heartbeat=self.clock()))
                    return 1
                except IntegrityError:
                    return None
            held_by, token, beat = current
            if not _can_take(held_by, beat, stale_s, self.clock()):
                return None
            # The compare covers what the judgement read, not the token alone: a holder whose late
            # heartbeat lands between that read and this write keeps its lease (renewing does not
            # change the token, so a token-only compare took a lease over from a live holder).
            won = conn.execute(update(t).where(t.c.name == name, t.c.token == token,
                                               t.c.owner == held_by, t.c.heartbeat == beat)
                               .values(owner=owner, token=token + 1, heartbeat=self.clock())).rowcount
        return token + 1 if won == 1 else None

    def renew(self, name: str, owner: str, token: int) -> bool:
        from sqlalchemy import update

        t = self.table
        with self.engine.begin() as conn:
            return conn.execute(update(t).where(t.c.name == name, t.c.owner == owner, t.c.token == token)
                                .values(heartbeat=self.clock())).rowcount == 1

    def release(self, name: str, owner: str, token: int) -> None:
        from sqlalchemy import update

        t = self.table
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.name == name, t.c.owner == owner, t.c.token == token)
                         .values(owner="", heartbeat=0.0))


class TagLeases:
    """Fallback for stores reached only over HTTP: the lease is an experiment tag
    `token|heartbeat|owner`, written then read back after `settle_s`. Not a compare-and-set."""

    def __init__(self, client, experiment_id: str, settle_s: float = 2.0, clock=time.time):
        self.client, self.exp_id, self.settle_s, self.clock = client, experiment_id, settle_s, clock

    def _key(self, name: str) -> str:
        return names.lease_tag(name.rpartition('/')[0] or name)

    def holder(self, name: str) -> tuple[str, int, float] | None:
        value = self.client.get_experiment(self.exp_id).tags.get(self._key(name))
        if not value:
            return None
        token, beat, owner = value.split("|", 2)
        return owner, int(token), float(beat)

    def _write(self, name: str, owner: str, token: int, beat: float) -> None:
        self.client.set_experiment_tag(self.exp_id, self._key(name), f"{token}|{beat}|{owner}")

    def try_acquire(self, name: str, owner: str, stale_s: float) -> int | None:
        current = self.holder(name)
        if current is not None and not _can_take(current[0], current[2], stale_s, self.clock()):
            return None
        token = (current[1] if current else 0) + 1
        self._write(name, owner, token, self.clock())
        time.sleep(self.settle_s)
        after = self.holder(name)
        return token if after and after[0] == owner and after[1] == token else None

    def renew(self, name: str, owner: str, token: int) -> bool:
        current = self.holder(name)
        if not current or current[0] != owner or current[1] != token:
            return False
        self._write(name, owner, token, self.clock())
        return True

    def release(self, name: str, owner: str, token: int) -> None:
        current = self.holder(name)
        if current and current[0] == owner and current[1] == token:
            self._write(name, "", token, 0.0)


def backend_for(client, experiment_id: str, clock=time.time):
    """SqlLeases on $MLR_MLFLOW_LEASE_URL or on the tracking store's database; else TagLeases."""
    url = os.environ.get(LEASE_URL_ENV) or client.tracking_uri
    if url.startswith(SQL_SCHEMES):
        return SqlLeases(url, clock=clock)
    return TagLeases(client, experiment_id, clock=clock)


class Lease:
    """One holder of one named lease. `acquire()`, then a daemon thread renews it every `every_s`;
    when a renewal finds the lease taken over (or cannot renew it for `stale_s`), `lost` is set,
    `on_lost` callbacks run and `check()` raises LeaseLost. A context manager that releases.

    A callback that fails is logged and kept in `errors` (one line each), which LeaseLost repeats:
    the failure is never swallowed. `clock` (default: the backend's, wall-clock seconds) is what
    heartbeat ages are measured with; waiting and the heartbeat interval stay in real time."""

    def __init__(self, backend, name: str, *, what: str = "", stale_s: float = STALE_S,
                 every_s: float = EVERY_S, clock=None):
        self.backend, self.name, self.what = backend, name, what or name
        self.stale_s, self.every_s = stale_s, every_s
        self.clock = clock or getattr(backend, "clock", time.time)
        self.errors: list[str] = []
        self.owner = owner_id()
        self.token: int | None = None
        self.lost = threading.Event()
        self.on_lost: list = []
        self.on_beat: list = []
        self._stop = threading.Event()
        self._losing = threading.Lock()
        self._thread: threading.Thread | None = None

    def acquire(self, wait_s: float = 0.0, poll_s: float = 5.0) -> "Lease":
        deadline = time.monotonic() + wait_s
        while True:
            self.token = self.backend.try_acquire(self.name, self.owner, self.stale_s)
            if self.token is not None:
                break
            if time.monotonic() >= deadline:
                raise LeaseBusy(f"{self.what} is still running ({self.busy_holder()}); only one at a time")
            time.sleep(min(poll_s, max(deadline - time.monotonic(), 0.05)))
        self._thread = threading.Thread(target=self._beat, name=f"mlr-lease-{self.name}", daemon=True)
        self._thread.start()
        return self

    def busy_holder(self) -> str:
        """Who holds the lease, and how old their heartbeat is, for a refusal."""
        held = self.backend.holder(self.name)
        if not held or not held[0]:
            return "just taken"
        return f"{describe(held[0])}, heartbeat {self.clock() - held[2]:.0f} s ago"

    def check(self) -> None:
        """Raise LeaseLost if another process took the lease over: call before writing results.

        Asked of the store itself (a renewal: a compare on owner and token), not of the heartbeat
        thread's last answer: a heartbeat starved by load may not have run since a takeover. The
        renewal also restarts the holder's `stale_s`, so right after a check no other process can
        judge it stale for that long."""
        if not self.lost.is_set():
            try:
                held = self.backend.renew(self.name, self.owner, self.token)
            except Exception as exc:  # the store cannot say now; the heartbeat thread decides
                log.warning("lease %s: could not verify it (%s: %s)", self.name, type(exc).__name__,
                            str(exc)[:300])
                held = True
            if not held:
                self._lose()
        if self.lost.is_set():
            raise LeaseLost(f"{self.what}: lease {self.name} (token {self.token}) was taken over by "
                            f"another process ({self._holder_now()}); this one stops and writes "
                            "nothing more" + self.failures())

    def failures(self) -> str:
        """'' or '; then: <each callback failure>', for the message that reports the loss."""
        return "; then: " + "; ".join(self.errors) if self.errors else ""

    def _holder_now(self) -> str:
        try:
            held = self.backend.holder(self.name)
        except Exception:
            return "holder unknown"
        if not held or not held[0]:
            return "now released"
        return f"now held by {describe(held[0])} with token {held[1]}"

    def _failed(self, what: str, exc: Exception) -> None:
        line = f"{what} failed ({type(exc).__name__}: {str(exc)[:200]})"
        if line not in self.errors:  # a callback failing at every beat is said once
            self.errors.append(line)

    def _lose(self) -> None:
        with self._losing:  # the heartbeat thread and `check` may both find it: callbacks run once
            if self.lost.is_set():
                return
            self.lost.set()
        for callback in self.on_lost:
            try:
                callback()
            except Exception as exc:  # a callback must not keep the others from running
                log.exception("lease %s: a callback on losing it failed", self.name)
                self._failed("a callback on losing the lease", exc)

    def _beat(self) -> None:
        last_ok = self.clock()
        while not self._stop.wait(self.every_s):
            try:
                if not self.backend.renew(self.name, self.owner, self.token):
                    self._lose()
                    return
                last_ok = self.clock()
            except Exception as exc:  # a store hiccup; past stale_s another process may take it over
                log.warning("lease %s: heartbeat failed (%s: %s); retrying", self.name,
                            type(exc).__name__, str(exc)[:300])
                if self.clock() - last_ok > self.stale_s:
                    self._lose()
                    return
                continue
            for callback in self.on_beat:
                try:
                    callback(self)
                except Exception as exc:
                    log.exception("lease %s: a heartbeat callback failed", self.name)
                    self._failed("a heartbeat callback", exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.every_s + 5)
        if self.token is not None and not self.lost.is_set():
            try:
                self.backend.release(self.name, self.owner, self.token)
            except Exception as exc:  # the lease then expires by itself
                log.warning("lease %s: release failed (%s); it expires by itself", self.name, exc)

    def __enter__(self) -> "Lease":
        if self.token is None:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def rounds_lease(client, experiment_id: str, what: str, clock=time.time, **kwargs) -> Lease:
    """The lease on the rounds of one experiment (one kind): one round at a time, in any process."""
    return Lease(backend_for(client, experiment_id, clock), f"rounds/{experiment_id}", what=what,
                 clock=clock, **kwargs)
