"""Behaviour measured one row at a time, each within its own limits, so that no row's score depends
on time or on the other rows of a request.

Each source is one sandbox call of its own (on a warm server of the process's pool, kept between
requests: a fork per row), with its own time limit: a row that runs out of time, in Python (the tick) or in one long call in C (the
worker server kills it, `SandboxOvertime`), or after the request's own time budget ran out, is
*unmeasured*: its features are not guessed (no NaN stands in for them in a prediction) and its score
is NaN with the reason. A row whose code fails is measured: failing is what it does, every time.
The sandbox failing is not a hypothesis failing: when a row breaks its worker, the kind's built-in
default is measured as a canary; if that fails too, `BehaviourError` is raised (an all-NaN feature
matrix is never returned silently).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

CALL_SLACK_S = 10.0  # the call's own wall clock past the row's limit: a fork, imports, the answer


class BehaviourError(RuntimeError):
    """The sandbox could not measure behaviour at all (it failed for every hypothesis)."""


@dataclass(frozen=True)
class ScoringLimits:
    """How long and how much one scoring may measure (meta.json `limits` of a reward model).

    Attributes:
        row_s: seconds one row's code may run in one measurement (grid, probes); past it the row
            is unmeasured, never scored from partial features.
        request_s: wall-clock seconds all of one `predict` request's measurements may take (a
            sandbox server's start, trusted imports, not counted); rows not measured by then are
            unmeasured (so one request cannot hold a serving worker).
        max_rows: rows one `predict` request may hold (more: the request is refused, a 400).
        max_code_chars: a longer source is not measured (unmeasured).
    """

    row_s: float = 5.0
    request_s: float = 30.0
    max_rows: int = 256
    max_code_chars: int = 100_000

    @classmethod
    def from_meta(cls, meta: dict) -> "ScoringLimits":
        given = meta.get("limits") if isinstance(meta.get("limits"), dict) else {}
        return cls(**{k: v for k, v in given.items() if k in cls.__dataclass_fields__})


class Budget:
    """A request's measuring time: `request_s` of wall clock from its start, plus the time spent
    waiting for sandbox servers to start (trusted start-up, not measurement). Shared by every
    feature family of one request."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def excuse(self, seconds: float) -> None:
        self.deadline += seconds


def row_reason(limits: ScoringLimits) -> str:
    return f"its behaviour could not be measured within {limits.row_s:g} s (reward limits.row_s)"


def request_reason(limits: ScoringLimits) -> str:
    return (f"not measured: the request's time budget of {limits.request_s:g} s ran out "
            f"(reward limits.request_s)")


def measure_each(target: str, kind: str, sources: list[str | None], limits: ScoringLimits,
                 sandbox_config=None, budget: Budget | None = None, canary: str | None = None):
    """(rows, unmeasured): per source, its answer row (a list, or None when the code failed) and
    None, or None and the reason it was not measured. A source None is skipped (row None).
    `budget` bounds the request's measurements; `canary` is a source that must measure when a row
    broke its worker."""
    from ..config import SandboxConfig
    from ..sandbox import SandboxError, SandboxTimeout, warm_sandbox

    rows: list = [None] * len(sources)
    unmeasured: list[str | None] = [None] * len(sources)
    broke: list[str] = []

    def one(sandbox, source: str, timeout: float):
        payload = {"kind": kind, "sources": [source], "timeout_s": limits.row_s,
                   "reason": row_reason(limits)}
        answer = sandbox.call(target, payload, timeout=timeout, limit="reward limits.row_s")
        status = (answer.get("status") or ["ok"])[0]
        return answer["features"][0], status

    # a warm server of this process's pool: a serving process keeps it between requests
    with warm_sandbox(sandbox_config or SandboxConfig()) as sandbox:
        for i, source in enumerate(sources):
            if source is None:
                continue
            if len(source) > limits.max_code_chars:
                unmeasured[i] = f"not measured: longer than {limits.max_code_chars} characters " \
                                "(reward limits.max_code_chars)"
                continue
            timeout = limits.row_s + CALL_SLACK_S
            if budget is not None:
                left = budget.left()
                if left <= 0:
                    unmeasured[i] = request_reason(limits)
                    continue
                timeout = min(timeout, left)
            try:
                values, status = one(sandbox, source, timeout)
            except SandboxTimeout as exc:  # a posted deadline (SandboxOvertime) or the call's clock
                if budget is not None:
                    budget.excuse(sandbox.warm_up_s)
                late = budget is not None and budget.left() <= 0
                unmeasured[i] = request_reason(limits) if late else row_reason(limits)
                log.info("reward: a row was not measured: %s", exc.reason)
                continue
            except SandboxError as exc:  # it broke its worker: failed, once the canary measures
                broke.append(exc.reason)
                continue
            if budget is not None:  # a server's start is not the request's measuring time
                budget.excuse(sandbox.warm_up_s)
            if status == "overtime":
                unmeasured[i] = row_reason(limits)
            else:
                rows[i] = values
        if broke and canary is not None:
            try:
                one(sandbox, canary, limits.row_s + CALL_SLACK_S)
            except SandboxError as sick:
                raise BehaviourError(f"the sandbox cannot measure {kind} behaviour (it fails on the "
                                     f"built-in default too): {sick.reason}") from None
    if broke:
        log.warning("reward: %d of %d hypotheses broke the sandbox (their features are NaN): %s",
                    len(broke), len(sources), broke[0])
    return rows, unmeasured
