"""The one adapter to MLflow's private API: every import of `mlflow.store`, `mlflow.server`,
`mlflow.utils`, and every underscore name of an MLflow object, is here and nowhere else.

What uses it: tracking/bulk.py (a batch of runs written through the database store's SQLAlchemy
models in one transaction), tracking/runs.py (artifact repositories), plugins/app.py (the
`mlflow.app` server plugins) and reward/serving.py (the scoring server's JSON decoding).

These are not MLflow's public contract and may change in any release, so pyproject.toml bounds
mlflow above, and tests/test_mlflow_internals.py fails first when an upgrade moves them: the
models and columns `WRITTEN` names must exist, and a fresh sqlite store's schema must be at
`TESTED_ALEMBIC_HEAD`. After checking bulk.py against a new MLflow (tests/test_bulk.py compares it
with the public calls), update the head here and the bound there.
"""
from __future__ import annotations

import sys
from types import SimpleNamespace

TESTED_MLFLOW = "3.17"
TESTED_ALEMBIC_HEAD = "dc11669786a5"  # the tracking schema's alembic revision under MLflow 3.17

# The private SQLAlchemy models bulk.py writes, by table, with the columns it fills.
WRITTEN = {
    "SqlRun": ("run_uuid", "name", "artifact_uri", "experiment_id", "source_type", "source_name",
               "entry_point_name", "user_id", "status", "start_time", "end_time", "deleted_time",
               "source_version", "lifecycle_stage"),
    "SqlTag": ("run_uuid", "key", "value"),
    "SqlParam": ("run_uuid", "key", "value"),
    "SqlMetric": ("run_uuid", "key", "value", "timestamp", "step", "is_nan"),
    "SqlLatestMetric": ("run_uuid", "key", "value", "timestamp", "step", "is_nan"),
    "SqlDataset": ("dataset_uuid", "experiment_id", "name", "digest", "dataset_source_type",
                   "dataset_source", "dataset_schema", "dataset_profile"),
    "SqlInput": ("input_uuid", "source_type", "source_id", "destination_type", "destination_id"),
    "SqlInputTag": ("input_uuid", "name", "value"),
}


# --- the tracking store ----------------------------------------------------------------------

def database_store(client):
    """The client's MLflow SqlAlchemyStore, or None (a server, a plugin store, another MLflow)."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = client._tracking_client.store
    except (ImportError, AttributeError):
        return None
    return store if isinstance(store, SqlAlchemyStore) else None


def models() -> SimpleNamespace:
    """The SQLAlchemy models of `WRITTEN`, by name (`models().SqlRun`, ...)."""
    from mlflow.store.tracking.dbmodels import models as dbmodels

    return SimpleNamespace(**{name: getattr(dbmodels, name) for name in WRITTEN})


def write_session(store):
    """A read-write session of the store: one transaction, committed on leaving, rolled back on
    an exception."""
    return store.ManagedSessionMaker(read_only=False)


def schema_revision(store) -> str:
    """The alembic revision the store's database schema is at."""
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def validate_metric(key: str, value: float, timestamp: int, step: int) -> None:
    from mlflow.utils.validation import _validate_metric

    _validate_metric(key, value, timestamp, step)


def validate_tag(key: str, value: str):
    """The tag as MLflow stores it (key and value checked, the value possibly normalised)."""
    from mlflow.utils.validation import _validate_tag

    return _validate_tag(key, value)


def validate_param(key: str, value: str) -> None:
    from mlflow.utils.validation import _validate_param

    _validate_param(key, value)


def replaces_latest(step: int, timestamp: int, value: float, latest) -> bool:
    """MLflow's rule for a run's latest metric (SqlAlchemyStore._update_latest_metrics_if_necessary):
    a new value replaces the stored one when (step, timestamp, value) is strictly greater."""
    return (step, timestamp, value) > (latest.step, latest.timestamp, latest.value)


def user_tag() -> str:
    """The run tag MLflow reads a run's user from."""
    from mlflow.utils.mlflow_tags import MLFLOW_USER

    return MLFLOW_USER


def run_artifact_uri(artifact_location: str, run_id: str) -> str:
    """Where MLflow puts a new run's artifacts under its experiment's artifact location."""
    from mlflow.utils.uri import append_to_uri_path

    return append_to_uri_path(artifact_location, run_id, "artifacts")


def artifact_repository(uri: str, **kwargs):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(uri, **kwargs)


# --- the tracking server (plugins/app.py) ------------------------------------------------------

def server_store_uris() -> tuple[str, str]:
    """(backend store URI, registry store URI) of the running `mlflow server`."""
    import os

    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR

    uri = os.environ[BACKEND_STORE_URI_ENV_VAR]
    return uri, os.environ.get(REGISTRY_STORE_URI_ENV_VAR) or uri


def served_artifact_repository():
    """The repository behind the server's `mlflow-artifacts:` URIs."""
    from mlflow.server.handlers import _get_artifact_repo_mlflow_artifacts

    return _get_artifact_repo_mlflow_artifacts()


def with_static_prefix(route: str) -> str:
    """`route` under the server's --static-prefix."""
    from mlflow.server.handlers import _add_static_prefix

    return _add_static_prefix(route)


def server_flask_app():
    from mlflow.server import app

    return app


def served(flask_app):
    """What an app factory hands back: under uvicorn (MLflow 3.17's default) the FastAPI app that
    serves the Flask app, else the Flask app itself."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(flask_app)
    return flask_app


def basic_auth_app(flask_app):
    """MLflow's basic-auth factory applied to `flask_app`."""
    from mlflow.server.auth import create_app

    return create_app(flask_app)


class ReadFilter:
    """What the logged-in user may read, asked of MLflow's auth store."""

    def __init__(self, auth, user: str):
        self.auth, self.user = auth, user

    def experiment(self, experiment_id: str) -> bool:
        return self.auth._graphql_can_read_experiment(experiment_id, self.user)

    def model(self, name: str) -> bool:
        return self.auth._graphql_can_read_model(name, self.user)


class ReviewAccess:
    """What the logged-in user may do in the review queue (plugins/review.py): read and edit an
    experiment, asked of MLflow's auth store (EDIT or MANAGE edits); everything without basic auth."""

    def __init__(self):
        auth = sys.modules.get("mlflow.server.auth")  # imported only by the basic-auth factory
        self.auth = auth if auth is not None and auth.is_auth_enabled() else None
        self.user = self.auth.authenticate_request().username if self.auth else "anonymous"
        self.admin = bool(self.auth) and self.auth.sender_is_admin()

    def _permission(self, experiment_id: str):
        return self.auth._graphql_get_permission_for_experiment(experiment_id, self.user)

    def readable(self, experiment_id: str) -> bool:
        return not self.auth or self.admin or self._permission(experiment_id).can_read

    def editable(self, experiment_id: str) -> bool:
        return not self.auth or self.admin or self._permission(experiment_id).can_update


def read_filter() -> ReadFilter | None:
    """Under basic auth, the logged-in user's read permissions; None where everything is readable
    (no basic auth, or an admin)."""
    auth = sys.modules.get("mlflow.server.auth")  # imported only by the basic-auth factory
    if auth is None or not auth.is_auth_enabled() or auth.sender_is_admin():
        return None
    return ReadFilter(auth, auth.authenticate_request().username)


# --- the scoring server (reward/serving.py) ----------------------------------------------------

def wrap_scoring_json_decoder(wrap) -> bool:
    """Replace the scoring server's JSON decoder by `wrap(decoder)`, once per process; False where
    the serving extras or the decoder are missing."""
    try:
        from mlflow.pyfunc import scoring_server
    except Exception:  # serving extras missing: nothing serves here
        return False
    decode = getattr(scoring_server, "_decode_json_input", None)
    if decode is None:
        return False
    if getattr(decode, "_mlr_guarded", False):
        return True
    guarded = wrap(decode)
    guarded._mlr_guarded = True
    scoring_server._decode_json_input = guarded
    return True
