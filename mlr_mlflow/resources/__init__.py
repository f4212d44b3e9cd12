"""Files the package ships and finds at run time, in a checkout and from a wheel alike.

The MLflow Project, the default schedule, the sandbox's Dockerfile and the dashboards' templates
live here as package data; the top-level `projects/`, `jobs/`, `docker/` and `dashboards/` of a
checkout are links to these files, so there is one copy of each. Runs name the Project by package and version (`PROJECT_URI`), never by a path of
the machine that evaluated them, so a colleague's installation resolves it to its own copy.
"""
from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path
from ..config import UsageError

PACKAGE = "mlr-mlflow"
PROJECT_URI = f"{PACKAGE}:projects/evaluate"  # what `mlr.project.uri` holds


class ResourceError(UsageError):
    """A packaged file is missing or a recorded Project URI is not ours (exit status 2)."""


def package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
        return "0+unknown"


def path(relative: str) -> Path:
    """A packaged file or directory on disk (wheels install as directories, never zipped)."""
    found = Path(str(resources.files(__name__).joinpath(relative)))
    if not found.exists():
        raise ResourceError(f"packaged resource {relative!r} is missing from {found.parent} "
                            f"(a broken installation of {PACKAGE}?)")
    return found


def project_dir() -> Path:
    """The MLflow Project that evaluates one hypothesis (entry points one_pass and full)."""
    return path("projects/evaluate")


def resolve_project(uri: str) -> Path:
    """The local directory of the Project recorded on a run as `mlr.project.uri`: only the one this
    package ships. A recorded path (of this machine or another) is never opened: what it holds would
    be run by whoever audits the run (audit/recorded.py reads old path-style records)."""
    if uri == PROJECT_URI:
        return project_dir()
    raise ResourceError(f"the run's Project {uri[:200]!r} is not {PROJECT_URI!r}, the one {PACKAGE} ships")


def default_schedule() -> Path:
    return path("jobs/schedule.toml")


def dockerfile() -> Path:
    return path("docker/sandbox/Dockerfile")
