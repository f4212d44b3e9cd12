"""What is known of the instrument a round runs on: the newest `suite check` of exactly its suite in
the store, else the measurement shipped with the package for the default suite, else nothing.

A round states it beside its results (its description, leaderboard and the dashboard): a B-WR read
without the suite's noise ceiling is a number without its repeatability.
"""
from __future__ import annotations

import json

from .. import resources
from ..config import Config
from ..evaluate.datasets import Dataset
from ..evaluate.verdict import BY_KIND, verdict
from ..stats import spearman_brown
from ..tracking import names
from .record import find_check, suite_digest

SHIPPED = "instrument/{kind}.json"  # package data: {"suite_digest", "full_noise_ceiling", ...}


def _shipped(kind: str) -> dict | None:
    try:
        return json.loads(resources.path(SHIPPED.format(kind=kind)).read_text())
    except (OSError, ValueError, resources.ResourceError):
        return None


EMPTY = {"full_noise_ceiling": None, "cheap_vs_full": None, "relu_like_ceiling": None,
         "verdict_statistic": None, "verdict_noise_ceiling": None, "cheap_vs_verdict": None,
         "seeds_per_set": None}
MEASURED_SEEDS = 3  # the seeds per set of a check that does not say (the shipped ones: --seeds 3)


def at_round_seeds(r: dict, seeds: int | None) -> dict:
    """`r` with what it means for a round that trains on `seeds` seeds: where they differ from the
    seeds per set the check measured, `round_seeds` and `full_noise_ceiling_at_round_seeds` (the
    Spearman-Brown prediction from the measured ceiling); the measured figures stay as they are."""
    out = {**r, "round_seeds": seeds, "full_noise_ceiling_at_round_seeds": None}
    measured, per_set = r.get("full_noise_ceiling"), r.get("seeds_per_set")
    if seeds and per_set and measured is not None and seeds != per_set and 0 < measured < 1:
        out["full_noise_ceiling_at_round_seeds"] = round(spearman_brown(measured, seeds / per_set), 4)
    return out


def reliability(client, config: Config, kind: str, suite: list[Dataset]) -> dict:
    """{"full_noise_ceiling", "cheap_vs_full", "relu_like_ceiling", "verdict_statistic",
    "verdict_noise_ceiling", "cheap_vs_verdict", "source", "run_id"}; the numbers are None (and
    `source` says so) when this suite was never measured. The verdict entries are given where the
    kind is ranked by another statistic than B-WR (evaluate/verdict.py)."""
    digest = suite_digest(suite, config)
    stat = verdict(kind).statistic
    run = find_check(client, config, kind, suite)
    if run is not None:
        m = run.data.metrics
        out = {"full_noise_ceiling": m.get(names.FULL_NOISE_CEILING), "cheap_vs_full": m.get(names.CHEAP_VS_FULL),
               "relu_like_ceiling": m.get(names.ceiling_metric("full", "b_wr", "relu_like")),
               "verdict_noise_ceiling": m.get(names.VERDICT_NOISE_CEILING),
               "cheap_vs_verdict": m.get(names.CHEAP_VS_VERDICT),
               "seeds_per_set": _int(run.data.params.get("seeds")),
               "source": f"suite check run {run.info.run_id}", "run_id": run.info.run_id, "suite_digest": digest}
    else:
        shipped = _shipped(kind)
        if shipped and shipped.get("suite_digest") == digest:
            out = {k: shipped.get(k) for k in EMPTY if k != "verdict_statistic"}
            out["seeds_per_set"] = _int(shipped.get("seeds_per_set")) or MEASURED_SEEDS
            out.update(source=f"the package's measurement of this suite, {shipped.get('measured', '?')}",
                       run_id=None, suite_digest=digest)
        else:
            return {**EMPTY, "source": f"not measured: run `mlr-mlflow suite check --kind {kind}`",
                    "run_id": None, "suite_digest": digest}
    if stat == "b_wr":
        out["verdict_noise_ceiling"] = out["cheap_vs_verdict"] = None
    out["verdict_statistic"] = None if stat == "b_wr" else stat
    return out


def _int(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def stated_reliability(client, config: Config, kind: str, seeds: int | None = None) -> dict:
    """`reliability` of the config's suite for a round on `seeds` seeds to state (at_round_seeds);
    a lookup that fails says so instead of failing the round (its results stand without it)."""
    from ..evaluate.datasets import load_suite

    try:
        return at_round_seeds(reliability(client, config, kind, load_suite(config.suite)), seeds)
    except Exception as exc:  # noqa: BLE001
        return {**EMPTY, "source": f"unknown ({type(exc).__name__}: {exc})", "run_id": None}


def verdict_label(statistic: str) -> str:
    return next((v.label for v in BY_KIND.values() if v.statistic == statistic), statistic)


def sentence(r: dict) -> str:
    """One line for a description: the ceiling and the cheap rung's agreement, and where from."""
    if r["full_noise_ceiling"] is None:
        return f"Instrument: this suite's repeatability is {r['source']}."
    per_set = r.get("seeds_per_set")
    sets = f"disjoint sets of {per_set} seeds" if per_set else "disjoint seed sets"
    parts = [f"full-training B-WR repeats at Spearman {r['full_noise_ceiling']:.2f} between {sets}"]
    if r.get("relu_like_ceiling") is not None:
        parts.append(f"{r['relu_like_ceiling']:.2f} among ReLU-like variants")
    if r.get("full_noise_ceiling_at_round_seeds") is not None:
        n = r["round_seeds"]
        parts.append(f"this round trains on {n} seed{'s' if n != 1 else ''}, where about "
                     f"{r['full_noise_ceiling_at_round_seeds']:.2f} is expected (Spearman-Brown)")
    if r.get("cheap_vs_full") is not None:
        parts.append(f"the one-pass screen agrees with fresh full training at {r['cheap_vs_full']:.2f}")
    if r.get("verdict_statistic") and r.get("verdict_noise_ceiling") is not None:
        parts.append(f"the {verdict_label(r['verdict_statistic'])} this kind is ranked and confirmed by "
                     f"repeats at {r['verdict_noise_ceiling']:.2f}"
                     + (f", and the screen agrees with it at {r['cheap_vs_verdict']:.2f}"
                        if r.get("cheap_vs_verdict") is not None else ""))
    return f"Instrument: {'; '.join(parts)} (from {r['source']}). Differences below that are noise."
