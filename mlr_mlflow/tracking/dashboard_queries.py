"""What the dashboard and the round report read from a tracking store, as plain records.

One snapshot of the store: every run of ours (hypotheses, rounds, reward trainings, audits) and
every reward model version, flattened into dicts so that the dashboard's data and page code never
touch MLflow objects. A part of the store the caller may not read (a server that needs a login, a
registry that refuses) becomes a note in `Snapshot.problems` instead of an exception.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import names, queries

PAGE = 5000
RUN_KEYS_TAGS = {  # record key -> tag
    "kind": names.KIND, "sha256": names.HYPOTHESIS_SHA256, "generator": names.GENERATOR,
    "expression": names.EXPRESSION,
    "round_id": names.ROUND_ID, "role": names.ROLE, "variant": names.VARIANT,
    "status": names.STATUS, "reasons": names.REASONS, "stage": names.STAGE,
    "parents": names.PARENTS, "prompt_style": names.LLM_PROMPT_STYLE, "llm_model": names.LLM_MODEL,
    "operator": names.SYMBOLIC_OPERATOR, "audit_verdict": names.AUDIT_VERDICT, "confirmed": names.CONFIRMED,
    "round_number": names.ROUND_NUMBER, "stop_reason": names.ROUND_STOP_REASON,
    "name": names.RUN_NAME, "screen_pick": names.SCREEN_PICK, "parent_run_id": names.PARENT_RUN_ID,
    "holdout_rounds": names.REWARD_HOLDOUT_ROUNDS, "audit_of": names.AUDIT_OF,
    "instrument_source": names.INSTRUMENT_SOURCE, "transfers": names.TRANSFERS, "llm_arm": names.LLM_ARM,
    "review_verdict": names.REVIEW_VERDICT, "review_reason": names.REVIEW_REASON,
    "review_at": names.REVIEW_AT,
    "inspired_by": names.INSPIRED_BY,
}


class NeedsLogin(RuntimeError):
    """The tracking server answered 401/403: it needs credentials this process does not have."""


def needs_login(exc: BaseException) -> bool:
    text = str(exc)
    return any(s in text for s in ("401", "403", "Unauthorized", "PERMISSION_DENIED",
                                   "UNAUTHENTICATED", "credentials"))


@dataclass
class Snapshot:
    """Runs as records (see RUN_KEYS_TAGS; metrics under "metrics"), reward versions, and notes."""

    tracking_uri: str
    experiments: dict[str, str] = field(default_factory=dict)  # id -> name
    runs: list[dict] = field(default_factory=list)
    reward_versions: list[dict] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # part -> why it could not be read
    read_text: Callable[[str, str], str | None] = field(default=lambda run_id, path: None, repr=False)

    def role(self, role: str) -> list[dict]:
        return [r for r in self.runs if r.get("role") == role]


def _record(run) -> dict:
    tags = run.data.tags
    rec = {key: tags.get(tag) for key, tag in RUN_KEYS_TAGS.items()}
    rec.update(run_id=run.info.run_id, experiment_id=run.info.experiment_id,
               run_status=run.info.status, start_time=run.info.start_time or 0,
               metrics=dict(run.data.metrics), params=dict(run.data.params))
    return rec


def round_records(client, exp_id: str) -> list[dict]:
    """The rounds of one experiment as records, oldest first."""
    return sorted((_record(r) for r in queries.round_runs(client, exp_id)),
                  key=lambda r: r["start_time"])


def artifact_reader(client) -> Callable[[str, str], str | None]:
    """(run_id, path) -> the artifact's text, or None when it cannot be read."""
    def read(run_id: str, path: str) -> str | None:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                return Path(client.download_artifacts(run_id, path, tmp)).read_text()
        except Exception:  # missing, or not readable from here: the page says so
            return None
    return read


def snapshot(client, read_text: Callable[[str, str], str | None] | None = None) -> Snapshot:
    """Everything the dashboard shows. Raises NeedsLogin when the store refuses to list anything."""
    snap = Snapshot(tracking_uri=str(client.tracking_uri))
    snap.read_text = read_text or artifact_reader(client)
    try:
        experiments = client.search_experiments(max_results=PAGE)
    except Exception as exc:
        if needs_login(exc):
            raise NeedsLogin(str(exc).splitlines()[0] if str(exc) else "login required") from None
        raise
    snap.experiments = {e.experiment_id: e.name for e in experiments}
    try:
        runs = queries.search(client, list(snap.experiments)) if snap.experiments else []
        snap.runs = [_record(r) for r in runs if names.ROLE in r.data.tags
                     or names.AUDIT_VERDICT in r.data.tags]
    except Exception as exc:
        snap.problems["runs"] = f"runs could not be read: {str(exc).splitlines()[0][:200]}"
    try:
        snap.reward_versions = _reward_versions(client, snap)
    except Exception as exc:
        snap.problems["reward"] = (f"the model registry could not be read: "
                                   f"{str(exc).splitlines()[0][:200]}")
    return snap


def _reward_versions(client, snap: Snapshot) -> list[dict]:
    out = []
    for model in client.search_registered_models(filter_string=f"name LIKE '{names.REWARD_MODEL_PREFIX}%'"):
        aliases: dict[str, list[str]] = {}
        for alias, number in (model.aliases or {}).items():
            aliases.setdefault(str(number), []).append(alias)
        for version in client.search_model_versions(f"name = '{model.name}'"):
            tags = dict(version.tags or {})
            run = next((r for r in snap.runs if r["run_id"] == version.run_id), None)
            predictions = snap.read_text(version.run_id, names.HOLDOUT_PREDICTIONS_ARTIFACT)
            out.append({
                "model": model.name, "kind": model.name.removeprefix(names.REWARD_MODEL_PREFIX),
                "version": int(version.version), "run_id": version.run_id,
                "experiment_id": run["experiment_id"] if run else None,
                "created": version.creation_timestamp or 0,
                "alias": ", ".join(sorted(aliases.get(str(version.version), []))),
                "champion_since": since_ms(tags.get(names.CHAMPION_SINCE)),
                "promotion": "\n".join(v for k, v in sorted(tags.items())
                                       if k.startswith(names.PROMOTION)),
                "holdout_spearman": (run or {}).get("metrics", {}).get(names.HOLDOUT_SPEARMAN),
                "holdout_rounds": json.loads((run or {}).get("holdout_rounds") or "[]"),
                "predictions": _table(predictions),
            })
    return sorted(out, key=lambda v: (v["kind"], v["version"]))


def _table(text: str | None) -> list[dict]:
    """An MLflow table artifact ({"columns", "data"}) as rows."""
    if not text:
        return []
    table = json.loads(text)
    return [dict(zip(table["columns"], row)) for row in table.get("data", [])]


def since_ms(value: str | None) -> int | None:
    """`mlr.champion.since` as epoch milliseconds: ISO 8601 today, epoch milliseconds before."""
    import datetime as dt

    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None
