"""`scheduler start | status | run-now JOB` on APScheduler 3.11 with a persistent job store.

`start` is the long-running process: APScheduler runs the jobs on its thread pool while the main
thread waits for SIGTERM or SIGINT.

Jobs come from the schedule file; their ids are explicit and added with `replace_existing=True`,
so a restart never duplicates them. A job that is no longer in the file is removed from the store.
Every job has `coalesce=True` (many missed runs become one), `max_instances=1` and a misfire grace
in hours (a nightly job late after a reboot still runs, once). Jobs with `after` instead of a cron
are not scheduled by time: they travel with their trigger and run when it succeeds. At start, an
unfinished round of each scheduled kind is resumed first; rounds of one kind never overlap (the
kind's lease: a job waits for it). SIGTERM and SIGINT stop the scheduler after the running job ends;
if it is killed anyway, the next start resumes its round. A scheduler whose lock was taken over
(lock.py: the tracking lease) pauses at once, lets the running job end and stops; a failure of
that callback is logged and named in the error it stops with.
"""
from __future__ import annotations

import signal
from datetime import datetime
from zoneinfo import ZoneInfo

from .jobs import JOBS_EXPERIMENT, execute
from .lock import SchedulerLock
from .schedule import Schedule

EXECUTE = "mlr_mlflow.scheduling.jobs:execute"


def build(schedule: Schedule, tracking_uri: str, config_path: str | None = None, *,
          jobstore_table: str = "apscheduler_jobs", resume_first: bool = True):
    """A started but paused scheduler with the schedule's jobs registered; `resume()` runs it.

    A BackgroundScheduler: `start` blocks the main thread itself, where SIGTERM is handled (a
    BlockingScheduler would block inside `start(paused=True)`, before any job is registered).
    """
    from apscheduler.events import EVENT_JOB_MISSED
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    tz = ZoneInfo(schedule.timezone)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=schedule.store_url(tracking_uri),
                                                 tablename=jobstore_table)},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": int(schedule.misfire_grace_hours * 3600)},
        timezone=tz)
    scheduler.add_listener(_missed_recorder(tracking_uri), EVENT_JOB_MISSED)
    scheduler.start(paused=True)  # jobs are (re)registered before anything may run
    timed = [job for job in schedule.jobs if job.cron]
    wanted = {job.id for job in timed}
    for job in scheduler.get_jobs():
        if job.id not in wanted and not job.id.startswith("resume-at-start-"):
            job.remove()
    for job in timed:
        scheduler.add_job(EXECUTE, CronTrigger.from_crontab(job.cron, timezone=tz), id=job.id,
                          name=job.id, args=[job.id, job.run, job.kwargs, tracking_uri, config_path,
                                             schedule.followers(job.id)],
                          replace_existing=True)
    if resume_first:
        kinds = sorted({j.kwargs.get("kind", "activation") for j in schedule.jobs if j.run == "discover"})
        for kind in kinds:
            scheduler.add_job(EXECUTE, "date", run_date=datetime.now(tz), id=f"resume-at-start-{kind}",
                              args=[f"resume-at-start-{kind}", "resume", {"kind": kind}, tracking_uri,
                                    config_path], replace_existing=True)
    return scheduler


def _missed_recorder(tracking_uri: str):
    """A run past its misfire grace is skipped by APScheduler; it is never silent here: it becomes a
    FAILED job run in MLflow saying by how much it was late."""
    def record(event) -> None:
        from ..tracking import connect, experiment_id, finish, names

        try:
            client = connect(tracking_uri)
            run_id = client.create_run(experiment_id(client, JOBS_EXPERIMENT), run_name=event.job_id,
                                       tags={names.ROLE: "job", names.JOB_ID: event.job_id,
                                             names.JOB_ERROR: f"missed: scheduled for "
                                             f"{event.scheduled_run_time}, past the misfire grace"}
                                       ).info.run_id
            finish(client, run_id, failed=True, status_tag="missed")
        except Exception:  # recording must never stop the scheduler
            pass
    return record


def start(schedule: Schedule, tracking_uri: str, config_path: str | None = None,
          progress=lambda _: None) -> None:
    import threading

    from .lock import SchedulerBusy

    lock = SchedulerLock(schedule.store_url(tracking_uri))
    lock.acquire()
    stopping = threading.Event()
    scheduler = None

    def lost() -> None:  # another scheduler runs this store's jobs now: run none of them here
        progress("the scheduler lock was taken over by another scheduler: stopping")
        if scheduler is not None:
            scheduler.pause()
        stopping.set()

    lock.on_lost.append(lost)

    def stop(signum, frame):
        progress(f"received {signal.Signals(signum).name}: stopping after the running job")
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheduler = build(schedule, tracking_uri, config_path)
        for job in scheduler.get_jobs():
            progress(f"job {job.id}: next run {job.next_run_time}")
        if not lock.lost.is_set():
            scheduler.resume()
        while not stopping.wait(1.0) and not lock.lost.is_set():  # lost: even if `lost()` failed
            pass
        scheduler.shutdown(wait=True)  # a running round finishes; if killed, the next start resumes it
        if lock.lost.is_set():
            raise SchedulerBusy("stopped: another scheduler took this job store's lock over "
                                "(this one was unresponsive for longer than the lock's timeout)"
                                + lock.failures())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()


def status(schedule: Schedule, tracking_uri: str) -> dict:
    """Jobs and next run times from the store, the lock's holder, last outcomes from MLflow."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from ..tracking import connect, names
    from ..tracking.queries import newest_runs
    from ..tracking.reviews import awaiting_by_experiment

    url = schedule.store_url(tracking_uri)
    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)},
                                    timezone=ZoneInfo(schedule.timezone))
    scheduler.start(paused=True)  # paused: reads the store, runs nothing
    try:
        stored = {j.id: j for j in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    holder = SchedulerLock(url).holder()
    client = connect(tracking_uri)
    exp = client.get_experiment_by_name(JOBS_EXPERIMENT)
    last = {}
    if exp is not None:
        for run in newest_runs(client, exp.experiment_id, 500):
            job_id = run.data.tags.get(names.JOB_ID)
            if job_id and job_id not in last:
                last[job_id] = {"status": run.info.status, "run_id": run.info.run_id,
                                "started": datetime.fromtimestamp(run.info.start_time / 1000).isoformat(),
                                "duration_s": run.data.metrics.get("duration_s"),
                                "error": run.data.tags.get(names.JOB_ERROR)}
    jobs = []
    for spec in schedule.jobs:
        job = stored.get(spec.id)
        jobs.append({"id": spec.id, "run": spec.run, "cron": spec.cron, "after": spec.after or None,
                     "next_run": job.next_run_time.isoformat() if job and job.next_run_time else None,
                     "in_store": job is not None, "last": last.get(spec.id)})
    return {"store": url, "timezone": schedule.timezone, "jobs": jobs,
            "awaiting_review": awaiting_by_experiment(client),
            "scheduler": {"holder": holder[0], "heartbeat_age_s": round(
                datetime.now().timestamp() - holder[1], 1)} if holder else None}


def run_now(schedule: Schedule, job_id: str, tracking_uri: str, config_path: str | None = None) -> dict:
    spec = schedule.job(job_id)
    return execute(spec.id, spec.run, spec.kwargs, tracking_uri, config_path, schedule.followers(spec.id))


__all__ = ["build", "start", "status", "run_now"]
