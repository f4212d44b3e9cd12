"""Each CLI verb as a plain function, callable from Python and tests. The CLI only parses and prints."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .config import Config, load_config, with_overrides
from .hypothesis import Hypothesis
from .kinds import get_kind


def _config(config_path: str | None, datasets: list[str] | None = None) -> Config:
    config = load_config(config_path)
    if datasets:
        config = with_overrides(config, suite={"datasets": tuple(datasets)})
    return config


def validate_file(path: str | Path, kind: str, config_path: str | None = None):
    """Static and sandboxed dynamic checks -> ValidationResult."""
    from .validate import validate

    config = _config(config_path)
    return validate(Hypothesis.from_file(path, kind), config=config.sandbox)


def evaluate_file(path: str | Path, kind: str, variant: str = "one-pass", seeds: int = 3,
                  tracking_uri: str | None = None, config_path: str | None = None,
                  datasets: list[str] | None = None,
                  progress: Callable[[str], None] = lambda _: None):
    """Validate then evaluate one file into one MLflow run -> Evaluation.

    Inside an MLflow Project run (MLFLOW_RUN_ID set by `mlflow run`), that run is used.
    """
    from .evaluate.datasets import load_suite
    from .evaluate.evaluator import Evaluator
    from .tracking import connect

    get_kind(kind)
    config = _config(config_path, datasets)
    hypothesis = Hypothesis.from_file(path, kind)
    suite = load_suite(config.suite)  # an unknown dataset is a usage error before anything is written
    evaluator = Evaluator(connect(tracking_uri), config, progress, suite=suite)
    config_arg = str(Path(config_path).resolve()) if config_path else ""
    [evaluation] = evaluator.evaluate([hypothesis], variant, seeds,
                                      run_id=os.environ.get("MLFLOW_RUN_ID") or None,
                                      config_path=config_arg)
    return evaluation


def discover(kind: str = "activation", generator: str | None = None, n: int | None = None,
             top_k: int | None = None, seeds: int | None = None, seed: int | None = None,
             tracking_uri: str | None = None, config_path: str | None = None,
             llm: dict | None = None, progress: Callable[[str], None] = lambda _: None,
             resume: bool = False):
    """One discovery round -> RoundSummary (None when `resume` finds nothing to finish).
    Unset arguments come from the config's [discover]."""
    import dataclasses

    from .rounds import Round
    from .tracking import connect

    get_kind(kind)
    config = _config(config_path)
    if generator:
        config = with_overrides(config, discover={"generator": generator})
    if llm:
        config = dataclasses.replace(config, llm=dataclasses.replace(
            config.llm, **{k: v for k, v in llm.items() if v is not None}))
    d = config.discover
    round_ = Round(connect(tracking_uri), config, kind, progress=progress)
    if resume:
        return round_.resume()
    return round_.run(n if n is not None else d.n, top_k if top_k is not None else d.top_k,
                      seeds if seeds is not None else d.seeds, seed)


def reward(action: str, kind: str, tracking_uri: str | None = None, config_path: str | None = None,
           encoder: str | None = None, features: str | None = None,
           progress: Callable[[str], None] = lambda _: None) -> dict:
    """`reward train|evaluate|promote` -> a JSON-able dict."""
    from .reward import registry
    from .reward.embed import DEFAULT_ENCODER
    from .tracking import connect

    get_kind(kind)
    config = _config(config_path)
    client = connect(tracking_uri)
    if action == "train":
        result = registry.train(client, config, kind, encoder or DEFAULT_ENCODER, progress=progress,
                                features=registry.parse_features(features))
        return {"run_id": result.run_id, "version": result.version, "algorithm": result.algorithm,
                "alias": "challenger", "model": registry.model_name(kind),
                "holdout_rounds": result.holdout_rounds, **result.held_out["holdout"]}
    if action == "evaluate":
        return registry.evaluate_features(client, config, kind, encoder or DEFAULT_ENCODER,
                                          registry.parse_features(features))
    if action == "promote":
        return registry.promote(client, config, kind)
    raise ValueError(f"unknown reward action {action!r} (train, evaluate or promote)")


def scheduler(action: str, schedule_path: str = "jobs/schedule.toml", job: str | None = None,
              tracking_uri: str | None = None, config_path: str | None = None,
              progress: Callable[[str], None] = lambda _: None) -> dict:
    """`scheduler start|status|run-now`."""
    from .scheduling import scheduler as sched
    from .scheduling.schedule import load_schedule
    from .tracking import connect, default_tracking_uri

    schedule = load_schedule(schedule_path)
    uri = tracking_uri or default_tracking_uri()
    connect(uri)  # fail fast on an unreachable tracking store
    if action == "start":
        sched.start(schedule, uri, config_path, progress)
        return {"stopped": True}
    if action == "status":
        return sched.status(schedule, uri)
    if action == "run-now":
        if not job:
            raise ValueError("run-now needs a JOB id")
        return sched.run_now(schedule, job, uri, config_path)
    raise ValueError(f"unknown scheduler action {action!r}")


def dashboard(out_dir: str = "mlr-dashboard", tracking_uri: str | None = None,
              ui_url: str | None = None) -> dict:
    """`dashboard`: the store's HTML dashboard -> {"path", "hypotheses", "rounds", "problems"}.
    An unreachable store is a TrackingError; a server that needs a login gets a page saying so."""
    from mlflow import MlflowClient

    from . import dashboard as board
    from .tracking import TrackingError, connect, default_tracking_uri
    from .tracking.dashboard_queries import needs_login

    uri = tracking_uri or default_tracking_uri()
    try:
        client = connect(uri)
    except TrackingError as exc:
        if not needs_login(exc):
            raise
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return board.write(client, out_dir, ui_url)
