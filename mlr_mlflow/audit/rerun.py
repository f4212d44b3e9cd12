"""Re-execute a run from its own record: the packaged MLflow Project it names, its entry point and
parameters from its tags, its hypothesis source and config from its own artifacts (never the working
tree), all of it checked first (recorded.py), with `env_manager="local"` or inside a container
built from local material.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..config import Config, UsageError
from ..tracking import names
from ..tracking.fluent import FLUENT
from .recorded import ProjectCall, checked_call


class AuditError(UsageError):
    """The run cannot be audited (exit status 2): not ours, artifacts gone, no Docker daemon..."""


def project_call(tags: dict, artifact_dir: Path, into: Path, auditor: Config) -> ProjectCall:
    """The Project call recorded on a run, checked as untrusted input (recorded.py): raises
    AuditError when the run records none, TamperedRecord when what it records is not ours."""
    missing = [t for t in (names.PROJECT_URI, names.PROJECT_ENTRY_POINT, names.PROJECT_PARAMS)
               if t not in tags]
    if missing:
        raise AuditError(f"the run records no Project to re-run it with (missing tags: {', '.join(missing)})")
    return checked_call(tags, artifact_dir, into, auditor)


def run_local(tracking_uri: str, experiment_id: str, project: Path, entry_point: str, params: dict) -> str:
    """The Project run in this environment; returns its run id. Its command's `python` is the
    interpreter running the audit (its directory goes first on PATH while the run starts), so a
    virtual environment audits with its own installation."""
    import mlflow

    with FLUENT:  # mlflow.projects.run reads the process-global tracking URI
        previous, path = mlflow.get_tracking_uri(), os.environ.get("PATH", "")
        mlflow.set_tracking_uri(tracking_uri)
        os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), path])
        try:
            submitted = mlflow.projects.run(str(project), entry_point=entry_point, parameters=params,
                                            experiment_id=experiment_id, env_manager="local",
                                            synchronous=False)
        finally:
            mlflow.set_tracking_uri(previous)
            os.environ["PATH"] = path
    submitted.wait()
    return submitted.run_id


def docker_ready() -> None:
    from ..sandbox.docker_backend import docker_available

    if shutil.which("docker") is None or not docker_available():
        raise AuditError("--env docker needs a running Docker daemon (and its CLI): none is usable "
                         "here; see docker/README.md")


def local_path(artifact_location: str) -> str | None:
    """The directory of a local artifact location (file:// or a path), else None."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(artifact_location)
    if parsed.scheme in ("", "file") and not parsed.netloc:
        return url2pathname(parsed.path)
    return None


def run_docker(tracking_uri: str, experiment_id: str, project: Path, entry_point: str, params: dict,
               workdir: Path, artifact_dirs: list[str]) -> str:
    """The Project's command in a container: the sandbox image (built from local material, never
    pulled) plus the host's interpreter and this package mounted read-only, no network. The store is
    reached as MLflow's docker support does it: a local store is mounted into the container (with the
    artifact directories of the kind's experiment, where cached baselines are read)."""
    import mlflow
    import yaml

    from ..sandbox.bwrap_backend import INNER_PACKAGE_PARENT, SYSTEM_DIRS, python_prefixes
    from ..sandbox.docker_backend import IMAGE
    from ..sandbox.subprocess_backend import PACKAGE_PARENT

    if not tracking_uri.startswith(("sqlite:", "file:", "/")):
        raise AuditError("--env docker re-runs with no network, so it needs a local tracking store "
                         f"(sqlite or file); {tracking_uri!r} is a server")
    docker_ready()
    spec = yaml.safe_load((project / "MLproject").read_text())
    volumes = [f"{d}:{d}:ro" for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    volumes += [f"{p}:{p}:ro" for p in python_prefixes()]
    volumes += [f"{Path(PACKAGE_PARENT) / 'mlr_mlflow'}:{INNER_PACKAGE_PARENT}/mlr_mlflow:ro",
                f"{workdir}:{workdir}:ro"]
    volumes += [f"{d}:{d}" for d in artifact_dirs if os.path.isdir(d)]
    spec["docker_env"] = {"image": IMAGE, "volumes": volumes, "environment": [
        ["PYTHONPATH", INNER_PACKAGE_PARENT], ["HOME", "/tmp"], ["MPLCONFIGDIR", "/tmp"],
        ["MLR_MLFLOW_DEBUG", "1"]]}
    for entry in spec["entry_points"].values():  # the host's interpreter, by its path
        entry["command"] = entry["command"].replace("python -m", f"{sys.executable} -m", 1)
    copy = workdir / "project"
    copy.mkdir()
    (copy / "MLproject").write_text(yaml.safe_dump(spec))
    with FLUENT:  # mlflow.projects.run reads the process-global tracking URI
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(tracking_uri)
        try:
            submitted = mlflow.projects.run(str(copy), entry_point=entry_point, parameters=params,
                                            experiment_id=experiment_id, synchronous=False,
                                            docker_args={"network": "none"}, build_image=True)
        finally:
            mlflow.set_tracking_uri(previous)
    submitted.wait()
    return submitted.run_id
