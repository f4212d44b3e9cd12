"""The MLflow seam: names of CONTRACT.md, store connection, run writing. No research logic here."""
from . import names
from .bulk import RunEnd, RunStart, end_runs, start_runs
from .runs import create_run, end_tags, finish, log, log_artifact_files, log_datasets, log_json
from .store import DEFAULT_URI, TrackingError, connect, default_tracking_uri, experiment_id

__all__ = ["names", "RunEnd", "RunStart", "end_runs", "start_runs", "end_tags", "create_run", "finish", "log", "log_artifact_files", "log_datasets", "log_json", "DEFAULT_URI",
           "TrackingError", "connect", "default_tracking_uri", "experiment_id"]
