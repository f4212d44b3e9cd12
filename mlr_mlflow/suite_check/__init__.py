"""`mlr-mlflow suite check`: how far the instrument (a suite, its seeds, a win-rate statistic) can
be trusted, measured on a kind's reference panel (`kinds.panels`).

The panel and the kind's references are trained one-pass and full on two disjoint seed sets
(`training`), the reliability numbers computed (`measure`), and the whole recorded as one MLflow
run with a report and a figure (`record`, `report`, `figure`).
"""
from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Callable

from ..config import Config, UsageError, with_overrides
from ..evaluate.datasets import Dataset
from ..evaluate.screen import SCREEN_STATISTIC
from ..evaluate.verdict import verdict
from ..evaluate.winrate import METRICS
from ..kinds.panels import panel
from ..tracking import names
from . import figure, report
from .measure import RUNGS, measure
from .record import find_check, record, suite_digest
from .training import train_rung

__all__ = ["run", "remeasure", "kept_results", "panel_members", "seed_sets", "find_check", "suite_digest"]


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
    raw = {"members": [m.name for m in kept], "seeds_a": seeds_a, "seeds_b": seeds_b, "errors": errors,
           "rungs": {rung: {"panel": results[rung], "baselines": refs[rung][0], "sota": refs[rung][1]}
                     for rung in RUNGS}}
    out = _measure_and_record(client, config, kind, suite, kept, raw, errors)
    progress(f"suite check: done in {time.monotonic() - start:.0f} s, run {out['run_id']}")
    return out


def _measure_and_record(client, config: Config, kind: str, suite: list[Dataset], kept: list, raw: dict,
                        errors: dict) -> dict:
    seeds_a, seeds_b = raw["seeds_a"], raw["seeds_b"]
    results = {rung: raw["rungs"][rung]["panel"] for rung in RUNGS}
    refs = {rung: (raw["rungs"][rung]["baselines"], raw["rungs"][rung]["sota"]) for rung in RUNGS}
    out = measure(results, refs, kept, seeds_a, seeds_b, config.compare.loss_tol, SCREEN_STATISTIC,
                  config.compare.metric, verdict(kind).statistic)
    out = _clean({**out, "kind": kind, "seeds": {"per_set": len(seeds_a), "a": seeds_a, "b": seeds_b},
                  "suite_digest": suite_digest(suite, config), "errors": errors,
                  "tasks_families": {d.name: d.family for d in suite}})
    out["verdicts"] = report.verdicts(out)
    text = report.render(out, kind)
    record(client, config, kind, suite, out, text, figure.render(out, kind), raw)
    return out


def _int_seeds(results: dict) -> dict:
    """JSON keys are strings: a Results' seeds back to ints ({task: {seed: result}})."""
    return {task: {int(seed): r for seed, r in by_seed.items()} for task, by_seed in results.items()}


def kept_results(client, run_id: str) -> dict:
    """The per-model results a recorded check kept (`suite_check_results.json`), seeds as ints."""
    with tempfile.TemporaryDirectory(prefix="mlr-suite-check-") as tmp:
        try:
            path = client.download_artifacts(run_id, names.SUITE_CHECK_RESULTS, tmp)
        except Exception:
            raise UsageError(f"run {run_id} kept no per-model results ({names.SUITE_CHECK_RESULTS}: checks "
                             "recorded before they were kept must be trained again)") from None
        try:
            raw = json.loads(Path(path).read_text())
            for rung in RUNGS:
                part = raw["rungs"][rung]
                part["panel"] = {m: _int_seeds(r) for m, r in part["panel"].items()}
                part["baselines"] = [_int_seeds(r) for r in part["baselines"]]
                part["sota"] = [_int_seeds(r) for r in part["sota"]]
            raw["members"] = list(raw["members"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"run {run_id}'s {names.SUITE_CHECK_RESULTS} is not what a suite check "
                             f"writes ({type(exc).__name__}: {exc})") from None
    return raw


def remeasure(client, config: Config, kind: str, suite: list[Dataset], run_id: str) -> dict:
    """Measure again, without training, from the per-model results a recorded check kept
    (`suite_check_results.json`), with today's statistics -> a new run on the same suite."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_run(run_id).data.tags
    except MlflowException:
        raise UsageError(f"no run {run_id!r} in the tracking store") from None
    if tags.get(names.ROLE) != names.SUITE_CHECK_ROLE or tags.get(names.KIND) != kind:
        raise UsageError(f"run {run_id} is not a suite check of kind {kind}")
    # the models' results depend on the suite, not on the win rule they are measured by
    same_suite = {suite_digest(suite, with_overrides(config, compare={"metric": m})) for m in METRICS}
    if tags.get(names.SUITE_DIGEST) not in same_suite:
        raise UsageError(f"run {run_id} measured another suite (digest {tags.get(names.SUITE_DIGEST)}, this "
                         f"config's is {suite_digest(suite, config)}): name the config it measured")
    raw = kept_results(client, run_id)
    kept = panel_members(kind, raw["members"])
    return _measure_and_record(client, config, kind, suite, kept, raw, dict(raw.get("errors") or {}))
