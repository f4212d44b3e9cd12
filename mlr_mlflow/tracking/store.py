"""Connecting to a tracking store, and failing fast with a clear message when it cannot be reached."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from ..config import UsageError

DEFAULT_URI = "sqlite:///mlflow.db"


class TrackingError(UsageError, RuntimeError):
    """The tracking store is unreachable or refused an operation (exit status 2)."""


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def absolute(uri: str) -> str:
    """A sqlite URI with a relative path (the default `sqlite:///mlflow.db`) made absolute, so the
    processes it is handed to (an MLflow Project run, a scheduler job) find the same store."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


def _check_local(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if path.parent and not path.parent.exists():
            raise TrackingError(f"tracking store {uri!r}: directory {path.parent} does not exist")


def _check_listening(uri: str, timeout_s: float = 5.0) -> None:
    """A server that is down answers in a moment, not after MLflow's import and its client's
    retries with backoff: one plain TCP connection first."""
    if not uri.startswith(("http://", "https://")):
        return
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "localhost", port), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise TrackingError(f"cannot reach tracking store {uri!r}: {unreachable_reason(exc)}") from None


@contextmanager
def _creating(uri: str):
    """Held while this process opens a sqlite store for the first time. MLflow creates and migrates
    a new store's tables on first use, and two processes doing that to one file at once fail (one
    or both: "table ... already exists", alembic "expected to match one row"); the scheduler and a
    user's `discover` on a fresh mlflow.db would. Our processes take turns on a lock file beside
    the store; where none can be created (a read-only directory) they go on without it."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    try:
        lock = open(f"{uri[len('sqlite:///'):]}.mlr-lock", "a")
    except OSError:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def connect(uri: str | None = None):
    """An MlflowClient on `uri` that has answered one request.

    For HTTP stores, retries are kept short unless the user configured them, so that a server that is
    down is reported in seconds rather than after minutes of backoff.
    """
    uri = absolute(uri or default_tracking_uri())
    _check_listening(uri)
    from mlflow import MlflowClient

    # MLflow draws a progress bar per downloaded artifact; ours are tiny and many
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    _check_local(uri)
    try:
        # the Model Registry lives with the tracking store. (Not $MLFLOW_REGISTRY_URI: MLflow's
        # own set_registry_uri writes it, so it may name another store used earlier in-process.)
        with _creating(uri):  # the client's constructor opens the store already
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
    except Exception as exc:
        raise TrackingError(f"cannot reach tracking store {uri!r}: {unreachable_reason(exc)}") from None
    return client


# what an HTTP client's long message means, in a few words (urllib3's pool and retry internals are no help)
_LOGIN = "the server needs authentication (HTTP 401): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
_REFUSED = "the server refused these credentials (HTTP 403, authentication)"
_REASONS = (("connection refused", "connection refused (is the server running?)"),
            ("name or service not known", "host name not found"),
            ("temporary failure in name resolution", "host name not found"),
            ("nodename nor servname", "host name not found"),
            ("no route to host", "no route to host"),
            ("timed out", "timed out"), ("timeout", "timed out"),
            ("certificate verify failed", "its TLS certificate was refused"),
            ("unauthorized", _LOGIN), ("status code 401", _LOGIN), ("error code 401", _LOGIN),
            ("status code 403", _REFUSED), ("error code 403", _REFUSED))


def unreachable_reason(exc: BaseException, limit: int = 120) -> str:
    """Why a store did not answer, in one short line (the first line of the message otherwise)."""
    text = str(exc)
    lowered = text.lower()
    for needle, reason in _REASONS:
        if needle in lowered:
            return reason
    first = (text.splitlines() or [""])[0]
    first = f"{type(exc).__name__}: {first}"
    return first if len(first) <= limit else first[:limit - 1] + "…"


def _beside_default(client, name: str) -> str | None:
    """A sqlite store's new experiment keeps its artifacts beside the Default experiment's, not in
    `./mlruns` of the creating process, whose working directory may be an MLflow Project's (inside
    the installed package). Servers choose for themselves (None)."""
    if not client.tracking_uri.startswith("sqlite:"):
        return None
    try:
        default = client.get_experiment("0").artifact_location
    except Exception:  # no Default experiment: MLflow's own choice
        return None
    return f"{default.rstrip('/').rsplit('/', 1)[0]}/{name}"


def experiment_id(client, name: str) -> str:
    """The id of experiment `name`, created if missing (restored if deleted).

    Every experiment of ours carries `mlflow.experimentKind=custom_model_development`, so that
    MLflow 3's UI opens it on the runs table (not the GenAI overview); older experiments get it here.
    """
    from mlflow.exceptions import MlflowException

    from . import names

    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(
                name, artifact_location=_beside_default(client, name),
                tags={names.EXPERIMENT_KIND: names.MODEL_DEVELOPMENT})
        except MlflowException:  # created concurrently by another process
            exp = client.get_experiment_by_name(name)
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    if names.EXPERIMENT_KIND not in exp.tags:
        client.set_experiment_tag(exp.experiment_id, names.EXPERIMENT_KIND, names.MODEL_DEVELOPMENT)
    return exp.experiment_id
