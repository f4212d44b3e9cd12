"""MLflow's fluent API (`mlflow.set_tracking_uri`, `set_experiment`, `log_model`, `load_model` of a
`models:/` URI, autologged traces) reads process-global state. Where threads share a process (the
scheduler runs jobs on a thread pool; rounds of two kinds may run at once), two users of that state
would point each other's models and traces at the wrong store or experiment. Everything here talks
to MLflow through explicit `MlflowClient` objects; the few calls that only exist in the fluent API
run inside `fluent_store`, which holds one process-wide lock while it points the fluent state at the
caller's store, so they are serialised rather than interleaved.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

FLUENT = threading.RLock()


@contextmanager
def fluent_store(tracking_uri: str, experiment_id: str | None = None):
    """Hold the fluent lock with MLflow's fluent tracking and registry URIs and its active
    experiment set to this store: `experiment_id`, else the store's Default experiment (never an
    experiment id left active by an earlier user of another store)."""
    import mlflow

    with FLUENT:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)  # the registry lives with the tracking store
        try:
            mlflow.set_experiment(experiment_id=experiment_id or "0")
        except mlflow.exceptions.MlflowException:
            if experiment_id is not None:
                raise  # the caller's own experiment must exist; a store may lack a Default one
        yield
