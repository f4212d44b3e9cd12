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
from ..tracking import names
from .record import find_check, suite_digest

SHIPPED = "instrument/{kind}.json"  # package data: {"suite_digest", "full_noise_ceiling", ...}


def _shipped(kind: str) -> dict | None:
    try:
        return json.loads(resources.path(SHIPPED.format(kind=kind)).read_text())
    except (OSError, ValueError, resources.ResourceError):
        return None


def reliability(client, config: Config, kind: str, suite: list[Dataset]) -> dict:
    """{"full_noise_ceiling", "cheap_vs_full", "relu_like_ceiling", "source", "run_id"}; the numbers
    are None (and `source` says so) when this suite was never measured."""
    digest = suite_digest(suite, config, kind)
    run = find_check(client, config, kind, suite)
    if run is not None:
        m = run.data.metrics
        return {"full_noise_ceiling": m.get(names.FULL_NOISE_CEILING), "cheap_vs_full": m.get(names.CHEAP_VS_FULL),
                "relu_like_ceiling": m.get(names.ceiling_metric("full", "b_wr", "relu_like")),
                "source": f"suite check run {run.info.run_id}", "run_id": run.info.run_id, "suite_digest": digest}
    shipped = _shipped(kind)
    if shipped and shipped.get("suite_digest") == digest:
        return {"full_noise_ceiling": shipped.get("full_noise_ceiling"), "cheap_vs_full": shipped.get("cheap_vs_full"),
                "relu_like_ceiling": shipped.get("relu_like_ceiling"),
                "source": f"the package's measurement of this suite, {shipped.get('measured', '?')}",
                "run_id": None, "suite_digest": digest}
    return {"full_noise_ceiling": None, "cheap_vs_full": None, "relu_like_ceiling": None,
            "source": f"not measured: run `mlr-mlflow suite check --kind {kind}`", "run_id": None,
            "suite_digest": digest}


def stated_reliability(client, config: Config, kind: str) -> dict:
    """`reliability` of the config's suite for a round to state; a lookup that fails says so
    instead of failing the round (its results stand without it)."""
    from ..evaluate.datasets import load_suite

    try:
        return reliability(client, config, kind, load_suite(config.suite))
    except Exception as exc:  # noqa: BLE001
        return {"full_noise_ceiling": None, "cheap_vs_full": None, "relu_like_ceiling": None,
                "source": f"unknown ({type(exc).__name__}: {exc})", "run_id": None}


def sentence(r: dict) -> str:
    """One line for a description: the ceiling and the cheap rung's agreement, and where from."""
    if r["full_noise_ceiling"] is None:
        return f"Instrument: this suite's repeatability is {r['source']}."
    parts = [f"full-training B-WR repeats at Spearman {r['full_noise_ceiling']:.2f} between disjoint seed sets"]
    if r.get("relu_like_ceiling") is not None:
        parts.append(f"{r['relu_like_ceiling']:.2f} among ReLU-like variants")
    if r.get("cheap_vs_full") is not None:
        parts.append(f"the one-pass screen agrees with fresh full training at {r['cheap_vs_full']:.2f}")
    return f"Instrument: {'; '.join(parts)} (from {r['source']}). Differences below that are noise."
