"""What a kind's full-training results are ranked and confirmed by: its verdict statistic.

B-WR and BSOTA-WR are reported for every kind (they are the paper's metrics), and for activations
and preprocessing they are also what a round ranks its leaderboard by and confirms on: their
full-training B-WR repeats between disjoint seed sets (`suite check`). A regularizer's does not: on
the default suite its non-degenerate panel's full-training B-WR repeated at Spearman 0.30 (0.00 with
the loss deciding each win), while the test log loss ratio against every reference repeated at 0.76
(docs/benchmarks.md, "The other kinds"). Most regularizers move a model's loss by a consistent amount
and its count of correct examples by less than a seed does; a win rate keeps only the sign of each
comparison, the ratio keeps its size. So regularizers are ranked and confirmed by `log_loss_ratio`
(> 0: a lower test loss than the references), with its sign-flip test against 0.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    statistic: str  # an Evaluation attribute and metric name
    null: float  # no better than the references
    p_value: str  # the key of its paired test in Evaluation.uncertainty
    label: str  # how a person reads it


B_WR = Verdict("b_wr", 0.5, "b_wr_p_value", "B-WR")
LOG_LOSS_RATIO = Verdict("log_loss_ratio", 0.0, "log_loss_ratio_p_value", "test log-loss ratio")
BY_KIND = {"regularizer": LOG_LOSS_RATIO}


def verdict(kind: str) -> Verdict:
    return BY_KIND.get(kind, B_WR)


def value(ev) -> float | None:
    """An Evaluation's verdict statistic (None where it has none)."""
    return getattr(ev, verdict(ev.hypothesis.kind).statistic, None)
