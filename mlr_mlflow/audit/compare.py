"""Compare a run with its re-execution: every number, the record's integrity, the environment.

Pure functions over plain records (`RunRecord`), so the rules read in one place:
- `metric`: per dataset and seed every number of `results.json` (`*_acc` within `acc_tol`,
  `*_loss` within a relative `loss_rtol`, anything else within 1e-9), the run's logged metrics
  (`b_wr`, `bsota_wr`, `<dataset>.<metric>`) likewise; out of tolerance means not reproduced.
- `tamper`: the record contradicts itself (the source's hash is not the recorded hash, the config
  artifact is not the logged parameters); it is never reproduced.
- `config`, `dataset`, `environment`: what differs between the two executions (library versions,
  source revision, machine, sandbox backend, dataset digests); with numbers within tolerance the
  verdict is `reproduced-with-drift`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..tracking import names

REPRODUCED, DRIFT, NOT_REPRODUCED = "reproduced", "reproduced-with-drift", "not-reproduced"
FATAL = ("metric", "tamper")


@dataclass
class RunRecord:
    """What an audit reads of one run."""

    run_id: str
    tags: dict
    params: dict
    metrics: dict
    results: dict  # results.json: dataset -> seed -> {metric: value}
    config: dict | None  # config.json
    environment: dict | None  # environment.json
    datasets: dict  # logged inputs: dataset name -> digest
    source: str = ""


@dataclass(frozen=True)
class Tolerances:
    acc_tol: float = 1e-6  # batched against alone, tests/test_model.py
    loss_rtol: float = 1e-4
    wr_tol: float = 1e-9


@dataclass
class Comparison:
    differences: list[dict] = field(default_factory=list)
    max_abs_diff: float = 0.0
    compared: int = 0

    def add(self, what: str, key: str, original, rerun, within: bool, diff: float | None = None):
        self.differences.append({"what": what, "key": key, "original": original, "rerun": rerun,
                                 "abs_diff": diff, "within_tolerance": within})

    @property
    def verdict(self) -> str:
        if any(d["what"] in FATAL and not d["within_tolerance"] for d in self.differences):
            return NOT_REPRODUCED
        return DRIFT if self.differences else REPRODUCED


def _number(comparison: Comparison, key: str, a, b, tol: Tolerances) -> None:
    comparison.compared += 1
    if a is None or b is None or not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        if a != b:
            comparison.add("metric", key, a, b, False)
        return
    if math.isnan(a) and math.isnan(b):
        return
    diff = abs(a - b)
    if math.isfinite(diff):
        comparison.max_abs_diff = max(comparison.max_abs_diff, diff)
    else:
        comparison.max_abs_diff = math.inf
    name = key.rsplit(".", 1)[-1]
    if name.endswith("_loss"):
        within = diff <= tol.loss_rtol * max(abs(a), abs(b), 1e-12)
    elif name.endswith("_acc"):
        within = diff <= tol.acc_tol
    else:
        within = diff <= tol.wr_tol
    if diff > 0:
        comparison.add("metric", key, a, b, within, diff)


def _flat(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def _config_view(config: dict | None) -> dict:
    """What of a config can change numbers: everything but how code is sandboxed. A config recorded
    before a key existed is read with that key's default filled in (a `config.json` without
    `[suite] preset` ran exactly its `datasets`; one without `[model] one_pass_lr` trained one-pass at
    its `lr`), so a newer field is not drift by itself."""
    from ..config import ConfigError, recorded_config

    try:
        config = recorded_config(dict(config or {})).to_dict()
    except (ConfigError, TypeError, ValueError, AttributeError):
        config = dict(config or {})  # not a config this version reads: compare it as recorded
    return {k: v for k, v in config.items() if k != "sandbox"}


def integrity(original: RunRecord, expected_sha: str | None, comparison: Comparison) -> None:
    """The record must agree with itself: source against its hash, config against the params."""
    if expected_sha is not None and original.tags.get(names.HYPOTHESIS_SHA256) != expected_sha:
        comparison.add("tamper", names.HYPOTHESIS_ARTIFACT, original.tags.get(names.HYPOTHESIS_SHA256),
                       expected_sha, False)
    model = (original.config or {}).get("model", {})
    for key, value in original.params.items():
        if key.startswith("model.") and key[6:] in model:
            recorded = model[key[6:]]
            recorded = tuple(recorded) if isinstance(recorded, list) else recorded
            if str(recorded) != value:
                comparison.add("tamper", f"config.json {key}", value, str(recorded), False)


def compare(original: RunRecord, rerun: RunRecord, tol: Tolerances, expected_sha: str | None) -> Comparison:
    comparison = Comparison()
    integrity(original, expected_sha, comparison)
    for ds in sorted(set(original.results) | set(rerun.results)):
        a_seeds, b_seeds = original.results.get(ds, {}), rerun.results.get(ds, {})
        for seed in sorted(set(a_seeds) | set(b_seeds)):
            a, b = a_seeds.get(seed), b_seeds.get(seed)
            if a is None or b is None:
                comparison.add("metric", f"{ds}.seed{seed}", "present" if a else None,
                               "present" if b else None, False)
                continue
            for name in sorted(set(a) | set(b)):
                _number(comparison, f"{ds}.seed{seed}.{name}", a.get(name), b.get(name), tol)
    for key in sorted(original.metrics):
        if key in rerun.metrics or not original.results:
            _number(comparison, key, original.metrics[key], rerun.metrics.get(key), tol)
    a_cfg, b_cfg = _flat(_config_view(original.config)), _flat(_config_view(rerun.config))
    for key in sorted(set(a_cfg) | set(b_cfg)):
        if a_cfg.get(key) != b_cfg.get(key):
            comparison.add("config", key, a_cfg.get(key), b_cfg.get(key), True)
    for name in sorted(set(original.datasets) | set(rerun.datasets)):
        if original.datasets.get(name) != rerun.datasets.get(name):
            comparison.add("dataset", name, original.datasets.get(name), rerun.datasets.get(name), True)
    a_env, b_env = _flat(original.environment or {}), _flat(rerun.environment or {})
    if original.environment is None and rerun.environment is not None:  # a run from before it was recorded
        comparison.add("environment", names.ENVIRONMENT_ARTIFACT, None, "recorded", True)
    else:
        for key in sorted(set(a_env) | set(b_env)):
            if a_env.get(key) != b_env.get(key):
                comparison.add("environment", key, a_env.get(key), b_env.get(key), True)
    return comparison
