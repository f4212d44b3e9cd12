"""What the reward model learns from a hypothesis that reviewers rejected as a shortcut or invalid.

Its measured win rate is not what it is worth: reviewers judged the number itself wrong. Two
treatments were measured (bench/review_negatives.py, docs/benchmarks.md "Reviewed hypotheses"):
`drop` leaves such hypotheses out of the training data; `negative` keeps them as hard negatives,
their target set to the lowest target of the data. `TREATMENT` is the one that measured better,
and the one `reward train` applies.
"""
from __future__ import annotations

import numpy as np

TREATMENTS = ("drop", "negative")
TREATMENT = "negative"


def apply(data, rejected: set[str], treatment: str = TREATMENT):
    """`data` (ranker.Dataset) with the hypotheses whose sha256 is in `rejected` treated."""
    if treatment not in TREATMENTS:
        raise ValueError(f"unknown treatment {treatment!r} (choose from {', '.join(TREATMENTS)})")
    hit = np.array([sha in rejected for sha in data.shas], dtype=bool)
    if not hit.any():
        return data
    if treatment == "drop":
        return data.subset(~hit)
    treated = data.subset(np.ones(len(data), dtype=bool))  # a copy: the caller's data is untouched
    treated.target = treated.target.copy()
    treated.target[hit] = float(np.min(data.target))
    return treated
