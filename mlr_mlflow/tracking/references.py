"""References added by people: approved, confirmed hypotheses that join their kind's state of the art.

`mlr-mlflow references add RUN_ID` records the hypothesis on its experiment (the experiment tag
`mlr.references`, a JSON list of {"name", "run_id", "sha256", "by", "at"}). From then on
`evaluate.baselines.get_references` counts it among the kind's SOTA references, so later
evaluations' `bsota_wr` is measured against it too. Its results are cached like any reference's,
under a key that hashes its source (so it is trained once, on the first evaluation that needs it).
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from . import names
from .queries import hypothesis_runs
from .reviews import reviews_by_sha

PREFIX = "reviewed-"  # an added reference's name: reviewed-<first 8 of its sha256>

_SOURCES: dict[tuple[str, str], str] = {}  # (store, run id) -> hypothesis.py: an artifact never changes


class ReferenceRefused(ValueError):
    """The run cannot become a reference (one line, for the command's exit status 2)."""


def added(client, exp_id: str) -> list[dict]:
    """The references added to the experiment, oldest first."""
    text = client.get_experiment(exp_id).tags.get(names.REFERENCES)
    try:
        entries = json.loads(text) if text else []
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, dict) and e.get("run_id") and e.get("name")]


def _source(client, run_id: str) -> str:
    memo = (str(client.tracking_uri), run_id)
    if memo not in _SOURCES:
        with tempfile.TemporaryDirectory() as tmp:
            _SOURCES[memo] = Path(client.download_artifacts(run_id, names.HYPOTHESIS_ARTIFACT,
                                                            tmp)).read_text()
    return _SOURCES[memo]


def sources(client, exp_id: str, kind: str) -> dict[str, str]:
    """name -> source of the references added to the experiment for `kind`."""
    out = {}
    for entry in added(client, exp_id):
        if entry.get("kind", kind) == kind:
            out[entry["name"]] = _source(client, entry["run_id"])
    return out


def add(client, run_id: str, by: str = "") -> dict:
    """Make the hypothesis of `run_id` a reference of its kind; returns its entry. Raises
    ReferenceRefused unless reviewers approved it and its confirmation held."""
    try:
        run = client.get_run(run_id)
    except Exception as exc:
        raise ReferenceRefused(f"no run {run_id}: {str(exc).splitlines()[0][:200]}") from None
    tags, exp_id = run.data.tags, run.info.experiment_id
    sha, kind = tags.get(names.HYPOTHESIS_SHA256), tags.get(names.KIND)
    if tags.get(names.ROLE) != "hypothesis" or not sha or not kind:
        raise ReferenceRefused(f"run {run_id} is not a hypothesis run")
    runs = hypothesis_runs(client, exp_id, f"tags.`{names.HYPOTHESIS_SHA256}` = '{sha}'")
    review = reviews_by_sha(runs).get(sha)
    confirmed = any(r.data.tags.get(names.CONFIRMED) == "true" for r in runs)
    if review is None or review.verdict != "approve" or not confirmed:
        missing = [w for w, ok in (("approved", review is not None and review.verdict == "approve"),
                                   ("confirmed", confirmed)) if not ok]
        raise ReferenceRefused(f"run {run_id} is not {' and '.join(missing)}: only an approved, "
                               "confirmed hypothesis can become a reference")
    entries = added(client, exp_id)
    for entry in entries:
        if entry.get("sha256") == sha:
            return entry  # already a reference: nothing changes
    entry = {"name": PREFIX + sha[:8], "run_id": run_id, "sha256": sha, "kind": kind,
             "by": by, "at": round(time.time(), 3)}
    client.set_experiment_tag(exp_id, names.REFERENCES, json.dumps(entries + [entry]))
    return entry
