"""The schedule a user edits: `jobs/schedule.toml`.

    timezone = "UTC"              # any zoneinfo name
    misfire_grace_hours = 6       # a job late by less than this (a reboot at night) still runs, once
    store = ""                    # job store URL; "" = sqlite `mlr-jobs.db` next to the tracking store
    [[job]]
    id = "nightly-activation"     # explicit ids: restarting never duplicates a job
    run = "discover"              # discover, resume, reward-train, reward-promote, or "module:function"
    cron = "0 2 * * *"            # crontab syntax, in `timezone`
    kwargs = { kind = "activation", n = 32, top_k = 4 }
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
                       cron=str(entry.get("cron", "")), kwargs=dict(entry.get("kwargs", {})))
        if not spec.id or spec.id in seen:
            raise ConfigError(f"schedule {path}: every job needs a unique id (got {spec.id!r})")
        if spec.run not in BUILTIN and ":" not in spec.run:
            raise ConfigError(f"schedule {path}: job {spec.id}: run = {spec.run!r} is neither one of "
                              f"{', '.join(BUILTIN)} nor 'module:function'")
        try:
            CronTrigger.from_crontab(spec.cron)
        except ValueError as exc:
            raise ConfigError(f"schedule {path}: job {spec.id}: bad cron {spec.cron!r}: {exc}") from None
        seen.add(spec.id)
        jobs.append(spec)
    return Schedule(tuple(jobs), data.get("timezone", "UTC"),
                    float(data.get("misfire_grace_hours", 6.0)), str(data.get("store", "")))
