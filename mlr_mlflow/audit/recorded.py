"""What a run recorded about how to re-run it, read as untrusted input.

Anyone who may write a tag or an artifact on a shared tracking server can change a run's record, and
the audit re-executes what the record says, as the person (or the weekly job) who audits. So nothing
recorded is used as it stands:

- the Project is only the one this package ships: `mlr.project.uri` must name it by package
  (`mlr-mlflow:projects/evaluate`); a host path recorded by an old version that ends in
  `projects/evaluate` is read as that same identity (the path itself is never opened). A run recorded
  by another version of mlr-mlflow (`mlr.project.version`) is re-run with the installed Project and the
  difference listed as drift;
- the entry point comes from a closed set: the entry points of the shipped MLproject
  (`one_pass`, `full`), and it must be the one the run's variant maps to;
- the parameters are exactly the entry point's, each checked by type: `hypothesis` and `config` name
  the run's own artifacts (`hypothesis.py`, `config.json`), `kind` is a known kind and the run's own,
  `seeds` an integer in 1..MAX_SEEDS, `datasets` names of tasks in the run's own config;
- the recorded config (`config.json`) must load as a config, and its `[sandbox]` section is replaced
  by the auditor's own: a record never loosens how the hypothesis code is isolated or which secrets
  it sees.

A record that breaks any of these is `TamperedRecord`: the audit reports it as `not-reproduced`
(a `tamper` difference) and executes nothing.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .. import resources
from ..config import ConfigError, Config, recorded_config
from ..kinds import KINDS
from ..tracking import names

MAX_SEEDS = 100
MAX_PARAMS_CHARS = 8000
MAX_CONFIG_BYTES = 1_000_000
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}")
LEGACY_TAIL = ("projects", "evaluate")  # a Project recorded as a host path by an old version


class TamperedRecord(Exception):
    """The run's record names something this package would not have recorded."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


@dataclass
class ProjectCall:
    """What to re-execute, every piece checked: the packaged Project, entry point, parameters."""

    project: Path
    entry_point: str
    params: dict[str, str]
    drift: list[tuple[str, str, str]] = field(default_factory=list)  # (key, recorded, used)


def entry_points() -> dict[str, set[str]]:
    """The shipped Project's entry points and, for each, its parameter names: the closed set."""
    import yaml

    spec = yaml.safe_load((resources.project_dir() / "MLproject").read_text())
    return {name: set(entry.get("parameters") or {}) for name, entry in spec["entry_points"].items()}


def _project_identity(tags: dict, drift: list) -> None:
    uri = tags[names.PROJECT_URI]
    if uri != resources.PROJECT_URI:
        parts = PurePosixPath(uri).parts
        if not (uri.startswith("/") and parts[-2:] == LEGACY_TAIL and ".." not in parts):
            raise TamperedRecord(names.PROJECT_URI, f"{uri[:200]!r} is not the Project this package ships "
                                 f"({resources.PROJECT_URI!r}); only that one is re-executed")
        drift.append((names.PROJECT_URI, uri, resources.PROJECT_URI))
    version = tags.get(names.PROJECT_VERSION)
    if version is not None and not VERSION.fullmatch(str(version)):
        raise TamperedRecord(names.PROJECT_VERSION, f"{str(version)[:80]!r} is not a version")
    installed = resources.package_version()
    if version != installed:
        drift.append((names.PROJECT_VERSION, version or "not recorded", installed))


def _entry_point(tags: dict) -> str:
    from ..evaluate.baselines import ENTRY_POINTS

    entry = tags[names.PROJECT_ENTRY_POINT]
    allowed = entry_points()
    if entry not in allowed:
        raise TamperedRecord(names.PROJECT_ENTRY_POINT, f"{str(entry)[:80]!r} is not an entry point of "
                             f"the shipped Project (one of {', '.join(sorted(allowed))})")
    variant = tags.get(names.VARIANT)
    if variant in ENTRY_POINTS and ENTRY_POINTS[variant] != entry:
        raise TamperedRecord(names.PROJECT_ENTRY_POINT, f"{entry!r} is not the entry point of a "
                             f"{variant} run ({ENTRY_POINTS[variant]!r})")
    return entry


def _recorded_params(tags: dict, allowed: set[str]) -> dict:
    text = tags[names.PROJECT_PARAMS]
    if len(text) > MAX_PARAMS_CHARS:
        raise TamperedRecord(names.PROJECT_PARAMS, f"{len(text)} characters, more than a run records")
    try:
        params = json.loads(text)
    except ValueError:
        raise TamperedRecord(names.PROJECT_PARAMS, "not JSON") from None
    if not isinstance(params, dict):
        raise TamperedRecord(names.PROJECT_PARAMS, f"a JSON {type(params).__name__}, not an object")
    unknown = sorted(str(k)[:40] for k in params if k not in allowed)
    if unknown:
        raise TamperedRecord(names.PROJECT_PARAMS, f"parameter(s) {', '.join(map(repr, unknown))} that "
                             "the entry point does not declare")
    return params


def _seeds(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or \
            (isinstance(value, str) and not value.isascii()) or not str(value).isdigit() or \
            not 1 <= int(value) <= MAX_SEEDS:
        raise TamperedRecord(f"{names.PROJECT_PARAMS} seeds",
                             f"{str(value)[:40]!r} is not a number of seeds (1..{MAX_SEEDS})")
    return str(int(value))


def _config(artifact_dir: Path, auditor: Config) -> Config:
    path = artifact_dir / names.CONFIG_ARTIFACT
    if not path.is_file() or path.is_symlink():
        raise TamperedRecord(names.CONFIG_ARTIFACT, "not a regular file among the run's artifacts")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise TamperedRecord(names.CONFIG_ARTIFACT, f"{path.stat().st_size} bytes, more than a config")
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ConfigError(f"a JSON {type(data).__name__}, not an object")
        recorded = recorded_config(data)
    except (ValueError, TypeError, ConfigError) as exc:
        raise TamperedRecord(names.CONFIG_ARTIFACT, f"does not load as a config ({exc})") from None
    return dataclasses.replace(recorded, sandbox=auditor.sandbox)


def checked_call(tags: dict, artifact_dir: Path, into: Path, auditor: Config) -> ProjectCall:
    """The re-execution a run's record asks for, checked; `into` receives the config it runs with
    (the recorded one with the auditor's `[sandbox]`). Raises TamperedRecord."""
    drift: list = []
    _project_identity(tags, drift)
    entry = _entry_point(tags)
    params = _recorded_params(tags, entry_points()[entry])
    hypothesis = params.get("hypothesis")
    if hypothesis != names.HYPOTHESIS_ARTIFACT:
        raise TamperedRecord(f"{names.PROJECT_PARAMS} hypothesis", f"{str(hypothesis)[:80]!r} is not "
                             f"the run's own {names.HYPOTHESIS_ARTIFACT}")
    if params.get("config") not in (None, "", names.CONFIG_ARTIFACT):  # empty: recorded before it was
        raise TamperedRecord(f"{names.PROJECT_PARAMS} config", f"{str(params['config'])[:80]!r} is not "
                             f"the run's own {names.CONFIG_ARTIFACT}")
    kind = params.get("kind")
    if kind not in KINDS or kind != tags.get(names.KIND):
        raise TamperedRecord(f"{names.PROJECT_PARAMS} kind", f"{str(kind)[:40]!r} is not the run's kind "
                             f"({tags.get(names.KIND)!r}) or not a kind")
    seeds = _seeds(params.get("seeds", 3))
    source = artifact_dir / names.HYPOTHESIS_ARTIFACT
    if not source.is_file() or source.is_symlink():
        raise TamperedRecord(names.HYPOTHESIS_ARTIFACT, "not a regular file among the run's artifacts")
    config = _config(artifact_dir, auditor)
    datasets = params.get("datasets", "")
    known = {t.name for t in config.suite.task_list()}
    chosen = [d for d in datasets.split(",") if d] if isinstance(datasets, str) else None
    if chosen is None or any(d not in known for d in chosen):
        raise TamperedRecord(f"{names.PROJECT_PARAMS} datasets", f"{str(datasets)[:80]!r} names "
                             "something that is not a task of the run's own config")
    into.mkdir(parents=True, exist_ok=True)
    (into / names.CONFIG_ARTIFACT).write_text(json.dumps(config.to_dict(), indent=1, sort_keys=True,
                                                         default=str))
    return ProjectCall(resources.project_dir(), entry, {
        "hypothesis": str(source), "kind": kind, "seeds": seeds,
        "config": str(into / names.CONFIG_ARTIFACT), "datasets": ",".join(chosen)}, drift)
