"""Real APScheduler on a sqlite job store and on the PostgreSQL at 127.0.0.1:5432."""
import json
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.config import ConfigError
from mlr_mlflow.scheduling.lock import SchedulerBusy, SchedulerLock
from mlr_mlflow.scheduling.schedule import load_schedule
from mlr_mlflow.scheduling.scheduler import build

from .conftest import POSTGRES, postgres_available, write
from .test_lease import ELSEWHERE, Clock



@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/jobs.db"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    yield POSTGRES


def schedule_file(tmp_path, store_url, jobs, grace=6):
    text = f'timezone = "Europe/Paris"\nmisfire_grace_hours = {grace}\nstore = "{store_url}"\n'
    for job in jobs:
        text += (f'[[job]]\nid = "{job[0]}"\nrun = "{job[1]}"\ncron = "{job[2]}"\n'
                 f'kwargs = {json.dumps(job[3]) if len(job) > 3 else "{}"}\n'.replace('": ', '" = '))
    return write(tmp_path, f"schedule-{uuid.uuid4().hex[:6]}.toml", text)


def job_runs(uri, job_id=None):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("mlr-jobs")
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id])
    return [r for r in runs if job_id is None or r.data.tags.get("mlr.job.id") == job_id]


def test_restart_keeps_jobs_without_duplicates(store, tmp_path, tracking_uri):
    table = f"jobs_{uuid.uuid4().hex[:8]}"
    jobs = [("nightly", "discover", "0 2 * * *", {"kind": "activation"}),
            ("reward", "reward-train", "0 5 * * *", {"kind": "activation"})]
    schedule = load_schedule(schedule_file(tmp_path, store, jobs))
    for _ in range(3):  # three starts of the same schedule
        scheduler = build(schedule, tracking_uri, jobstore_table=table,
                          resume_first=False)
        ids = sorted(j.id for j in scheduler.get_jobs())
        next_run = {j.id: j.next_run_time for j in scheduler.get_jobs()}
        scheduler.shutdown(wait=False)
        assert ids == ["nightly", "reward"]
    assert next_run["nightly"].hour == 2 and str(next_run["nightly"].tzinfo) == "Europe/Paris"
    fewer = load_schedule(schedule_file(tmp_path, store, jobs[:1]))
    scheduler = build(fewer, tracking_uri, jobstore_table=table, resume_first=False)
    assert [j.id for j in scheduler.get_jobs()] == ["nightly"]  # the file is the truth
    scheduler.remove_all_jobs()
    scheduler.shutdown(wait=False)


def test_missed_runs_run_once_and_past_grace_is_recorded(store, tmp_path, tracking_uri):
    table = f"jobs_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "ran.txt"
    # the nightly job's hour is 12 h away from now, so none of its cron times falls inside the
    # 3 hours it is made late by (and the grace after them), whatever the time of day of the test
    hour = (datetime.now(ZoneInfo("Europe/Paris")).hour + 12) % 24
    jobs = [("every-minute", "tests.sched_jobs:append", "* * * * *", {"path": str(marker)}),
            ("nightly-late", "tests.sched_jobs:append", f"0 {hour} * * *", {"path": str(marker), "text": "late"})]
    schedule = load_schedule(schedule_file(tmp_path, store, jobs, grace=1))
    scheduler = build(schedule, tracking_uri, jobstore_table=table, resume_first=False)
    now = datetime.now(scheduler.timezone)
    # as after a reboot: 120 runs of the first missed, and the nightly run 3 h late (grace: 1 h)
    scheduler.get_job("every-minute").modify(next_run_time=now - timedelta(hours=2))
    scheduler.get_job("nightly-late").modify(next_run_time=now - timedelta(hours=3))
    scheduler.resume()
    deadline = time.time() + 60
    while time.time() < deadline and (not job_runs(tracking_uri, "every-minute")
                                      or not job_runs(tracking_uri, "nightly-late")):
        time.sleep(0.2)
    time.sleep(1.0)
    scheduler.remove_all_jobs()
    scheduler.shutdown(wait=True)
    assert marker.read_text().splitlines() == ["ran"]  # coalesced: once, not 120 times
    [ran] = job_runs(tracking_uri, "every-minute")
    assert ran.info.status == "FINISHED" and "duration_s" in ran.data.metrics
    [missed] = job_runs(tracking_uri, "nightly-late")  # skipped, but not silently
    assert missed.info.status == "FAILED" and "misfire grace" in missed.data.tags["mlr.job.error"]


def test_a_second_scheduler_is_refused_and_a_dead_one_elsewhere_times_out(store):
    name, clock = f"scheduler/{uuid.uuid4().hex[:8]}", Clock()
    first = SchedulerLock(store, name=name, stale_s=5, every_s=3600, clock=clock)
    first.owner = ELSEWHERE  # a scheduler on another host: judged by its heartbeat
    first.acquire()
    second = SchedulerLock(store, name=name, stale_s=5, clock=clock)
    with pytest.raises(SchedulerBusy, match="another scheduler holds this job store .pid 1 on elsewhere"):
        second.acquire()
    clock.advance(6)  # the first one "crashed": no heartbeat for longer than stale_s
    second.acquire()  # stale: taken over
    assert second.holder()[0] == second.owner
    second.release()
    assert second.holder() is None


def test_cli_run_now_and_status(tmp_path, tracking_uri, capsys):
    marker = tmp_path / "ran.txt"
    path = schedule_file(tmp_path, f"sqlite:///{tmp_path}/jobs.db",
                         [("touch", "tests.sched_jobs:append", "0 3 * * *", {"path": str(marker)}),
                          ("broken", "tests.sched_jobs:explode", "0 4 * * *")])
    base = ["--schedule", str(path), "--tracking-uri", tracking_uri, "--json"]
    assert main(["scheduler", "run-now", "touch", *base]) == 0
    assert marker.read_text() == "ran\n"
    assert main(["scheduler", "run-now", "broken", *base]) == 1
    capsys.readouterr()
    assert main(["scheduler", "status", *base]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    last = {j["id"]: j["last"] for j in out["jobs"]}
    assert last["touch"]["status"] == "FINISHED"
    assert last["broken"]["status"] == "FAILED" and "failed on purpose" in last["broken"]["error"]
    assert main(["scheduler", "run-now", "nope", *base]) == 2
    assert "no job 'nope'" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]


def test_bad_schedules_are_usage_errors(tmp_path, tracking_uri, capsys):
    for text, fragment in [('timezone = "Mars/Olympus"\n', "unknown time zone"),
                           ('[[job]]\nid = "a"\nrun = "discover"\ncron = "99 * * * *"\n', "bad cron"),
                           ('[[job]]\nid = "a"\nrun = "rm -rf"\ncron = "0 2 * * *"\n', "neither one of")]:
        path = write(tmp_path, "bad.toml", text)
        assert main(["scheduler", "status", "--schedule", str(path), "--tracking-uri", tracking_uri,
                     "--json"]) == 2
        assert fragment in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]


def test_scheduler_start_refuses_a_second_and_stops_on_sigterm(tmp_path, tracking_uri, capsys):
    import signal
    import subprocess
    import sys

    path = schedule_file(tmp_path, f"sqlite:///{tmp_path}/jobs.db",
                         [("touch", "tests.sched_jobs:append", "0 3 * * *", {"path": str(tmp_path / "x")})])
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "mlr_mlflow", "scheduler", "start", "--schedule",
                             str(path), "--tracking-uri", tracking_uri], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = SchedulerLock(f"sqlite:///{tmp_path}/jobs.db")
    try:
        deadline = time.time() + 60
        while lock.holder() is None and time.time() < deadline:
            time.sleep(0.2)
        assert lock.holder() is not None
        assert main(["scheduler", "start", "--schedule", str(path), "--tracking-uri", tracking_uri,
                     "--json"]) == 2
        err = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
        assert f"pid {proc.pid}" in err and "only one may run per store" in err
        for _ in range(100):  # the jobs are registered just after the lock is taken
            assert main(["scheduler", "status", "--schedule", str(path), "--tracking-uri",
                         tracking_uri, "--json"]) == 0
            status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            if status["jobs"][0]["next_run"]:
                break
            time.sleep(0.2)
        assert status["scheduler"] and status["jobs"][0]["next_run"].startswith(
            datetime.now().strftime("%Y"))
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert lock.holder() is None  # released on a graceful stop


def test_a_scheduler_whose_lock_was_taken_over_runs_no_more_jobs(store, tmp_path, tracking_uri):
    from apscheduler.schedulers.base import STATE_PAUSED

    name, marker = f"scheduler/{uuid.uuid4().hex[:8]}", tmp_path / "ticks.txt"
    schedule = load_schedule(schedule_file(tmp_path, store, []))
    scheduler = build(schedule, tracking_uri, jobstore_table=f"jobs_{uuid.uuid4().hex[:8]}",
                      resume_first=False)
    lock = SchedulerLock(store, name=name, every_s=0.2, on_lost=[scheduler.pause])
    lock.owner = ELSEWHERE  # on another host (one here is never taken over while it lives)
    lock.acquire()
    scheduler.add_job("tests.sched_jobs:append", "interval", seconds=0.3, id="tick",
                      kwargs={"path": str(marker)})
    scheduler.resume()
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not marker.exists():
            time.sleep(0.1)
        assert marker.exists()  # it runs jobs while it holds the lock
        usurper = SchedulerLock(store, name=name, stale_s=0)  # judged this one stale
        for attempt in range(20):  # its compare-and-set may lose to a heartbeat: try again
            try:
                usurper.acquire()
                break
            except SchedulerBusy:
                time.sleep(0.05)
        assert usurper.holder()[0] == usurper.owner
        assert lock.lost.wait(10) and scheduler.state == STATE_PAUSED
        time.sleep(0.5)  # a job already running may still finish
        ticks = marker.read_text()
        time.sleep(1.5)  # five more intervals
        assert marker.read_text() == ticks  # none ran
        assert usurper.holder()[0] == usurper.owner
        lock.release()  # leaves the usurper's lock alone
        assert usurper.holder()[0] == usurper.owner
        usurper.release()
    finally:
        scheduler.remove_all_jobs()
        scheduler.shutdown(wait=False)


def test_scheduler_start_stops_when_its_lock_is_taken_over(tmp_path, tracking_uri):
    import subprocess
    import sys

    store_url = f"sqlite:///{tmp_path}/jobs.db"
    path = schedule_file(tmp_path, store_url, [("touch", "tests.sched_jobs:append", "0 3 * * *",
                                                {"path": str(tmp_path / "x")})])
    proc = subprocess.Popen([sys.executable, "-m", "mlr_mlflow", "scheduler", "start", "--schedule",
                             str(path), "--tracking-uri", tracking_uri],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    from sqlalchemy import update

    try:
        usurper = SchedulerLock(store_url)
        deadline = time.time() + 60
        while usurper.holder() is None and time.time() < deadline:
            time.sleep(0.2)
        with pytest.raises(SchedulerBusy):  # a live scheduler on this host is never taken over
            usurper.acquire()
        t = usurper.backend.table  # a scheduler on another host judged it stale: its compare-and-set
        with usurper.backend.engine.begin() as conn:
            assert conn.execute(update(t).where(t.c.name == usurper.name).values(
                owner=ELSEWHERE, token=t.c.token + 1, heartbeat=time.time())).rowcount == 1
        output = proc.communicate(timeout=90)[0]  # its next heartbeat (every 15 s) finds out
    finally:
        proc.kill()
    assert proc.returncode == 2, output
    assert "taken over" in output and usurper.holder()[0] == ELSEWHERE


def test_reward_jobs_run_after_their_round_and_schedules_with_after_are_checked(tmp_path):
    path = write(tmp_path, "s.toml", '[[job]]\nid = "nightly"\nrun = "discover"\ncron = "0 2 * * *"\n'
                 '[[job]]\nid = "train"\nrun = "reward-train"\nafter = "nightly"\n'
                 '[[job]]\nid = "promote"\nrun = "reward-promote"\nafter = "train"\n')
    schedule = load_schedule(path)
    assert schedule.followers("nightly") == [["train", "reward-train", {}, [["promote", "reward-promote",
                                                                            {}, []]]]]
    default = load_schedule(Path(__file__).resolve().parents[1] / "jobs" / "schedule.toml")
    assert [f[0] for f in default.followers("nightly-activation")] == ["reward-train-activation"]
    for text, fragment in [('[[job]]\nid = "a"\nrun = "resume"\nafter = "nope"\n', "is no job's id"),
                           ('[[job]]\nid = "a"\nrun = "resume"\ncron = "0 2 * * *"\nafter = "a"\n',
                            "either cron or after"),
                           ('[[job]]\nid = "a"\nrun = "resume"\nafter = "b"\n'
                            '[[job]]\nid = "b"\nrun = "resume"\nafter = "a"\n', "in a circle")]:
        with pytest.raises(ConfigError, match=fragment):
            load_schedule(write(tmp_path, "bad.toml", text))


@pytest.mark.slow
def test_the_nightly_round_and_a_resume_of_the_same_kind_never_overlap(tmp_path, tracking_uri):
    """Both fire at once on the scheduler's thread pool; the kind's lease makes one wait for the
    other. The job that runs after the nightly one starts when its round has ended."""
    from mlflow.exceptions import MlflowException

    from mlr_mlflow.config import Config, with_overrides
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import connect, names

    from .faults import Flaky, refused

    config = write(tmp_path, "c.toml", '[suite]\ndatasets = ["iris", "xor"]\n'
                   '[discover]\nscreen = "one-pass"\nparents = 0\n')
    small = with_overrides(Config(), suite={"datasets": ("iris", "xor")},
                           discover={"screen": "one-pass", "parents": 0})
    with pytest.raises(MlflowException):  # a dead round, killed before training
        Round(Flaky(connect(tracking_uri), search_runs=lambda *a, **k: refused()
                    if names.ROUND_ID in (k.get("filter_string") or "") else None),
              small, "activation").run(2, 0, 1)
    marker = tmp_path / "after.txt"
    kwargs = {"kind": "activation", "n": 2, "top_k": 0, "seeds": 1}
    path = schedule_file(tmp_path, f"sqlite:///{tmp_path}/jobs.db",
                         [("nightly", "discover", "0 2 * * *", kwargs)])
    path.write_text(path.read_text() + f'[[job]]\nid = "after-nightly"\nrun = "tests.sched_jobs:append"\n'
                    f'after = "nightly"\nkwargs = {{ path = "{marker}" }}\n')
    scheduler = build(load_schedule(path), tracking_uri, str(config))  # with the resume at start
    scheduler.get_job("nightly").modify(next_run_time=datetime.now(scheduler.timezone))
    scheduler.resume()
    try:
        deadline = time.time() + 600
        while time.time() < deadline and not (
                marker.exists() and [r for r in job_runs(tracking_uri, "resume-at-start-activation")
                                     if r.info.status != "RUNNING"]):
            time.sleep(0.5)
    finally:
        scheduler.remove_all_jobs()
        scheduler.shutdown(wait=True)
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("mlr-activation").experiment_id
    rounds = client.search_runs([exp], f"tags.`{names.ROLE}` = 'round'")
    assert len(rounds) == 2 and all(r.info.status == "FINISHED" for r in rounds)
    [resumed] = [r for r in rounds if "mlr.round.resumed" in r.data.tags]
    [nightly] = [r for r in rounds if r is not resumed]
    resumed_span = (int(resumed.data.tags["mlr.round.resumed"]) * 1000, resumed.info.end_time)
    nightly_span = (nightly.info.start_time, nightly.info.end_time)
    assert resumed_span[1] <= nightly_span[0] or nightly_span[1] <= resumed_span[0] + 999
    assert nightly.data.params["seed"] != resumed.data.params["seed"]
    for job in ("nightly", "resume-at-start-activation", "after-nightly"):
        [run] = job_runs(tracking_uri, job)
        assert run.info.status == "FINISHED", job
    [after] = job_runs(tracking_uri, "after-nightly")
    assert after.info.start_time >= nightly.info.end_time
