"""What makes a round survive `kill -9`: its state lives in MLflow, and every stage is idempotent.

- The round run carries a heartbeat tag (`mlr.round.heartbeat`: time, host, pid) refreshed by a
  thread while it works. A round whose run is RUNNING with a fresh heartbeat belongs to a live
  process: nobody else may touch it. A stale heartbeat means its process died.
- `generation.json` (every proposal, with the accepted sources) is logged before any evaluation,
  so a resumed round evaluates exactly the hypotheses of the original one.
- Before a stage evaluates hypotheses, the round's nested runs are read: finished evaluations are
  kept (rebuilt from their runs, never repeated); runs left RUNNING by the dead process are marked
  FAILED (`mlr.status=error`, "interrupted") and their hypotheses evaluated again.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from .hypothesis import Hypothesis
from .tracking import finish, log, names

HEARTBEAT = "mlr.round.heartbeat"
OWNER = "mlr.round.owner"
HEARTBEAT_EVERY_S = 15.0
STALE_AFTER_S = 60.0
DONE_STATUSES = ("evaluated", "invalid", "screened")


class RoundBusy(ValueError):
    """The round is being worked on by a live process (a usage error: exit status 2)."""


class Heartbeat:
    """Context manager: keeps the round's heartbeat fresh from a daemon thread."""

    def __init__(self, client, run_id: str, every_s: float = HEARTBEAT_EVERY_S):
        self.client, self.run_id, self.every_s = client, run_id, every_s
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mlr-heartbeat", daemon=True)

    def beat(self) -> None:
        log(self.client, self.run_id, tags={
            HEARTBEAT: f"{time.time():.0f}|{socket.gethostname()}|{os.getpid()}", OWNER: self.owner})

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.beat()
            except Exception:  # a store hiccup: the next beat may succeed
                pass

    def __enter__(self) -> "Heartbeat":
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def heartbeat_age(run) -> tuple[float | None, str]:
    value = run.data.tags.get(HEARTBEAT)
    if not value:
        return None, ""
    stamp, _, who = value.partition("|")
    return time.time() - float(stamp), who.replace("|", " pid ")


def _dead_here(run) -> bool:
    """The heartbeat's process was on this host and no longer exists: no need to wait it out."""
    host, _, pid = run.data.tags.get(HEARTBEAT, "||").split("|", 1)[1].partition("|")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def unfinished_round(client, exp_id: str):
    """The latest round that did not finish, if its process is gone; else RoundBusy or None."""
    rounds = client.search_runs([exp_id], f"tags.`{names.ROLE}` = 'round'",
                                order_by=["attributes.start_time DESC"], max_results=50)
    for run in rounds:
        status = run.info.status
        if status == "FINISHED" or (status == "FAILED" and run.data.tags.get(names.STATUS) != "error"):
            continue
        if status == "FAILED":  # failed with an error: resumable, like a killed round
            return run
        age, who = heartbeat_age(run)
        if status == "RUNNING" and age is not None and age < STALE_AFTER_S and not _dead_here(run):
            raise RoundBusy(f"round {run.info.run_id} is still running ({who}, heartbeat "
                            f"{age:.0f} s ago); it will not be resumed twice")
        return run
    return None


def claim(client, run_id: str, heartbeat: Heartbeat) -> None:
    """Take a dead round over; refuse if another resumer claimed it at the same moment."""
    heartbeat.beat()
    time.sleep(1.0)
    if client.get_run(run_id).data.tags.get(OWNER) != heartbeat.owner:
        raise RoundBusy(f"round {run_id} was just claimed by another process")


def round_runs(client, exp_id: str, round_id: str) -> list:
    return client.search_runs([exp_id], f"tags.`{names.ROUND_ID}` = '{round_id}' and "
                                        f"tags.`{names.ROLE}` = 'hypothesis'", max_results=50000)


def done_and_interrupted(client, exp_id: str, round_id: str, variant: str) -> dict:
    """sha256 -> finished run of this round and variant; RUNNING leftovers are marked interrupted."""
    done = {}
    for run in round_runs(client, exp_id, round_id):
        tags = run.data.tags
        if tags.get(names.VARIANT) != variant:
            continue
        if run.info.status == "RUNNING":
            finish(client, run.info.run_id, failed=True, status_tag="error",
                   reasons=["interrupted: the process evaluating it died; evaluated again on resume"])
        elif tags.get(names.STATUS) in DONE_STATUSES:
            done.setdefault(tags[names.HYPOTHESIS_SHA256], run)
    return done


def evaluation_from_run(run, hypothesis: Hypothesis):
    from .evaluate.evaluator import UNCERTAINTY, Evaluation

    tags, metrics = run.data.tags, run.data.metrics
    ev = Evaluation(hypothesis=hypothesis, run_id=run.info.run_id, variant=tags.get(names.VARIANT, ""),
                    b_wr=metrics.get(names.B_WR), bsota_wr=metrics.get(names.BSOTA_WR),
                    val_b_wr=metrics.get(names.VAL_B_WR), val_bsota_wr=metrics.get(names.VAL_BSOTA_WR),
                    uncertainty={k: metrics[k] for k in UNCERTAINTY if k in metrics})
    if tags.get(names.STATUS) == "invalid":
        ev.reject(tags.get(names.REASONS, "").splitlines(), tags.get(names.STAGE, "dynamic"))
    return ev


def hypotheses_from_records(records: list[dict], kind: str) -> list[Hypothesis]:
    return [Hypothesis(kind, r["source"], r.get("generator", "unknown"), r.get("origin") or {})
            for r in records if r.get("status") == "accepted"]
