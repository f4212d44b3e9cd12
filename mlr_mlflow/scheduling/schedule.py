"""The schedule a user edits: `jobs/schedule.toml`.

    timezone = "UTC"              # any zoneinfo name
    misfire_grace_hours = 6       # a job late by less than this (a reboot at night) still runs, once
    store = ""                    # job store URL; "" = sqlite `mlr-jobs.db` next to the tracking store
    [[job]]
    id = "nightly-activation"     # explicit ids: restarting never duplicates a job
    run = "discover"              # discover, resume, reward-train, reward-promote, or "module:function"
    cron = "0 2 * * *"            # crontab syntax, in `timezone`
    kwargs = { kind = "activation", n = 32, top_k = 4 }
    [[job]]
    id = "reward-train-activation"
    run = "reward-train"
    after = "nightly-activation"  # instead of a cron: runs when that job succeeds, in its thread
    kwargs = { kind = "activation" }

A job has either `cron` or `after` (another job's id; chains may continue). A job with `after`
starts when its trigger succeeded, so reward training follows the round it learns from however long
that round took, instead of guessing a clock time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, read_toml

BUILTIN = ("discover", "resume", "reward-train", "reward-promote", "audit-sample")


@dataclass(frozen=True)
class JobSpec:
    id: str
    run: str
    cron: str
    kwargs: dict = field(default_factory=dict)
    after: str = ""  # the id of the job whose success starts this one (instead of a cron)


@dataclass(frozen=True)
class Schedule:
    jobs: tuple[JobSpec, ...]
    timezone: str = "UTC"
    misfire_grace_hours: float = 6.0
    store: str = ""

    def job(self, job_id: str) -> JobSpec:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise ConfigError(f"no job {job_id!r} in the schedule (jobs: {', '.join(j.id for j in self.jobs)})")

    def followers(self, job_id: str) -> list:
        """The chain that runs after `job_id` succeeds: [(id, run, kwargs, its followers), ...],
        plain data, so it travels in the job store with the trigger's arguments."""
        return [[j.id, j.run, j.kwargs, self.followers(j.id)] for j in self.jobs if j.after == job_id]

    def store_url(self, tracking_uri: str) -> str:
        if self.store:
            return self.store
        if tracking_uri.startswith("sqlite:///"):
            return f"sqlite:///{Path(tracking_uri[len('sqlite:///'):]).parent / 'mlr-jobs.db'}"
        return "sqlite:///mlr-jobs.db"


def load_schedule(path: str | Path) -> Schedule:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from apscheduler.triggers.cron import CronTrigger

    data = read_toml(path, "schedule file")
    try:
        ZoneInfo(data.get("timezone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"schedule {path}: unknown time zone {data.get('timezone')!r}") from None
    jobs, seen = [], set()
    for entry in data.get("job", []):
        spec = JobSpec(id=str(entry.get("id", "")), run=str(entry.get("run", "")),
                       cron=str(entry.get("cron", "")), kwargs=dict(entry.get("kwargs", {})),
                       after=str(entry.get("after", "")))
        if not spec.id or spec.id in seen:
            raise ConfigError(f"schedule {path}: every job needs a unique id (got {spec.id!r})")
        if spec.run not in BUILTIN and ":" not in spec.run:
            raise ConfigError(f"schedule {path}: job {spec.id}: run = {spec.run!r} is neither one of "
                              f"{', '.join(BUILTIN)} nor 'module:function'")
        if bool(spec.cron) == bool(spec.after):
            raise ConfigError(f"schedule {path}: job {spec.id}: give either cron or after (another "
                              "job's id), not both or neither")
        if spec.cron:
            try:
                CronTrigger.from_crontab(spec.cron)
            except ValueError as exc:
                raise ConfigError(f"schedule {path}: job {spec.id}: bad cron {spec.cron!r}: {exc}") from None
        seen.add(spec.id)
        jobs.append(spec)
    for spec in jobs:  # every trigger exists, and no chain comes back to where it started
        chain, step = [spec.id], spec
        while step.after:
            if step.after not in seen:
                raise ConfigError(f"schedule {path}: job {step.id}: after = {step.after!r} is no job's id")
            step = next(j for j in jobs if j.id == step.after)
            if step.id in chain:
                raise ConfigError(f"schedule {path}: jobs {' -> '.join(chain)} run after each other in a circle")
            chain.append(step.id)
    return Schedule(tuple(jobs), data.get("timezone", "UTC"),
                    float(data.get("misfire_grace_hours", 6.0)), str(data.get("store", "")))
