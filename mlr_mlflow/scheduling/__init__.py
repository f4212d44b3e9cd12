"""Scheduled, unattended discovery: APScheduler with a persistent job store, one scheduler per store.

schedule.py (the user's jobs/schedule.toml), lock.py (one scheduler per job store), jobs.py (what a
job runs, recorded as an MLflow run), scheduler.py (start, status, run-now).
"""
