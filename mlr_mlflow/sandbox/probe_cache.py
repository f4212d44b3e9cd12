"""What the sandbox backends' self-tests found on this machine, kept between processes.

A self-test starts an interpreter inside the backend (seconds, tens of seconds on a busy machine),
and "auto" may try three backends. Its answer depends only on the interpreter, the machine, the
user, the tools on PATH and this package, so it is kept for a day in a small JSON file under the
user's cache directory ($MLR_MLFLOW_CACHE_DIR, else $XDG_CACHE_HOME/mlr-mlflow, else
~/.cache/mlr-mlflow), keyed by exactly those: a new interpreter, Python, host, user, PATH, package
version or package location starts afresh. Each self-test actually run is appended to `probes.log`
beside it, so that a slow start can be explained (and counted).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")
KEEP_S = 24 * 3600
CACHE_FILE = "sandbox-probes.json"
PROBE_LOG = "probes.log"
MAX_ENTRIES = 8  # keys kept at once (interpreters, PATHs): the oldest go first


def cache_dir() -> Path:
    explicit = os.environ.get("MLR_MLFLOW_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlr-mlflow"


def machine_key() -> dict:
    """What a self-test's answer depends on."""
    import mlr_mlflow

    return {"executable": sys.executable, "python": sys.version, "host": socket.gethostname(),
            "uid": os.geteuid() if hasattr(os, "geteuid") else None, "path": os.environ.get("PATH", ""),
            "package": mlr_mlflow.__version__, "package_dir": str(Path(__file__).resolve().parents[1])}


def _key() -> str:
    return hashlib.sha256(json.dumps(machine_key(), sort_keys=True).encode()).hexdigest()[:16]


def _read(path: Path) -> dict:
    try:
        entries = json.loads(path.read_text())
        return entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path: Path, entries: dict) -> None:
    """Atomically (another process may read it meanwhile); an unwritable cache is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".probes-")
        with os.fdopen(fd, "w") as out:
            json.dump(entries, out, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass


def remembered(name: str, probe: Callable[[], T], keep: Callable[[T], bool] = lambda _: True) -> T:
    """`probe()`'s JSON-able answer, from the cache while its key holds and it is under a day old
    (an answer that `keep` refuses is not kept: one that may change within the day)."""
    path, key, now = cache_dir() / CACHE_FILE, _key(), time.time()
    found = _read(path).get(key, {}).get("results", {}).get(name)
    if isinstance(found, dict) and 0 <= now - found.get("at", 0) < KEEP_S:
        return found.get("value")
    value = probe()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / PROBE_LOG, "a") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {os.getpid()} {name} -> {value!r}\n")
    except OSError:
        pass
    if not keep(value):
        return value
    entries = _read(path)  # again: another process may have added its answers meanwhile
    entry = entries.setdefault(key, {"key": machine_key(), "results": {}})
    entry["results"][name] = {"value": value, "at": now}
    entry["used"] = now
    while len(entries) > MAX_ENTRIES:
        entries.pop(min(entries, key=lambda k: entries[k].get("used", 0)))
    _write(path, entries)
    return value


def kept(name: str, keep: Callable[[T], bool] = lambda _: True) -> Callable[[Callable[[], T]], Callable[[], T]]:
    """Decorate a self-test of no arguments so its answer is kept in the cache under `name`."""
    def wrap(probe: Callable[[], T]) -> Callable[[], T]:
        @functools.wraps(probe)
        def cached_probe() -> T:
            return remembered(name, probe, keep)
        return cached_probe
    return wrap
