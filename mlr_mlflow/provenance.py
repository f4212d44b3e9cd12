"""What a result depends on besides its code and data: library versions, the package's own source
(git commit and a dirty flag when it runs from a checkout), the interpreter and the machine.

Recorded on every hypothesis and baseline run as `environment.json`, so an audit can say what
differs when a re-execution drifts. Versions come from package metadata: nothing heavy is imported.
"""
from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

LIBRARIES = ("mlr-mlflow", "torch", "lightning", "numpy", "scikit-learn", "mlflow")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    versions = {}
    for dist in names:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


@lru_cache(maxsize=1)
def source_revision() -> dict | None:
    """{"commit", "dirty"} when the package is imported from a git checkout, else None."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no",
                                 "--", "mlr_mlflow"], capture_output=True, text=True, timeout=10,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """The machine and software a result was computed with (JSON-able)."""
    return {"versions": library_versions(), "source": source_revision(),
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "cpu": cpu_model(),
            "cpu_count": os.cpu_count()}
