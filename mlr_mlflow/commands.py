"""Each CLI verb as a plain function, callable from Python and tests. The CLI only parses and prints."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .config import Config, for_kind, load_config, with_overrides, UsageError
from .hypothesis import Hypothesis
from .kinds import get_kind
from .sandbox import announce_when_used


def _config(config_path: str | None, datasets: list[str] | None = None) -> Config:
    config = load_config(config_path)
    known = {t.name: t for t in config.suite.task_list()} if config.suite.by_task else {}
    # a task suite (configured, or the preset's): --datasets picks its tasks by name; a preset's
    # suite also takes bundled dataset names, trained on the MLP
    if datasets and (config.suite.tasks or all(d in known for d in datasets)):
        unknown = [d for d in datasets if d not in known]
        if unknown:
            raise UsageError(f"unknown task(s) {', '.join(unknown)} (configured: {', '.join(known)})")
        return with_overrides(config, suite={"tasks": tuple(known[d] for d in datasets)})
    if datasets:
        config = with_overrides(config, suite={"datasets": tuple(datasets)})
    return config


def _check_flags(section: str, config: Config, **flags) -> None:
    """Command-line numbers checked as the config's own values are (--top-k -4 is a usage error
    naming the flag); the config the command goes on with is unchanged."""
    from .config import FieldError

    try:
        with_overrides(config, **{section: {k: v for k, v in flags.items() if v is not None}})
    except FieldError as exc:
        raise UsageError(f"--{exc.key.replace('_', '-')}: {exc.problem}") from None


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
    [evaluation] = evaluate_files([path], kind, variant, seeds, tracking_uri, config_path, datasets,
                                  progress)
    return evaluation


def hypothesis_files(paths: list[str | Path]) -> list[Path]:
    """The files to evaluate: each path as given, a directory as its `*.py` entries in name order
    (each is then read only if it is a regular file that lies in the directory: hypothesis.read_source)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(path / name for name in os.listdir(path) if name.endswith(".py")
                            and not name.startswith("."))
            if not inside:
                raise UsageError(f"no *.py hypothesis files in directory {path}")
            found += inside
        else:
            found.append(path)
    return found


def evaluate_files(paths: list[str | Path], kind: str, variant: str = "one-pass", seeds: int = 3,
                   tracking_uri: str | None = None, config_path: str | None = None,
                   datasets: list[str] | None = None,
                   progress: Callable[[str], None] = lambda _: None):
    """Validate then evaluate files (a directory: its `*.py`) in one batch, one MLflow run each
    -> [Evaluation] in file order. Every file is read before anything is written."""
    from .evaluate.datasets import check_suite
    from .tracking import connect

    get_kind(kind)
    config = for_kind(_config(config_path, datasets), kind)
    _check_flags("discover", config, seeds=seeds)
    hypotheses = [Hypothesis.from_file(path, kind) for path in hypothesis_files(paths)]
    suite = check_suite(config.suite, kind)  # a bad dataset or task is a usage error before anything is written
    client = connect(tracking_uri)
    announce_when_used(progress)  # said when a sandbox first starts: nothing is probed before
    from .evaluate.evaluator import Evaluator

    evaluator = Evaluator(client, config, progress, suite=suite)
    adopted = (os.environ.get("MLFLOW_RUN_ID") or None) if len(hypotheses) == 1 else None
    return evaluator.evaluate(hypotheses, variant, seeds, run_id=adopted)


def discover(kind: str = "activation", generator: str | None = None, n: int | None = None,
             top_k: int | None = None, seeds: int | None = None, seed: int | None = None,
             tracking_uri: str | None = None, config_path: str | None = None,
             llm: dict | None = None, progress: Callable[[str], None] = lambda _: None,
             resume: bool = False, executor: str | None = None, ray_address: str | None = None):
    """One discovery round -> RoundSummary (None when `resume` finds nothing to finish).
    Unset arguments come from the config's [discover] (and [executor])."""
    from .config import for_discovery
    from .executors import check_executor, with_executor
    from .round import discover as run_round
    from .tracking import connect

    get_kind(kind)
    config = with_executor(for_discovery(_config(config_path), generator, llm), executor, ray_address)
    _check_flags("discover", config, n=n, top_k=top_k, seeds=seeds)
    check_executor(config)
    if resume:
        from .tracking import sql_read
        from .tracking.store import default_tracking_uri

        if sql_read.unfinished_round(tracking_uri or default_tracking_uri(), config.experiment_name(kind)) is False:
            return None  # nothing to finish, read without importing MLflow (bench/answers.py)
    client = connect(tracking_uri)
    announce_when_used(progress)  # said when a sandbox first starts: nothing is probed before
    return run_round(client, config, kind, n=n, top_k=top_k, seeds=seeds, seed=seed,
                     resume=resume, progress=progress)


def suite_check(kind: str = "activation", seeds: int = 3, tracking_uri: str | None = None,
                config_path: str | None = None, progress: Callable[[str], None] = lambda _: None,
                members: list[str] | None = None, from_run: str | None = None) -> dict:
    """`suite check`: train the kind's reference panel on the configured suite under two disjoint
    seed sets of `seeds` each, measure the instrument, record one MLflow run -> its JSON dict.
    `members` restricts the panel to those names (tests, quick looks); the CLI has no flag for it.
    `from_run` measures again from the per-model results that check kept, training nothing."""
    from . import suite_check as check
    from .evaluate.datasets import check_suite
    from .tracking import connect

    get_kind(kind)
    config = for_kind(_config(config_path), kind)
    check.seed_sets(config, seeds)
    chosen = check.panel_members(kind, members)
    suite = check_suite(config.suite, kind)  # a bad suite is a usage error before anything is written
    client = connect(tracking_uri)
    if from_run is not None:
        return check.remeasure(client, config, kind, suite, from_run)
    announce_when_used(progress)  # said when a sandbox first starts: nothing is probed before
    return check.run(client, config, kind, suite, seeds, chosen, progress)


def reward(action: str, kind: str, tracking_uri: str | None = None, config_path: str | None = None,
           encoder: str | None = None, features: str | None = None,
           progress: Callable[[str], None] = lambda _: None) -> dict:
    """`reward train|evaluate|promote` -> a JSON-able dict."""
    from .reward import registry
    from .reward.features.embed import DEFAULT_ENCODER
    from .tracking import connect

    get_kind(kind)
    config = _config(config_path)
    client = connect(tracking_uri)
    if action == "train":
        result = registry.train(client, config, kind, encoder or DEFAULT_ENCODER, progress=progress,
                                features=registry.parse_features(features))
        return result.to_dict(kind)
    if action == "evaluate":
        return registry.evaluate_features(client, config, kind, encoder or DEFAULT_ENCODER,
                                          registry.parse_features(features))
    if action == "promote":
        return registry.promote(client, config, kind)
    raise UsageError(f"unknown reward action {action!r} (train, evaluate or promote)")


def audit(run_id: str | None = None, round_id: str | None = None, sample: int | None = None,
          env: str = "local", tracking_uri: str | None = None, config_path: str | None = None,
          progress: Callable[[str], None] = lambda _: None) -> dict:
    """`audit RUN_ID | --round ID | --sample N`: one audit's dict, or {"audits": [...]}."""
    from . import audit as audits
    from .tracking import connect

    if sum(x is not None for x in (run_id, round_id, sample)) != 1:
        raise UsageError("audit needs exactly one of RUN_ID, --round ID or --sample N")
    if sample is not None and sample < 0:
        raise UsageError("--sample must be at least 0")
    config = _config(config_path)
    client = connect(tracking_uri)
    if run_id is not None:
        return audits.audit_run(client, config, run_id, env, progress).to_dict()
    if round_id is not None:
        return {"audits": [r.to_dict() for r in audits.audit_round(client, config, round_id, env, progress)]}
    return audits.audit_sample(client, config, sample, env, progress=progress)


SCHEDULE_FILE = "jobs/schedule.toml"


def schedule_path(path: str | None, progress: Callable[[str], None] = lambda _: None) -> str:
    """The schedule to use: `path`, else ./jobs/schedule.toml, else the packaged default."""
    if path:
        return path
    if Path(SCHEDULE_FILE).is_file():
        return SCHEDULE_FILE
    from .resources import default_schedule

    progress(f"no {SCHEDULE_FILE} here: using the packaged default schedule "
             "(`mlr-mlflow scheduler init` writes an editable copy)")
    return str(default_schedule())


def scheduler_init(directory: str | Path = ".") -> dict:
    """`scheduler init`: the packaged default schedule, written where the user is, never over one."""
    from .config import ConfigError
    from .resources import default_schedule

    target = Path(directory) / SCHEDULE_FILE
    if target.exists():
        raise ConfigError(f"{target} exists already; edit it, or remove it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(default_schedule().read_text())
    return {"written": str(target)}


def sandbox_check(backend: str | None = None, connect: list[str] = (), read: list[str] = (),
                  config_path: str | None = None) -> dict:
    """`sandbox check`: the process-layer self-test of a backend (default: the configured one)."""
    import dataclasses

    from .sandbox.check import check_sandbox

    config = _config(config_path).sandbox
    if backend:
        config = dataclasses.replace(config, backend=backend)
    return check_sandbox(config, list(connect), list(read))


def scheduler(action: str, schedule_file: str | None = None, job: str | None = None,
              tracking_uri: str | None = None, config_path: str | None = None,
              progress: Callable[[str], None] = lambda _: None) -> dict:
    """`scheduler init|start|status|run-now`."""
    from sqlalchemy.exc import SQLAlchemyError

    from .scheduling import scheduler as sched
    from .scheduling.schedule import load_schedule
    from .tracking import TrackingError, connect, default_tracking_uri

    if action == "init":
        return scheduler_init()
    _config(config_path)  # the jobs read it later: a bad one is a usage error now, before any write
    schedule = load_schedule(schedule_path(schedule_file, progress))
    uri = tracking_uri or default_tracking_uri()
    connect(uri)  # fail fast on an unreachable tracking store
    try:
        return _scheduler(sched, schedule, action, job, uri, config_path, progress)
    except SQLAlchemyError as exc:  # the job store's database: unreachable, locked, refusing
        raise TrackingError(f"job store {schedule.store_url(uri)!r}: {type(exc).__name__}: "
                            f"{(str(exc).splitlines() or [''])[0]}") from None


def _scheduler(sched, schedule, action, job, uri, config_path, progress) -> dict:
    if action == "start":
        sched.start(schedule, uri, config_path, progress)
        return {"stopped": True}
    if action == "status":
        return sched.status(schedule, uri)
    if action == "run-now":
        if not job:
            raise UsageError("run-now needs a JOB id")
        return sched.run_now(schedule, job, uri, config_path)
    raise UsageError(f"unknown scheduler action {action!r}")


def references_add(run_id: str, tracking_uri: str | None = None) -> dict:
    """`references add RUN_ID`: the entry recorded on the experiment ({"name", "run_id", "sha256",
    "kind", "by", "at"}). A run that is not approved and confirmed is a usage error (exit 2)."""
    import getpass

    from .tracking import connect, default_tracking_uri
    from .tracking.references import ReferenceRefused, add

    client = connect(tracking_uri or default_tracking_uri())
    try:
        return add(client, run_id, by=os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser())
    except ReferenceRefused as exc:
        raise UsageError(str(exc)) from None


def dashboard(out_dir: str = "mlr-dashboard", tracking_uri: str | None = None,
              ui_url: str | None = None, config_path: str | None = None) -> dict:
    """`dashboard`: the store's HTML dashboard -> {"path", "hypotheses", "rounds", "problems"}.
    An unreachable store is a TrackingError; a server that needs a login gets a page saying so.
    It uses no config value, but a --config given is checked, as every verb checks it."""
    from mlflow import MlflowClient

    from . import dashboard as board
    from .tracking import TrackingError, connect, default_tracking_uri
    from .tracking.dashboard_queries import needs_login

    _config(config_path)
    uri = tracking_uri or default_tracking_uri()
    try:
        client = connect(uri)
    except TrackingError as exc:
        if not needs_login(exc):
            raise
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return board.write(client, out_dir, ui_url)


def prompt_show(kind: str = "activation", tracking_uri: str | None = None,
                config_path: str | None = None, llm: dict | None = None,
                context: str | None = None) -> dict:
    """The prompts the next LLM round of `kind` would send first, one per template it alternates
    between, built as the round builds them: the same examples (the experiment's best known
    hypotheses, or the archive's elites), recent rejections' reasons, reviewers' notes, the
    passages chosen from `context`, the same seed, the registry versions the aliases name now.
    Nothing is written but the experiment and the shipped prompts, when they do not exist yet."""
    import dataclasses
    import random

    from .config import for_discovery
    from .generate.context import round_context
    from .generate.llm import LLMGenerator
    from .round.proposals import known_hypotheses
    from .tracking import connect, experiment_id, reviews
    from .tracking.queries import round_runs

    get_kind(kind)
    llm = {**(llm or {}), **({"context": context} if context else {})}
    config = for_kind(for_discovery(_config(config_path), "llm", llm), kind)
    client = connect(tracking_uri)
    exp_id = experiment_id(client, config.experiment_name(kind))
    seed = len(round_runs(client, exp_id))  # as Round.run: the number of rounds before it
    _, known = known_hypotheses(client, exp_id, config.discover.parents)
    ctx, _ = round_context(client, config, exp_id, kind, seed, known, prompts=True)
    ctx = dataclasses.replace(ctx, reviews=tuple(reviews.feedback(client, exp_id)))
    generator = LLMGenerator(config.llm)
    generator.tracking_uri = client.tracking_uri
    rng = random.Random(seed)
    prompts = [{"request": i + 1, "prompt_name": t.name, "prompt_version": t.version,
                "style": t.style, "prompt": generator.prompt(t, ctx, rng)}
               for i, t in enumerate(generator.templates(kind))]
    return {"kind": kind, "seed": seed, "examples_known": len(known), "model": config.llm.model,
            "grammar": generator.grammar_mode(), "prompts": prompts,
            "prompt": prompts[0]["prompt"] if prompts else "",  # the first request's, in full
            "parents": [k.sha256 for k in ctx.known], "feedback": list(ctx.feedback),
            "reviews": list(ctx.reviews),
            "passages": [{"id": p.id, "file": p.file, "score": p.score, "text": p.text}
                         for p in ctx.passages]}
