"""What a round reports: `discover --json` (CONTRACT.md keys first) and its leaderboard."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RoundSummary:
    """What `discover --json` prints (CONTRACT.md keys first)."""

    round_run_id: str
    round_id: str
    generated: int = 0
    valid: int = 0
    evaluated: int = 0
    full_evaluated: int = 0
    selected: int = 0
    confirmed: int = 0
    transfers: int = 0
    duplicates: int = 0
    semantic_duplicates: int = 0
    rediscoveries: int = 0
    generation_failures: int = 0
    best: dict | None = None
    stop_reason: str | None = None
    cost_full_equivalents: float = 0.0
    instrument: dict | None = None  # what is known of the suite's reliability (suite_check.known)
    leaderboard: list[dict] = field(default_factory=list, repr=False)
    rejections: Counter = field(default_factory=Counter, repr=False)  # reason class -> hypotheses

    def reject(self, reasons: list[str]) -> None:
        """Count one rejected hypothesis (or failed proposal) under its first reason's class."""
        self.rejections[reason_class(reasons[0] if reasons else "")] += 1

    def to_dict(self) -> dict:
        return {"round_run_id": self.round_run_id, "generated": self.generated, "valid": self.valid,
                "evaluated": self.evaluated, "best": self.best, "round_id": self.round_id,
                "full_evaluated": self.full_evaluated, "duplicates": self.duplicates,
                "semantic_duplicates": self.semantic_duplicates,
                "rediscoveries": self.rediscoveries,
                "selected": self.selected, "confirmed": self.confirmed, "transfers": self.transfers,
                "generation_failures": self.generation_failures, "stop_reason": self.stop_reason,
                "cost_full_equivalents": self.cost_full_equivalents, "instrument": self.instrument}


def reason_class(reason: str) -> str:
    """A rejection reason without its particulars (numbers, names in quotes), so like groups like."""
    first = reason.strip().splitlines()[0] if reason.strip() else "no reason recorded"
    first = re.sub(r"'[^']*'|\"[^\"]*\"", "…", first)
    return re.sub(r"\d+(\.\d+)?", "N", first)[:90]
