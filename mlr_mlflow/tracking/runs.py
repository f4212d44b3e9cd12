"""Writing runs: batched logging, terminal states with reasons, datasets as MLflow inputs."""
from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

from . import names

# MLflow's per-request limits for log_batch.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100


def create_run(client, experiment_id: str, name: str, tags: dict[str, str],
               parent_run_id: str | None = None, run_id: str | None = None) -> str:
    """A new run, or, when `run_id` is given (an MLflow Project run), that run with our tags."""
    tags = dict(tags)
    if parent_run_id:
        tags[names.PARENT_RUN_ID] = parent_run_id
    if run_id:
        log(client, run_id, tags=tags)
        return run_id
    return client.create_run(experiment_id, tags=tags, run_name=name).info.run_id


def log(client, run_id: str, *, params: dict | None = None, metrics: dict | None = None,
        tags: dict | None = None, step: int = 0) -> None:
    """Everything in as few requests as MLflow allows; non-finite metrics are left out."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    m = [Metric(k, float(v), now, step) for k, v in (metrics or {}).items()
         if v is not None and math.isfinite(v)]
    p = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
    t = [RunTag(k, str(v)[:8000]) for k, v in (tags or {}).items()]
    while m or p or t:
        client.log_batch(run_id, metrics=m[:MAX_METRICS], params=p[:MAX_PARAMS], tags=t[:MAX_TAGS],
                         synchronous=True)
        m, p, t = m[MAX_METRICS:], p[MAX_PARAMS:], t[MAX_TAGS:]


def log_json(client, run_id: str, data, artifact_file: str, artifact_uri: str | None = None) -> None:
    text = json.dumps(data, indent=1, sort_keys=True, default=str)
    if artifact_uri:
        log_artifact_files(client, run_id, {artifact_file: text}, artifact_uri)
    else:
        client.log_text(run_id, text, artifact_file)


def log_artifact_files(client, run_id: str, files: dict[str, str], artifact_uri: str | None = None) -> None:
    """Several small text artifacts (path -> text) in one upload. With the run's `artifact_uri`
    (known when we created the run) MLflow need not look the run up to find where they go."""
    with tempfile.TemporaryDirectory(prefix="mlr-artifacts-") as tmp:
        for rel, text in files.items():
            path = Path(tmp, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        if artifact_uri:
            from .mlflow_internals import artifact_repository

            # resolved against this client's tracking URI, as MLflow's own client does (a proxied
            # mlflow-artifacts: URI belongs to the client's server, not to the process's default)
            artifact_repository(artifact_uri, tracking_uri=client.tracking_uri).log_artifacts(tmp)
        else:
            client.log_artifacts(run_id, tmp)


def log_datasets(client, run_id: str, datasets, context: str = "training") -> None:
    """One request registering every dataset with our digest, so a changed dataset is visible."""
    client.log_inputs(run_id, datasets=dataset_inputs(datasets, context))


def dataset_inputs(datasets, context: str = "training") -> list:
    """MLflow dataset inputs for our datasets: name, our digest, where they come from, their sizes."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    inputs = []
    for ds in datasets:
        profile = {"n_train": len(ds.y_train), "n_val": len(ds.y_val), "n_test": len(ds.y_test),
                   "n_features": int(ds.X_train.shape[1]), "n_classes": ds.n_classes}
        source = getattr(ds, "source", "") or ds.name
        where = ({"loader": "mlr_mlflow.evaluate.datasets", "name": source} if ":" not in source
                 else {"uri": source.split(":", 1)[1], "format": source.split(":", 1)[0]})
        if getattr(ds, "family", "mlp") != "mlp":
            profile["model"] = ds.family
        entity = Dataset(name=ds.name, digest=ds.digest, source_type="code" if ":" not in source else "local",
                         source=json.dumps(where),
                         profile=json.dumps(profile))
        inputs.append(DatasetInput(entity, [InputTag("mlflow.data.context", context)]))
    return inputs


def read_artifact_json(client, run, artifact_file: str):
    """A JSON artifact that `run` (a Run from a search) is known to have, in one download from its
    artifact location: through `runs:/` MLflow 3 first asks the server for a logged model of
    that name, a request per read that a busy team server feels."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="mlr-read-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{run.info.artifact_uri.rstrip('/')}/{artifact_file}", dst_path=tmp,
            tracking_uri=client.tracking_uri)
        return json.loads(Path(path).read_text())


def read_json(client, run_id: str, artifact_file: str, tries: int = 3, wait_s: float = 1.0):
    """A JSON artifact of a run, or None when the run's artifacts do not list it. A store that lists
    it but fails to give it back (after `tries`) raises TrackingError: "absent" and "unreadable"
    are never confused."""
    from mlflow.exceptions import MlflowException

    from .store import TrackingError

    folder = None if str(Path(artifact_file).parent) == "." else str(Path(artifact_file).parent)
    problem: Exception | None = None
    for attempt in range(tries):
        if attempt:
            time.sleep(wait_s * 2 ** (attempt - 1))
        try:
            listed = {a.path for a in client.list_artifacts(run_id, folder)}
            if artifact_file not in listed:
                return None
            with tempfile.TemporaryDirectory(prefix="mlr-read-") as tmp:
                return json.loads(Path(client.download_artifacts(run_id, artifact_file, tmp)).read_text())
        except (MlflowException, OSError, ValueError) as exc:  # ValueError: JSON cut short
            problem = exc
    raise TrackingError(f"run {run_id}: {artifact_file} is recorded but could not be read "
                        f"({type(problem).__name__}: {problem}); nothing was redone, try again")


def end_failed(client, run_id: str, exc: BaseException) -> None:
    """End a run that failed with `exc`, even when the store refuses to record why: the reason is
    best effort, the end is tried on its own."""
    try:
        log(client, run_id, tags={names.STATUS: "error", names.REASONS: f"{type(exc).__name__}: {exc}"[:4000]})
    except Exception:
        pass
    try:
        client.set_terminated(run_id, status="KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
    except Exception:
        pass


def end_tags(status_tag: str | None = None, reasons: list[str] | None = None,
             tags: dict | None = None) -> dict:
    """The tags that end a run: `tags`, its mlr.status and its reasons (one per line)."""
    tags = dict(tags or {})
    if status_tag:
        tags[names.STATUS] = status_tag
    if reasons:
        tags[names.REASONS] = "\n".join(reasons)
    return tags


def finish(client, run_id: str, *, failed: bool = False, status_tag: str | None = None,
           reasons: list[str] | None = None, tags: dict | None = None) -> None:
    """End a run FINISHED or FAILED, with the reasons (and any other `tags`) on the run itself."""
    tags = end_tags(status_tag, reasons, tags)
    if tags:
        log(client, run_id, tags=tags)
    client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")
