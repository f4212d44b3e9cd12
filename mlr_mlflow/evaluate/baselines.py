"""Reference results (baselines and SOTA), computed once and found again in MLflow.

Each reference component is one run in the kind's experiment, tagged `mlr.role=baseline` and
`mlr.baseline.key`: a hash of everything its numbers depend on (the component sources, dataset
digests, model config, variant, seeds, library versions). A key already present is reused, so no
hypothesis evaluation retrains a baseline. Missing ones are trained in sandboxed processes that
never load a hypothesis (`training.dispatch`), split between `[sandbox] workers` processes side by
side as a hypothesis call is (`shares.py`): a fresh store's first round trains them on every core.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Callable

from ..config import Config
from .. import resources
from ..provenance import environment, library_versions
from ..sandbox import warm_sandbox
from ..kinds import KINDS, get_kind
from ..tracking import create_run, finish, log, log_artifact_files, log_datasets, names
from ..tracking.runs import read_artifact_json
from ..tracking.queries import latest_finished
from ..tracking.references import sources as added_references
from .datasets import Dataset
from .shares import shares
from .training.dispatch import regroup, side_by_side, train_models, trainer_digest
from .winrate import Results

# confirm and transfer: full training
ENTRY_POINTS = {"one-pass": "one_pass", "full": "full", "confirm": "full", "transfer": "full"}
VERSIONED = ("torch", "lightning", "numpy", "scikit-learn", "mlr-mlflow")  # in the baseline key


def project_tags(variant: str, kind: str, seeds: int, datasets: list[str]) -> dict[str, str]:
    """What an audit needs to re-run a run as the packaged MLflow Project `projects/evaluate`: every
    parameter, with the hypothesis and the effective config as paths among the run's artifacts."""
    params = {"hypothesis": names.HYPOTHESIS_ARTIFACT, "kind": kind, "seeds": seeds,
              "config": names.CONFIG_ARTIFACT, "datasets": ",".join(datasets)}
    return {names.PROJECT_URI: resources.PROJECT_URI, names.PROJECT_VERSION: resources.package_version(),
            names.PROJECT_ENTRY_POINT: ENTRY_POINTS[variant],
            names.PROJECT_PARAMS: json.dumps(params, sort_keys=True)}


def environment_json(backend: str) -> str:
    """`environment.json`: the software and machine, the trainer's digest and the sandbox backend."""
    return json.dumps({**environment(), "trainer_digest": trainer_digest(), "sandbox": backend},
                      indent=1, sort_keys=True)


def components_for(kind: str, source: str) -> dict[str, str]:
    """The full component set of a model: `source` for `kind`, each other kind's default."""
    return {k.name: (source if k.name == kind else k.component(k.default)) for k in KINDS.values()}


def references(kind: str, config: Config) -> tuple[dict[str, str], dict[str, str]]:
    """(baselines, sota) as name -> source, per the config."""
    k, sets = get_kind(kind), config.kinds[kind]
    return ({n: k.component(n) for n in sets.baselines}, {n: k.component(n) for n in sets.sota})


def baseline_key(kind: str, source: str, variant: str, seeds: list[int], datasets: list[Dataset],
                 config: Config) -> str:
    material = {
        "components": components_for(kind, source), "variant": variant, "seeds": list(seeds),
        "datasets": {d.name: d.digest for d in datasets},
        "model": dataclasses.asdict(config.model), "versions": library_versions(VERSIONED),
        "trainer": trainer_digest(),
    }
    if config.suite.by_task:  # a task suite's keys also name each task's family (the default's never did)
        material["families"] = {d.name: d.family for d in datasets}
        material["trainer"] = trainer_digest(families=True)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def results_from_json(data: dict) -> Results:
    return {ds: {int(seed): r for seed, r in per_seed.items()} for ds, per_seed in data.items()}


# Cached references this process has read, by (store, experiment, key). A key is a digest of
# everything the numbers depend on, so what it names never changes: a long-lived process (a
# scheduler, a Ray worker) reads each once instead of once per evaluation call.
_READ: dict[tuple[str, str, str], Results] = {}


def _cached(client, experiment_id: str, key: str) -> Results | None:
    memo = (str(client.tracking_uri), experiment_id, key)
    if memo in _READ:
        return _READ[memo]
    run = latest_finished(client, experiment_id, names.BASELINE_KEY, key)
    if run is None:
        return None
    _READ[memo] = results_from_json(read_artifact_json(client, run, names.RESULTS_ARTIFACT))
    return _READ[memo]


def get_references(client, experiment_id: str, kind: str, variant: str, seeds: list[int],
                   datasets: list[Dataset], config: Config,
                   progress: Callable[[str], None] = lambda _: None, sandbox=None) -> tuple[dict, dict]:
    """(baselines, sota) as name -> Results, from MLflow where cached, else trained and logged
    (the first share on `sandbox` when given: a caller's warm server, left open).
    The SOTA set is the config's plus the references added to the experiment (tracking.references):
    each is cached under its own key (the key hashes its source), so adding one trains only it.

    The default suite caches a component over all its datasets in one run (keys as they always
    were); a task suite caches each (component, task) apart, so a new task trains only itself."""
    baselines, sota = references(kind, config)
    research = client.get_experiment_by_name(config.experiment_name(kind))  # where people add them
    if research is not None:
        sota.update(added_references(client, research.experiment_id, kind))
    wanted = {**baselines, **sota}
    found: dict[str, Results] = {n: {} for n in wanted}
    missing: list[tuple[str, list[Dataset], str]] = []  # (component, its unit of datasets, key)
    for unit in ([[d] for d in datasets] if config.suite.by_task else [datasets]):
        for name, src in wanted.items():
            key = baseline_key(kind, src, variant, seeds, unit, config)
            cached = _cached(client, experiment_id, key)
            if cached is None:
                missing.append((name, unit, key))
            else:
                found[name].update(cached)
    if missing:  # one job: the missing components on every dataset that misses any
        components = list(dict.fromkeys(name for name, _, _ in missing))
        units = list({id(d): d for _, unit, _ in missing for d in unit}.values())
        progress(f"training {len(components)} {kind} reference component(s) ({', '.join(components)}) "
                 f"x {len(seeds)} seed(s) on {len(units)} dataset(s), {variant}; cached for next time")
        raw = _train_side_by_side(kind, {n: wanted[n] for n in components}, units, variant, seeds, config,
                                  progress, sandbox)
        if raw["errors"]:
            raise RuntimeError(f"reference components failed: {raw['errors']}")
        for name, unit, key in missing:
            trained = regroup(raw["results"], name, seeds)
            results = {d.name: trained[d.name] for d in unit}
            found[name].update(results)
            _log_reference(client, experiment_id, kind, name, key, variant, seeds, unit, results,
                           wanted[name], config)
    return ({n: found[n] for n in baselines}, {n: found[n] for n in sota})


def _train_side_by_side(kind: str, components: dict[str, str], units: list[Dataset], variant: str,
                        seeds: list[int], config: Config, progress: Callable[[str], None],
                        sandbox=None) -> dict:
    """One training job's answer for `components` x `seeds` on `units`, the work split between
    `[sandbox] workers` sandboxed processes as a hypothesis call's is (a model's numbers do not
    depend on what it is trained beside, so the split changes the wall time only)."""
    names_ = list(components)
    epochs = 1 if variant == "one-pass" else config.model.max_epochs
    parts = shares(len(names_), [len(d.y_train) for d in units], len(seeds), epochs, config.sandbox.workers)

    def job(part, box, _cancelled) -> dict:
        hyps, datasets = part
        models = [{"key": f"{names_[i]}:{s}", "seed": s, "components": components_for(kind, components[names_[i]])}
                  for i in hyps for s in seeds]
        return train_models(models, [units[d] for d in datasets], variant, config, box)

    if len(parts) > 1:
        progress(f"training the references in {len(parts)} sandboxed processes side by side")
    if sandbox is not None:
        answers = side_by_side(parts, job, sandbox, config)
    else:
        with warm_sandbox(config.sandbox) as own:
            answers = side_by_side(parts, job, own, config)
    raw: dict = {"results": {}, "errors": {}}
    for answer in answers:
        raw["errors"].update(answer["errors"])
        for key, by_dataset in answer["results"].items():
            raw["results"].setdefault(key, {}).update(by_dataset)
    raw["results"] = {key: {d.name: value[d.name] for d in units if d.name in value}  # the suite's order
                      for key, value in raw["results"].items()}
    return raw


def _log_reference(client, experiment_id, kind, name, key, variant, seeds, datasets, results, source,
                   config: Config):
    from ..sandbox import resolve_backend

    title = f"baseline {name} {variant}" + (f" · {datasets[0].name}" if config.suite.by_task else "")
    run_id = create_run(client, experiment_id, title, {
        names.ROLE: "baseline", names.KIND: kind, names.BASELINE_COMPONENT: name,
        names.BASELINE_KEY: key, names.VARIANT: variant,
        **project_tags(variant, kind, len(seeds), [ds.name for ds in datasets])})
    try:
        metrics = {}
        for ds, per_seed in results.items():
            for metric in ("test_acc", "test_loss"):
                values = [r[metric] for r in per_seed.values() if r[metric] is not None]
                if values:
                    metrics[names.dataset_metric(ds, metric)] = sum(values) / len(values)
        log(client, run_id, params={"seeds": len(seeds), "variant": variant, "component": name},
            metrics=metrics, tags={})
        log_artifact_files(client, run_id, {
            names.HYPOTHESIS_ARTIFACT: source,
            names.CONFIG_ARTIFACT: json.dumps(config.to_dict(), indent=1, sort_keys=True, default=str),
            names.ENVIRONMENT_ARTIFACT: environment_json(resolve_backend(config.sandbox.backend)),
            names.RESULTS_ARTIFACT: json.dumps(
                {ds: {str(s): r for s, r in ps.items()} for ds, ps in results.items()},
                indent=1, sort_keys=True)})
        log_datasets(client, run_id, datasets)
        finish(client, run_id, status_tag="evaluated")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
