"""The MLflow seam: names of CONTRACT.md, store connection, run writing. No research logic here."""
from . import names
from .runs import create_run, finish, log, log_artifact_files, log_datasets, log_json
from .store import DEFAULT_URI, TrackingError, connect, default_tracking_uri, experiment_id

__all__ = ["names", "create_run", "finish", "log", "log_artifact_files", "log_datasets", "log_json", "DEFAULT_URI",
           "TrackingError", "connect", "default_tracking_uri", "experiment_id"]
