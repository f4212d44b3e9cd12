"""Behaviour measured one row at a time, each within its own limits, so that no row's score depends
on time or on the other rows of a request: the limits, a request's time budget and the reasons a
row is unmeasured. How rows are measured is `features.harness`: a row that cannot be measured in
time is *unmeasured*: its features are not guessed (no NaN stands in for them in a prediction) and
its score is NaN with the reason. A sandbox that fails on the built-in default too raises
`BehaviourError` (an all-NaN feature matrix is never returned silently).
"""
from __future__ import annotations

import time
from dataclasses import dataclass


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
