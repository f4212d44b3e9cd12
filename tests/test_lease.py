"""The lease that makes rounds of a kind one at a time (tracking/lease.py), on a real sqlite
database and on the PostgreSQL at 127.0.0.1:5432: a compare-and-set, fencing tokens that only grow,
a holder that finds itself taken over stops, and liveness judged by process only where it means
something (same host, boot and pid namespace)."""
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from .conftest import POSTGRES, postgres_available
from mlr_mlflow.tracking.lease import Lease, LeaseBusy, LeaseLost, SqlLeases, alive_here, owner_id


class Clock:
    """A wall clock the test advances: heartbeats go stale without sleeping."""

    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/leases.db"
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    return POSTGRES


def holder_process(url: str, name: str, every_s: float) -> subprocess.Popen:
    """Another process that takes the lease, says so, and keeps it (beating every `every_s`)."""
    code = textwrap.dedent(f"""
        import sys, time
        from mlr_mlflow.tracking.lease import Lease, SqlLeases
        lease = Lease(SqlLeases({url!r}), {name!r}, every_s={every_s}).acquire()
        print(lease.token, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert int(proc.stdout.readline())
    return proc


def test_one_holder_at_a_time_and_tokens_only_grow(url):
    name = f"rounds/{uuid.uuid4().hex}"
    first = Lease(SqlLeases(url), name).acquire()
    with pytest.raises(LeaseBusy, match="a round of kind activation is still running"):
        Lease(SqlLeases(url), name, what="a round of kind activation").acquire()  # a live holder here
    first.release()
    second = Lease(SqlLeases(url), name).acquire()
    assert second.token == first.token + 1
    second.release()


def test_a_dead_holder_on_this_host_is_taken_over_at_once_a_live_stale_one_never(url):
    name = f"rounds/{uuid.uuid4().hex}"
    proc = holder_process(url, name, every_s=3600)  # alive, but its heartbeat goes stale
    clock = Clock()
    clock.advance(120)  # two minutes later, by the taker's clock
    try:
        with pytest.raises(LeaseBusy, match=f"pid {proc.pid}"):
            Lease(SqlLeases(url, clock=clock), name, stale_s=1).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lease = Lease(SqlLeases(url), name, stale_s=3600).acquire()  # dead: no need to wait it out
    assert lease.token == 2
    lease.release()


def test_holders_elsewhere_are_judged_by_heartbeat_not_by_a_pid(url):
    here = owner_id().split("|")
    other_host = "|".join(["elsewhere", *here[1:]])
    other_namespace = "|".join([here[0], here[1], "pid:[1]", *here[3:]])  # same hostname, own pids
    assert alive_here(other_host) is None and alive_here(other_namespace) is None
    assert alive_here(owner_id()) is True
    clock = Clock()
    leases = SqlLeases(url, clock=clock)
    for owner in (other_host, other_namespace):
        name = f"rounds/{uuid.uuid4().hex}"
        assert leases.try_acquire(name, owner, stale_s=60) == 1
        with pytest.raises(LeaseBusy):  # our pid is alive here, but means nothing there
            Lease(leases, name, stale_s=60).acquire()
        clock.advance(61)
        with pytest.raises(LeaseBusy):  # its heartbeat is 61 s old: not stale under 120 s
            Lease(leases, name, stale_s=120).acquire()
        taken = Lease(leases, name, stale_s=60).acquire()
        assert taken.token == 2
        taken.release()


def test_a_holder_taken_over_learns_it_at_its_next_heartbeat_and_stops(url):
    name = f"rounds/{uuid.uuid4().hex}"
    leases = SqlLeases(url)
    called = []
    holder = Lease(leases, name, every_s=0.1)
    holder.on_lost.append(lambda: called.append(True))
    holder.acquire()
    holder.check()  # still ours
    # another host found our heartbeat stale (a partition, a long pause) and took the lease:
    # its compare-and-set, as it runs there (from here, this live process is never taken over)
    from sqlalchemy import update

    t = leases.table
    with leases.engine.begin() as conn:
        assert conn.execute(update(t).where(t.c.name == name, t.c.token == holder.token).values(
            owner="elsewhere|b|pid:[1]|1|1|x", token=holder.token + 1, heartbeat=time.time())
        ).rowcount == 1
    assert holder.lost.wait(10)
    with pytest.raises(LeaseLost, match="taken over"):
        holder.check()
    assert called == [True]
    assert not leases.renew(name, holder.owner, holder.token)  # the fencing token is stale
    holder.release()  # releases nothing of the new holder's
    assert leases.holder(name)[0].startswith("elsewhere|")


def test_two_processes_racing_for_a_free_lease_get_one_winner(url, tmp_path):
    name = f"rounds/{uuid.uuid4().hex}"
    code = textwrap.dedent(f"""
        import sys, time
        from mlr_mlflow.tracking.lease import Lease, LeaseBusy, SqlLeases
        leases = SqlLeases({url!r})
        time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
        try:
            lease = Lease(leases, {name!r}).acquire()
        except LeaseBusy:
            print("busy", flush=True)
        else:
            print("won", lease.token, flush=True)
            time.sleep(3)
    """)
    start = time.time() + 3
    procs = [subprocess.Popen([sys.executable, "-c", code, str(start)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ}) for _ in range(3)]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs == ["busy", "busy", "won 1"]


def test_the_tag_fallback_for_http_stores_keeps_one_holder_and_fences(tmp_path):
    """Without SQL access the lease is an experiment tag written then read back (not a CAS, as
    the README says); it still refuses a live holder and tells a taken-over holder."""
    from mlflow import MlflowClient

    from mlr_mlflow.tracking.lease import TagLeases

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.create_experiment("mlr-activation")
    leases = TagLeases(client, exp, settle_s=0.1)
    name = f"rounds/{exp}"
    # no heartbeat thread at work: a renewal is a read then a write here, so one in flight could
    # write the old holder back over the takeover (not a compare-and-set, as said); check() asks
    first = Lease(leases, name, every_s=3600).acquire()
    assert client.get_experiment(exp).tags["mlr.lease.rounds"].startswith("1|")
    with pytest.raises(LeaseBusy):
        Lease(leases, name).acquire()
    first.check()
    leases._write(name, "elsewhere|b|pid:[1]|1|1|x", first.token + 1, time.time())  # taken over
    with pytest.raises(LeaseLost):
        first.check()
    assert first.lost.is_set()
    first.release()
    assert leases.holder(name)[0].startswith("elsewhere|")


def test_heartbeat_failures_are_logged_not_swallowed(tmp_path, caplog):
    import logging

    from sqlalchemy import text

    clock = Clock()
    leases = SqlLeases(f"sqlite:///{tmp_path}/leases.db", clock=clock)
    holder = Lease(leases, f"rounds/{uuid.uuid4().hex}", every_s=0.05, stale_s=60)

    def failing(_):
        raise RuntimeError("callback broke")

    holder.on_beat.append(failing)
    with caplog.at_level(logging.WARNING, logger="mlr_mlflow.tracking.lease"):
        holder.acquire()
        deadline = time.time() + 10
        while "heartbeat callback failed" not in caplog.text and time.time() < deadline:
            time.sleep(0.05)
        with leases.engine.begin() as conn:  # the store now refuses every renewal
            conn.execute(text(f"DROP TABLE {leases.table.name}"))
        while "heartbeat failed" not in caplog.text and time.time() < deadline + 10:
            time.sleep(0.05)
        assert not holder.lost.is_set()  # a hiccup within stale_s: it retries
        clock.advance(61)
        assert holder.lost.wait(10)  # past stale_s without a renewal: the lease is given up
        holder.release()
    assert "heartbeat callback failed" in caplog.text and "callback broke" in caplog.text
    assert "heartbeat failed" in caplog.text
    with pytest.raises(LeaseLost, match="a heartbeat callback failed .RuntimeError: callback broke"):
        holder.check()  # and the loss reports it


def test_a_failing_callback_on_losing_the_lease_is_logged_and_reported(url, caplog):
    """The callbacks run when a lease is lost (pause the scheduler, say) must not fail silently:
    the others still run, the failure is logged, and the loss's error names it."""
    from sqlalchemy import update

    name = f"rounds/{uuid.uuid4().hex}"
    leases = SqlLeases(url)
    holder = Lease(leases, name, every_s=3600).acquire()
    ran = []

    def broken():
        raise RuntimeError("could not pause")

    holder.on_lost.extend([broken, lambda: ran.append(True)])
    t = leases.table
    with leases.engine.begin() as conn:  # another host's compare-and-set
        conn.execute(update(t).where(t.c.name == name).values(owner=ELSEWHERE, token=holder.token + 1))
    with pytest.raises(LeaseLost, match="a callback on losing the lease failed .RuntimeError: could not pause"):
        holder.check()
    assert ran == [True]
    assert "a callback on losing it failed" in caplog.text
    holder.release()


# --- issue 26, item 10: the windows a heartbeat starved by load opened, interleaved step by step --
ELSEWHERE = "elsewhere|b|pid:[1]|1|1|x"  # a holder on another host: judged by its heartbeat


class SeenThenRenewed(SqlLeases):
    """A real SqlLeases whose would-be taker reads the holder, and then, before its own write, the
    holder's late heartbeat lands (the exact interleaving, made deterministic)."""

    def __init__(self, url, holder_owner, holder_token):
        super().__init__(url)
        self.holder_owner, self.holder_token = holder_owner, holder_token

    def holder(self, name):
        seen = super().holder(name)
        assert SqlLeases(self.url).renew(name, self.holder_owner, self.holder_token)
        return seen


def test_a_takeover_judged_on_a_stale_heartbeat_loses_to_the_holders_late_renewal(url):
    """A holder on another host whose heartbeat was starved (older than stale_s) renews between a
    taker's read and its compare-and-set: the holder keeps its lease. (The compare used to be on
    the token alone, which a renewal does not change: both then held it.)"""
    name = f"rounds/{uuid.uuid4().hex}"
    leases = SqlLeases(url)
    assert leases.try_acquire(name, ELSEWHERE, stale_s=60) is not None
    t = leases.table
    from sqlalchemy import update

    with leases.engine.begin() as conn:  # its heartbeat is two minutes late
        conn.execute(update(t).where(t.c.name == name).values(heartbeat=time.time() - 120))
    token = leases.holder(name)[1]
    taker = SeenThenRenewed(url, ELSEWHERE, token)
    assert taker.try_acquire(name, owner_id(), stale_s=60) is None
    assert leases.holder(name)[:2] == (ELSEWHERE, token)  # still the holder's
    assert leases.renew(name, ELSEWHERE, token)


def test_check_asks_the_store_even_when_the_heartbeat_thread_never_ran(url):
    """A holder whose heartbeat thread is starved (here: it never runs) is taken over; the next
    stage boundary still finds out, before writing anything, and says who holds the lease now.
    (check() used to trust the heartbeat thread's flag: the starved holder wrote on.)"""
    from sqlalchemy import update

    name = f"rounds/{uuid.uuid4().hex}"
    leases = SqlLeases(url)
    holder = Lease(leases, name, what="a round of kind activation", every_s=3600).acquire()
    holder.check()  # held: nothing raised
    t = leases.table
    with leases.engine.begin() as conn:  # another host's compare-and-set
        assert conn.execute(update(t).where(t.c.name == name, t.c.token == holder.token).values(
            owner=ELSEWHERE, token=holder.token + 1, heartbeat=time.time())).rowcount == 1
    assert not holder.lost.is_set()  # the heartbeat thread has not noticed
    with pytest.raises(LeaseLost, match=f"now held by pid 1 on elsewhere with token {holder.token + 1}"):
        holder.check()
    holder.release()
    assert leases.holder(name)[0] == ELSEWHERE


def test_a_check_restarts_the_holders_stale_clock(url):
    """Right after check() no one can judge the holder stale: the check is a renewal."""
    from sqlalchemy import update

    name = f"rounds/{uuid.uuid4().hex}"
    leases = SqlLeases(url)
    holder = Lease(leases, name, every_s=3600, stale_s=60).acquire()
    holder.owner = ELSEWHERE  # judged by heartbeat, as a holder on another host is
    t = leases.table
    with leases.engine.begin() as conn:
        conn.execute(update(t).where(t.c.name == name).values(owner=ELSEWHERE,
                                                                heartbeat=time.time() - 120))
    holder.check()
    assert leases.try_acquire(name, owner_id(), stale_s=60) is None
    holder.release()
