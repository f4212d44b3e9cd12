"""Frozen configuration: defaults that run offline, overridable from a TOML file and the CLI.

A TOML file mirrors the dataclasses, one table each::

    [model]
    hidden = [64, 64]
    [suite]
    datasets = ["iris", "moons"]
    [sandbox]
    memory_mb = 4096
    [kinds.activation]
    baselines = ["relu"]
    sota = ["gelu", "silu"]
"""
from __future__ import annotations

import dataclasses
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# the sections and errors live in their own modules; everything is importable from here
from .checks import FieldError, above, at_least, between, checked, one_of, table_label
from .errors import ConfigError, UsageError  # noqa: F401
from .llm import LLMConfig, LLMModelConfig  # noqa: F401
from .legacy import as_recorded
from .evaluation import (MODEL_FAMILIES, CompareConfig, ConfirmConfig, ModelConfig,  # noqa: F401
                         SuiteConfig, TaskConfig)


@dataclass(frozen=True)
@checked("sandbox", probe_timeout_s=above(0), train_timeout_s=above(0), hypothesis_budget_s=above(0),
         memory_mb=at_least(1), output_kb=at_least(1), workers=at_least(0))
class SandboxConfig:
    """Bounds for every process that runs hypothesis code.

    Attributes:
        backend: "auto" (the first that works here of bwrap, namespace, docker, subprocess), or
            one of those names.
        probe_timeout_s: wall-clock limit of the validation probes.
        train_timeout_s: wall-clock limit of one training job (a backstop; see hypothesis_budget_s).
        hypothesis_budget_s: seconds one model's hypothesis code may run within a training job; past
            it (or on an exception) only that hypothesis fails and the rest of the batch trains on.
        memory_mb: address-space limit of the sandboxed process.
        output_kb: cap on what the process may print.
        env_allow: names of environment variables passed through (everything else is dropped).
        workers: sandboxed training processes one evaluation call may run side by side, each on
            its own share of the hypotheses (one CPU each); 0 = as many as this process may use
            CPUs, at most 8 (each holds up to memory_mb). A call too small to pay for a second process uses one (see evaluate.evaluator).
    """

    backend: str = "auto"
    probe_timeout_s: float = 20.0
    train_timeout_s: float = 1800.0
    hypothesis_budget_s: float = 120.0
    memory_mb: int = 6144
    output_kb: int = 256
    env_allow: tuple[str, ...] = ()
    workers: int = 0


@dataclass(frozen=True)
@checked("kinds")
class KindConfig:
    """Which built-in components a kind is compared with (names from the kind's module).

    Attributes:
        baselines: the B set of B-WR.
        sota: the state-of-the-art set added for BSOTA-WR.
    """

    baselines: tuple[str, ...]
    sota: tuple[str, ...]


@dataclass(frozen=True)
@checked("discover", n=at_least(1), top_k=at_least(0), seeds=at_least(1),
         generator=one_of("symbolic", "llm"), parents=at_least(0), max_attempts_factor=at_least(1),
         parents_from=one_of("archive", "top"),
         screen=one_of("auto", "reward", "one-pass"), explore=between(0, 1), mmr_lambda=between(0, 1),
         dedup_tolerance=at_least(0), eta=at_least(1), waves=at_least(1))
class DiscoverConfig:
    """A discovery round's defaults (the CLI's --n, --top-k, --seeds, --generator override them).

    Attributes:
        n: new hypotheses to generate (duplicates of anything in the experiment do not count).
        top_k: how many of them, best first by one-pass validation B-WR, get the full-training
            evaluation (the top rung of successive halving, see halving.py).
        seeds: training seeds per evaluation.
        generator: "symbolic" (offline) or "llm".
        parents: how many of the best known hypotheses a generator is shown.
        parents_from: "top" (the best by screen_score) or "archive" (the elites of the behaviour
            archive, generate/archive.py: the best of each behaviour cell, against reward
            collapse). "top" stays the default: bench/archive.py did not show the archive better
            (docs/benchmarks.md).
        max_attempts_factor: a round stops asking after n * this many proposals (a generator that
            repeats itself cannot loop forever).
        screen: "auto" (the reward model's champion once one exists, else one-pass B-WR), "reward"
            (require a champion) or "one-pass".
        explore: share of the reward-screened top-k drawn at random (exploration).
        mmr_lambda: weight of the predicted score against dissimilarity in the selection (1: score only).
        dedup: record a proposal that behaves like an earlier hypothesis (a semantic duplicate) or
            like one of the kind's references (a rediscovery) without training it; false lets
            them through (the null experiment's ReLU in disguise needs that).
        dedup_tolerance: how close two behavioural fingerprints must be, relative to their scale.
        eta: successive halving's η: a reward-screened round trains eta * top_k proposals one-pass
            and the best 1/eta of those (its top_k) in full; 1 trains the reward model's top_k in
            full directly. Without a champion every valid proposal is trained one-pass.
        waves: the reward-screened one-pass rung in this many waves; before each wave after the
            first, the champion's ensemble is refitted in memory on what the round has evaluated
            so far and picks the next wave (halving.next_wave). 1: one decision, no refit.
    """

    n: int = 32
    top_k: int = 4
    seeds: int = 3
    generator: str = "symbolic"
    parents: int = 8
    parents_from: str = "top"
    max_attempts_factor: int = 5
    screen: str = "auto"
    explore: float = 0.25
    mmr_lambda: float = 0.5
    dedup: bool = True
    dedup_tolerance: float = 1e-3
    eta: int = 3
    waves: int = 1


@dataclass(frozen=True)
@checked("audit", acc_tol=at_least(0), loss_rtol=at_least(0), wr_tol=at_least(0), sample=at_least(0))
class AuditConfig:
    """How an audit judges a re-execution (defaults: the batched-versus-alone bound of the tests).

    Attributes:
        acc_tol: absolute tolerance on accuracies.
        loss_rtol: relative tolerance on losses.
        wr_tol: absolute tolerance on win rates and other numbers.
        sample: runs drawn by `audit --sample` and the scheduled `audit-sample` job (plus the best).
    """

    acc_tol: float = 1e-6
    loss_rtol: float = 1e-4
    wr_tol: float = 1e-9
    sample: int = 5


EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
@checked("executor", kind=one_of(*EXECUTORS), batch_size=at_least(1), cpus_per_batch=above(0),
         max_attempts=at_least(1))
class ExecutorConfig:
    """Where a round's evaluations run (`discover --executor`, `--ray-address` override it).

    Attributes:
        kind: "local" (this process and its sandbox) or "ray" (batches as Ray tasks on a cluster).
        address: the Ray cluster's GCS address "HOST:PORT"; empty means $RAY_ADDRESS, else "auto".
        batch_size: hypotheses per Ray task (one batched training job on one node).
        cpus_per_batch: the num_cpus each task asks of Ray.
        sandbox_resource: the custom Ray resource a node declares (`ray start --resources
            '{"mlr_sandbox": N}'`) when it can sandbox hypothesis code; each task asks one unit.
        max_attempts: dispatches of one batch when nodes die under it (Ray's own retries aside).
    """

    kind: str = "local"
    address: str = ""
    batch_size: int = 4
    cpus_per_batch: float = 1.0
    sandbox_resource: str = "mlr_sandbox"
    max_attempts: int = 3


DEFAULT_KINDS = {
    "activation": KindConfig(baselines=("relu",), sota=("gelu", "silu", "mish", "elu")),
    "preprocessing": KindConfig(baselines=("none", "standardize"),
                                sota=("minmax", "robust", "quantile")),
    "regularizer": KindConfig(baselines=("none", "l2"), sota=("l1", "elastic_net", "orthogonal")),
}


@dataclass(frozen=True)
@checked("config")
class Config:
    """Everything a command needs besides its own arguments.

    Attributes:
        experiment_prefix: hypothesis and baseline runs of kind K live in experiment prefix + K.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    suite: SuiteConfig = field(default_factory=SuiteConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    kinds: dict[str, KindConfig] = field(default_factory=lambda: dict(DEFAULT_KINDS))
    discover: DiscoverConfig = field(default_factory=DiscoverConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    experiment_prefix: str = "mlr-"

    def experiment_name(self, kind: str) -> str:
        return f"{self.experiment_prefix}{kind}"

    def baselines_experiment_name(self, kind: str) -> str:
        """Baseline runs are a cache, kept out of the research runs' table."""
        return f"{self.experiment_prefix}{kind}-baselines"

    def reward_experiment_name(self, kind: str) -> str:
        """The reward model's training runs, kept out of the hypothesis runs' table like the
        baselines."""
        return f"{self.experiment_prefix}{kind}-reward"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, table, where: str):
    """The section `cls` from its TOML/JSON table; every value is checked on construction (see
    checks.py) and a bad one named with the table it came from."""
    label = table_label(where)
    if not isinstance(table, dict):
        raise ConfigError(f"{label} must be a table, got {type(table).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(table) - set(names)
    if unknown:
        raise ConfigError(f"unknown key(s) in {label}: {', '.join(sorted(unknown))}")
    missing = [n for n, f in names.items() if n not in table and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{label}: missing key(s) {', '.join(missing)}")
    try:
        return cls(**table)
    except FieldError as exc:
        raise exc.at(where) from None


def _tasks(tables) -> tuple[TaskConfig, ...]:
    if not isinstance(tables, (list, tuple)) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("suite.tasks must be a list of tables ([[suite.tasks]])")
    return tuple(_build(TaskConfig, t, f"[[suite.tasks]] #{i}") for i, t in enumerate(tables, 1))


def _models(tables) -> tuple[LLMModelConfig, ...]:
    if not isinstance(tables, (list, tuple)) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("llm.models must be a list of tables ([[llm.models]])")
    models = tuple(_build(LLMModelConfig, t, f"[[llm.models]] #{i}") for i, t in enumerate(tables, 1))
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"[[llm.models]]: two models share a name ({', '.join(labels)}): set `name`")
    return models


def config_from_dict(data: dict) -> Config:
    """The Config of a TOML file's or a recorded config.json's tables: unknown keys and bad values
    are ConfigErrors naming the table and key."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config is a table of tables, got {type(data).__name__}")
    data = dict(data)
    sections = {"model": ModelConfig, "suite": SuiteConfig, "compare": CompareConfig,
                "sandbox": SandboxConfig, "discover": DiscoverConfig, "llm": LLMConfig,
                "audit": AuditConfig,
                "confirm": ConfirmConfig, "executor": ExecutorConfig}
    values = {}
    if isinstance(data.get("suite"), dict) and "tasks" in data["suite"]:
        data["suite"] = {**data["suite"], "tasks": _tasks(data["suite"]["tasks"])}
    if isinstance(data.get("llm"), dict) and "models" in data["llm"]:
        data["llm"] = {**data["llm"], "models": _models(data["llm"]["models"])}
    if isinstance(data.get("confirm"), dict) and data["confirm"].get("holdout_tasks") is not None:
        data["confirm"] = {**data["confirm"], "holdout_tasks": _tasks(data["confirm"]["holdout_tasks"])}
    for name, cls in sections.items():
        if name in data:
            values[name] = _build(cls, data.pop(name), name)
    if "kinds" in data:
        kinds, tables = dict(DEFAULT_KINDS), data.pop("kinds")
        if not isinstance(tables, dict):
            raise ConfigError(f"[kinds] must be a table, got {type(tables).__name__}")
        for kind, table in tables.items():
            if kind not in DEFAULT_KINDS:
                raise ConfigError(f"unknown kind in [kinds]: {kind!r}")
            if not isinstance(table, dict):
                raise ConfigError(f"[kinds.{kind}] must be a table, got {type(table).__name__}")
            merged = {**dataclasses.asdict(DEFAULT_KINDS[kind]), **table}
            kinds[kind] = _build(KindConfig, merged, f"kinds.{kind}")
        values["kinds"] = kinds
    if "experiment_prefix" in data:
        values["experiment_prefix"] = data.pop("experiment_prefix")
    if data:
        raise ConfigError(f"unknown top-level key(s): {', '.join(sorted(data))}")
    try:
        return Config(**values)
    except FieldError as exc:  # a top-level key: experiment_prefix
        raise ConfigError(f"{exc.key}: {exc.problem}") from None


def read_toml(path: str | Path, what: str = "config file") -> dict:
    """A TOML file's table, or a ConfigError saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    _not_world_writable(path, what)
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def _not_world_writable(path: Path, what: str) -> None:
    """A config decides what runs and which files are read: one that any user may change is no
    one's (a scheduled job would run another user's choices)."""
    mode = path.stat().st_mode
    if mode & stat.S_IWOTH:
        raise ConfigError(f"{what} {path} is writable by every user (mode {stat.S_IMODE(mode):04o}); "
                          f"it decides what runs and what is read: chmod o-w {path}")


def load_config(path: str | Path | None = None) -> Config:
    """The defaults, or the defaults overridden by the file at `path`: TOML, or the JSON of the
    effective config that every run records as `config.json`."""
    if not path:
        return Config()
    if str(path).endswith(".json"):
        import json

        try:
            _not_world_writable(Path(path), "config file")
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid JSON: {exc}") from None
        reader = recorded_config
    else:
        data = _files_from(read_toml(path), Path(path).resolve().parent)
        reader = config_from_dict
    try:
        return reader(data)
    except ConfigError as exc:  # one line: the file, the table, the key and what is wrong
        raise ConfigError(f"{path}: {exc}") from None


def _files_from(data: dict, folder: Path) -> dict:
    """csv:/parquet: task paths made absolute from the TOML file's folder, so that the recorded
    config.json finds the same file from anywhere (an audit's re-run)."""
    tables = []
    for section, key in (("suite", "tasks"), ("confirm", "holdout_tasks")):
        table = data.get(section)
        found = table.get(key) if isinstance(table, dict) else None
        tables += found if isinstance(found, list) else []
    for t in tables:
        fmt, _, rel = str(t.get("dataset", "") if isinstance(t, dict) else "").partition(":")
        if fmt in ("csv", "parquet") and rel and not Path(rel).is_absolute():
            t["dataset"] = f"{fmt}:{(folder / rel).resolve()}"
    return data


def for_discovery(config: Config, generator: str | None = None, llm: dict | None = None) -> Config:
    """The config with a round's own choices: its generator and LLM settings (None: unchanged)."""
    if generator:
        config = with_overrides(config, discover={"generator": generator})
    if llm:
        config = dataclasses.replace(config, llm=dataclasses.replace(
            config.llm, **{k: v for k, v in llm.items() if v is not None}))
    return config


def for_kind(config: Config, kind: str) -> Config:
    """The config a kind is evaluated under: its suite as `SuiteConfig.for_kind` gives it, its
    one-pass learning rate as `ModelConfig.for_kind` resolves it."""
    suite, model = config.suite.for_kind(kind), config.model.for_kind(kind)
    if suite is config.suite and model is config.model:
        return config
    return dataclasses.replace(config, suite=suite, model=model)


def recorded_config(data: dict) -> Config:
    """The Config of a recorded effective config (a run's `config.json`), read as it ran
    (`legacy.as_recorded`: one without `one_pass_lr` trained one-pass at its `lr`)."""
    return config_from_dict(as_recorded(data))


def with_overrides(config: Config, **sections) -> Config:
    """A copy with some fields of some sections replaced, e.g. with_overrides(c, suite={"datasets": ...})."""
    changes = {name: dataclasses.replace(getattr(config, name), **fields)
               for name, fields in sections.items() if fields}
    return dataclasses.replace(config, **changes)
