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
- Decisions are recorded before they are acted on: the screening mode (`mlr.screen`) and, for a
  reward-screened round, `selection.json` (the picks and their scores) are logged before any
  training, and a resumed round reuses them even if the champion changed since.
- Before a stage evaluates hypotheses, the round's nested runs are read: finished evaluations are
  kept (rebuilt from their runs, never repeated); runs left RUNNING by the dead process are marked
  FAILED (`mlr.status=error`, "interrupted") and their hypotheses evaluated again.
"""
from __future__ import annotations

import os
import socket
import time

from .hypothesis import Hypothesis
from .tracking import finish, log, names
from .tracking.lease import Lease, LeaseBusy, rounds_lease
from .tracking.queries import round_runs, runs_of_round
from .tracking.runs import read_json

HEARTBEAT = "mlr.round.heartbeat"
OWNER = "mlr.round.owner"
SCREEN = "mlr.screen"
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
    back raises TrackingError: regenerating would mean new proposals and new LLM calls."""
    return read_json(client, run_id, names.GENERATION_ARTIFACT)


def saved_selection(client, run_id: str) -> dict | None:
    return read_json(client, run_id, names.SELECTION_ARTIFACT)


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


def hypotheses_from_records(records: list[dict], kind: str) -> list[Hypothesis]:
    return [Hypothesis(kind, r["source"], r.get("generator", "unknown"), r.get("origin") or {})
            for r in records if r.get("status") == "accepted"]
