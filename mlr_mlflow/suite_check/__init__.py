"""`mlr-mlflow suite check`: how far the instrument (a suite, its seeds, a win-rate statistic) can
be trusted, measured on a kind's reference panel (`kinds.panels`).

The panel and the kind's references are trained one-pass and full on two disjoint seed sets
(`training`), the reliability numbers computed (`measure`), and the whole recorded as one MLflow
run with a report and a figure (`record`, `report`, `figure`).
"""
from __future__ import annotations

import math
import time
from typing import Callable

from ..config import Config, UsageError
from ..evaluate.datasets import Dataset
from ..evaluate.screen import SCREEN_STATISTIC
from ..kinds.panels import panel
from . import figure, report
from .measure import RUNGS, measure
from .record import find_check, record, suite_digest
from .training import train_rung

__all__ = ["run", "panel_members", "seed_sets", "find_check", "suite_digest"]


def seed_sets(config: Config, per_set: int) -> tuple[list[int], list[int]]:
    """Set A starts at [suite] first_seed, set B follows it: disjoint, `per_set` seeds each."""
    if not isinstance(per_set, int) or isinstance(per_set, bool) or per_set < 2:
        raise UsageError(f"--seeds must be at least 2 (seeds per set: a seed set of {per_set!r} has no "
                         "variance to compare against)")
    first = config.suite.first_seed
    return list(range(first, first + per_set)), list(range(first + per_set, first + 2 * per_set))


def panel_members(kind: str, members: list[str] | None = None) -> list:
    """The kind's panel, or the named part of it (tests and quick checks)."""
    everything = panel(kind)
    if members is None:
        return everything
    known = {m.name: m for m in everything}
    unknown = [n for n in members if n not in known]
    if unknown:
        raise UsageError(f"unknown panel member(s) {', '.join(unknown)} of kind {kind} "
                         f"(known: {', '.join(known)})")
    chosen = [known[n] for n in dict.fromkeys(members)]
    if sum(m.group != "degenerate" for m in chosen) < 2:
        raise UsageError("a suite check needs at least 2 non-degenerate panel members")
    return chosen


def _clean(value):
    """JSON has no NaN or infinity: they become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def run(client, config: Config, kind: str, suite: list[Dataset], per_set: int, members: list,
        progress: Callable[[str], None] = lambda _: None) -> dict:
    """Train, measure and record one suite check -> its JSON-able result (with `run_id`)."""
    seeds_a, seeds_b = seed_sets(config, per_set)
    start = time.monotonic()
    results, refs, errors = {}, {}, {}
    for rung in RUNGS:
        results[rung], refs[rung], failed = train_rung(config, kind, suite, members, seeds_a + seeds_b, rung,
                                                       progress)
        errors.update(failed)
    kept = [m for m in members if m.name not in errors]
    if sum(m.group != "degenerate" for m in kept) < 2:
        raise RuntimeError(f"too few panel members trained to measure anything: {errors}")
    results = {rung: {m.name: results[rung][m.name] for m in kept} for rung in RUNGS}
    out = measure(results, refs, kept, seeds_a, seeds_b, config.compare.loss_tol, SCREEN_STATISTIC)
    out = _clean({**out, "kind": kind, "seeds": {"per_set": per_set, "a": seeds_a, "b": seeds_b},
                  "suite_digest": suite_digest(suite, config), "errors": errors,
                  "tasks_families": {d.name: d.family for d in suite}})
    out["verdicts"] = report.verdicts(out)
    text = report.render(out, kind)
    run_id = record(client, config, kind, suite, out, text, figure.render(out, kind))
    progress(f"suite check: done in {time.monotonic() - start:.0f} s, run {run_id}")
    return out
