"""What makes a round survive `kill -9`: its state lives in MLflow, and every stage is idempotent.

- One round per kind at a time, in any process on any host: a round (new or resumed) first takes the
  kind's lease (`tracking/lease.py`: a compare-and-set row in the tracking store's database, with a
  fencing token). Unfinished rounds, RUNNING, FAILED or KILLED, are handed out only to the lease's
  holder, so two resumers never work on one round. The holder renews the lease every
  HEARTBEAT_EVERY_S; if a renewal finds it taken over, the round stops at its next stage boundary
  without writing anything more (LeaseLost). The round run also carries the heartbeat as a tag
  (`mlr.round.heartbeat`: time, host, pid, token) for people looking at it in MLflow.
- `generation.json` (every proposal, with the accepted sources) is logged before any evaluation,
  so a resumed round evaluates exactly the hypotheses of the original one. On resume, an absent
  artifact means "killed during generation" (generated again, from the same seed); one that is
  listed but cannot be read fails the resume, never regenerates.
- What a round recorded is read back as untrusted input (anyone who may write to the tracking server
  can change it): its parameters, `generation.json` (whose accepted sources are evaluated and whose
  `origin` becomes tags, metrics and artifacts of new runs) and `selection.json` (which hypotheses are
  trained). Each must have the shape this package writes, or the resume is refused with one line
  (RecordRefused, exit status 2), nothing repaired, nothing acted on:
  sizes (an artifact of at most MAX_ARTIFACT_BYTES, at most MAX_RECORDS proposals, sources of at
  most MAX_SOURCE_CHARS); types (lists of hashes, numbers, strings; statuses from a closed set);
  names (a proposal's `origin` may add a generator's own tags, `mlr.llm.*`, `mlr.symbolic.*`,
  `mlr.parents`, `mlr.fingerprint` or names outside `mlr.`/`mlflow.`, never the package's own such as
  `mlr.role`, `mlr.status` or `mlr.project.*`; its artifacts are relative names, never the run's own
  `hypothesis.py`, `config.json`...); membership (every hash `selection.json` names is one of the
  round's own hypotheses).
- Decisions are recorded before they are acted on: the screening mode (`mlr.screen`) and, for a
  reward-screened round, `selection.json` (the picks and their scores) are logged before any
  training, and a resumed round reuses them even if the champion changed since.
- Before a stage evaluates hypotheses, the round's nested runs are read: finished evaluations are
  kept (rebuilt from their runs, never repeated); runs left RUNNING by the dead process are marked
  FAILED (`mlr.status=error`, "interrupted") and their hypotheses evaluated again.
"""
from __future__ import annotations

import os
import re
import socket
import time

from ..config import UsageError
from ..hypothesis import Hypothesis
from ..tracking import finish, log, names
from ..tracking.lease import Lease, LeaseBusy, rounds_lease
from ..tracking.queries import round_runs, runs_of_round
from ..tracking.runs import read_json
from .selection import Selection

HEARTBEAT = names.ROUND_HEARTBEAT
OWNER = names.ROUND_OWNER
SCREEN = names.SCREEN
HEARTBEAT_EVERY_S = 15.0
STALE_AFTER_S = 60.0
DONE_STATUSES = ("evaluated", "invalid", "screened")

RoundBusy = LeaseBusy  # another live process works on a round of the kind (exit status 2)


def round_lease(client, exp_id: str, kind: str) -> Lease:
    return rounds_lease(client, exp_id, f"a round of kind {kind}", stale_s=STALE_AFTER_S,
                        every_s=HEARTBEAT_EVERY_S)


def beat(client, run_id: str, lease: Lease) -> None:
    """The heartbeat tag of the round run (informational: the lease decides who may work)."""
    log(client, run_id, tags={
        HEARTBEAT: f"{time.time():.0f}|{socket.gethostname()}|{os.getpid()}|{lease.token}",
        OWNER: lease.owner})


def unfinished_round(client, exp_id: str):
    """The latest round that did not finish (None when there is none). Call it holding the kind's
    lease: then no live process works on it, whatever its status says."""
    for run in round_runs(client, exp_id, newest_first=True, limit=50):
        status = run.info.status
        if status == "FINISHED" or (status == "FAILED" and run.data.tags.get(names.STATUS) != "error"):
            continue
        return run
    return None


def generation_records(client, run_id: str) -> list[dict] | None:
    """The round's generation.json; None when it was never logged. A store that fails to give it
    back raises TrackingError: regenerating would mean new proposals and new LLM calls; one that is
    not what a round writes raises RecordRefused."""
    sized(client, run_id, names.GENERATION_ARTIFACT)
    return check_generation(run_id, read_json(client, run_id, names.GENERATION_ARTIFACT))


def saved_selection(client, run_id: str, round_hashes: set[str] | None = None) -> Selection | None:
    """The round's selection.json, checked against the round's own hypotheses (`round_hashes`:
    the accepted ones of its generation.json) when given; None when it was never logged."""
    sized(client, run_id, names.SELECTION_ARTIFACT)
    checked = check_selection(run_id, read_json(client, run_id, names.SELECTION_ARTIFACT), round_hashes)
    return None if checked is None else Selection.from_json(checked)


def done_and_interrupted(client, exp_id: str, round_id: str, variant: str) -> dict:
    """sha256 -> finished run of this round and variant; RUNNING leftovers are marked interrupted."""
    done = {}
    for run in runs_of_round(client, exp_id, round_id):
        tags = run.data.tags
        if tags.get(names.VARIANT) != variant:
            continue
        if run.info.status == "RUNNING":
            finish(client, run.info.run_id, failed=True, status_tag="error",
                   reasons=["interrupted: the process evaluating it died; evaluated again on resume"])
        elif tags.get(names.STATUS) in DONE_STATUSES:
            done.setdefault(tags[names.HYPOTHESIS_SHA256], run)
    return done


def link_reruns(client, exp_id: str, round_id: str, variant: str) -> int:
    """Each run a kill interrupted names the run that evaluated its hypothesis again on resume
    (`mlr.rerun`), and that run names it (`mlr.rerun_of`), so the MLflow UI leads from one to the
    other. Returns how many were linked."""
    interrupted, fresh = {}, {}
    for run in runs_of_round(client, exp_id, round_id):
        tags = run.data.tags
        if tags.get(names.VARIANT) != variant or names.RERUN in tags:
            continue
        if tags.get(names.STATUS) == "error" and tags.get(names.REASONS, "").startswith("interrupted"):
            interrupted.setdefault(tags.get(names.HYPOTHESIS_SHA256), []).append(run.info.run_id)
        elif tags.get(names.STATUS) in DONE_STATUSES:
            fresh.setdefault(tags.get(names.HYPOTHESIS_SHA256), run.info.run_id)
    linked = 0
    for sha, old_runs in interrupted.items():
        if sha in fresh:
            for old in old_runs:
                log(client, old, tags={names.RERUN: fresh[sha]})
                linked += 1
            log(client, fresh[sha], tags={names.RERUN_OF: ",".join(old_runs)})
    return linked


def hypotheses_from_records(records: list[dict], kind: str) -> list[Hypothesis]:
    return [Hypothesis(kind, r["source"], r.get("generator", "unknown"), r.get("origin") or {})
            for r in records if r.get("status") == "accepted"]


# What a round recorded, read back (see the module's docstring)
MAX_ARTIFACT_BYTES = 50_000_000
MAX_RECORDS = 100_000
MAX_SOURCE_CHARS = 200_000
MAX_N, MAX_SEEDS = 100_000, 100
STATUSES = ("accepted", "duplicate", "rediscovery", "failed")
GENERATOR_TAGS = (names.LLM_PREFIX, names.SYMBOLIC_PREFIX, names.PARENTS, names.FINGERPRINT)
OWN_ARTIFACTS = (names.HYPOTHESIS_ARTIFACT, names.RESULTS_ARTIFACT, names.CONFIG_ARTIFACT,
                 names.ENVIRONMENT_ARTIFACT)
ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}){0,4}")
SHA256 = re.compile(r"[0-9a-f]{64}")
METRIC_NAME = re.compile(r"[A-Za-z0-9_.\-/ ]{1,250}")
RUN_ID = re.compile(r"[0-9A-Za-z_-]{0,64}")


class RecordRefused(UsageError):
    """A round's record is not what this package writes: the resume stops before acting on it."""


def _refuse(run_id: str, artifact: str, why: str):
    raise RecordRefused(f"round {run_id}: its {artifact} is not what a round records ({why}); "
                        "refusing to resume on it")


def sized(client, run_id: str, artifact: str) -> None:
    """Refuse an artifact larger than any round writes, before it is downloaded."""
    for info in client.list_artifacts(run_id):
        if info.path == artifact and (info.file_size or 0) > MAX_ARTIFACT_BYTES:
            _refuse(run_id, artifact, f"{info.file_size} bytes")


def _number(value) -> bool:
    """A number (NaN included: a reward model scores an unmeasurable row NaN, and metrics that are
    not finite are never logged)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _tag_allowed(key) -> bool:
    if not _text(key, 250) or not key:
        return False
    return key.startswith(GENERATOR_TAGS) or not key.startswith((names.MLR_PREFIX, names.MLFLOW_PREFIX))


def _origin(where, origin) -> str | None:
    """Why a proposal's origin is refused, or None."""
    if origin is None:
        return None
    if not isinstance(origin, dict) or set(origin) - {"tags", "metrics", "artifacts"}:
        return f"{where}: origin is not tags, metrics and artifacts"
    tags, metrics, artifacts = (origin.get(k) or {} for k in ("tags", "metrics", "artifacts"))
    if not (isinstance(tags, dict) and isinstance(metrics, dict) and isinstance(artifacts, dict)):
        return f"{where}: origin's tags, metrics or artifacts is not an object"
    bad = [k for k, v in tags.items() if not _tag_allowed(k) or not _text(v, 8000)]
    if bad:
        return f"{where}: origin sets the tag {str(bad[0])[:60]!r}, which is not a generator's to set"
    if any(not (_text(k, 250) and METRIC_NAME.fullmatch(k)) or not _number(v) for k, v in metrics.items()):
        return f"{where}: origin's metrics are not numbers"
    bad = [k for k in artifacts if not (isinstance(k, str) and ARTIFACT_NAME.fullmatch(k))
           or k in OWN_ARTIFACTS]
    if bad or any(not _text(v, MAX_SOURCE_CHARS * 10) for v in artifacts.values()):
        return f"{where}: origin names the artifact {str(bad[0] if bad else '?')[:60]!r}"
    return None


def _record(i: int, r) -> str | None:
    where = f"proposal {i}"
    if not isinstance(r, dict):
        return f"{where} is not an object"
    status = r.get("status")
    if status not in STATUSES:
        return f"{where}: status {str(status)[:40]!r}"
    if status != "failed" and not (isinstance(r.get("sha256"), str) and SHA256.fullmatch(r["sha256"])):
        return f"{where}: sha256 is not a hash"
    if status == "accepted" and not _text(r.get("source"), MAX_SOURCE_CHARS):
        return f"{where}: accepted without a source of at most {MAX_SOURCE_CHARS} characters"
    if "source" in r and not _text(r["source"], MAX_SOURCE_CHARS):
        return f"{where}: source is not text of at most {MAX_SOURCE_CHARS} characters"
    for key in ("generator", "of_run", "of_sha256", "of_reference", "fingerprint", "error", "reply"):
        if r.get(key) is not None and not _text(r[key], MAX_SOURCE_CHARS):
            return f"{where}: {key} is not text"
    if status in ("duplicate", "rediscovery") and r.get("source") is not None and \
            not _text(r.get("fingerprint"), 100_000):
        return f"{where}: a behavioural duplicate without its fingerprint"
    if status == "rediscovery" and r.get("source") is not None and not _text(r.get("of_reference"), 200):
        return f"{where}: a rediscovery that names no reference"
    return _origin(where, r.get("origin")) or _origin(where, {"tags": r["tags"]} if "tags" in r else None)


def check_generation(run_id: str, records):
    """generation.json as a round writes it (a list of proposals), or RecordRefused."""
    if records is None:
        return None
    if not isinstance(records, list):
        _refuse(run_id, names.GENERATION_ARTIFACT, f"a JSON {type(records).__name__}, not a list")
    if len(records) > MAX_RECORDS:
        _refuse(run_id, names.GENERATION_ARTIFACT, f"{len(records)} proposals")
    for i, r in enumerate(records):
        why = _record(i, r)
        if why:
            _refuse(run_id, names.GENERATION_ARTIFACT, why)
    return records


def _hashes(value) -> bool:
    return isinstance(value, list) and all(isinstance(s, str) and SHA256.fullmatch(s) for s in value)


def _scores(value) -> bool:
    return isinstance(value, dict) and all(SHA256.fullmatch(str(k)) and _number(v) for k, v in value.items())


def check_selection(run_id: str, selection, round_hashes: set[str] | None):
    """selection.json as a round writes it, naming only the round's own hypotheses, or RecordRefused."""
    if selection is None:
        return None
    name = names.SELECTION_ARTIFACT
    if not isinstance(selection, dict):
        _refuse(run_id, name, f"a JSON {type(selection).__name__}, not an object")
    if not _scores(selection.get("scores")) or not _scores(selection.get("rescores", {})) or \
            not _scores(selection.get("spreads", {})):
        _refuse(run_id, name, "scores are not hashes with numbers")
    picks, explored = selection.get("picks"), selection.get("explored")
    if not _hashes(picks) or not _hashes(explored) or len(set(picks)) != len(picks):
        _refuse(run_id, name, "picks and explored are not lists of distinct hashes")
    waves, sizes = selection.get("waves", [picks]), selection.get("wave_sizes", [len(picks)])
    if not isinstance(waves, list) or not all(_hashes(w) and set(w) <= set(picks) for w in waves):
        _refuse(run_id, name, "waves are not lists of picked hashes")
    if not isinstance(sizes, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in sizes) or \
            len(sizes) > len(selection["scores"]) + 1 or sum(sizes) > len(selection["scores"]):
        _refuse(run_id, name, "wave sizes are not counts within the scored hypotheses")
    metrics = selection.get("metrics", {})
    if not isinstance(metrics, dict) or not all(isinstance(k, str) and METRIC_NAME.fullmatch(k) and
                                                (v is None or _number(v)) for k, v in metrics.items()):
        _refuse(run_id, name, "metrics are not names with numbers or nulls")
    if not (isinstance(selection.get("model_run_id"), str) and RUN_ID.fullmatch(selection["model_run_id"])):
        _refuse(run_id, name, "model_run_id is not a run id")
    refits = selection.get("refits", [])
    if not isinstance(refits, list) or not all(isinstance(r, dict) and isinstance(r.get("learned"), int)
                                               for r in refits):
        _refuse(run_id, name, "refits are not records of refits")
    if round_hashes is not None:
        named = set(selection["scores"]) | set(selection.get("rescores", {})) | set(picks) | set(explored)
        foreign = sorted(named - round_hashes)
        if foreign:
            _refuse(run_id, name, f"{len(foreign)} hash(es) that are not the round's own hypotheses, "
                                  f"e.g. {foreign[0][:12]}")
    return selection


def round_numbers(run_id: str, params: dict) -> tuple[int, int, int, int]:
    """(n, top_k, seeds, seed) recorded as the round's parameters, each an integer in range."""
    bounds = {"n": (1, MAX_N), "top_k": (0, MAX_N), "seeds": (1, MAX_SEEDS), "seed": (0, 2 ** 32 - 1)}
    values = []
    for key, (low, high) in bounds.items():
        text = str(params.get(key, ""))
        if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
            raise RecordRefused(f"round {run_id}: its parameter {key} = {text[:40]!r} is not an integer "
                                f"in {low}..{high}; refusing to resume on it")
        values.append(int(text))
    return tuple(values)


def round_number(run_id: str, tags: dict) -> int:
    """The round's number in its experiment (its tag; 0 when an old round has none)."""
    text = str(tags.get(names.ROUND_NUMBER, "0"))
    if not (text.isascii() and text.isdigit() and int(text) <= MAX_N):
        raise RecordRefused(f"round {run_id}: its tag {names.ROUND_NUMBER} = {text[:40]!r} is not a round "
                            "number; refusing to resume on it")
    return int(text)
