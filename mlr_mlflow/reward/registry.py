"""The reward model's life cycle in the MLflow Model Registry: train -> challenger -> champion.

`train` fits on every evaluated one-pass run of the kind except the newest round(s) (the holdout),
logs a training run (`mlr.role=reward`) with held-out correlations, the pyfunc (with its bootstrap
ensemble, `ensemble.py`) and its signature, and registers it as `mlr-reward-<kind>` with the alias
`challenger`. Targets, the algorithm's choice and promotion use validation win rates only
(`ranker.selection_target`); the test B-WR is logged beside them as a report (`holdout.test_*`).

Promotion rule: the challenger becomes `champion` only if its Spearman correlation with the
validation target on an *unbiased sample* of the challenger's holdout rounds (which neither model
was trained on) is higher than the champion's on the same hypotheses. The unbiased sample is the
hypotheses no reward model chose: all of a round evaluated without reward screening, and only the
random exploration picks of a reward-screened round (the champion's own picks would favour it).
Fewer than MIN_PROMOTION_SAMPLE such hypotheses: the promotion is refused, saying so. The first
challenger becomes champion. Both versions get the comparison (and the sample used) as tags.
Aliases only, never the deprecated stages.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from ..tracking import create_run, experiment_id, finish, log, names
from ..tracking.fluent import fluent_store
from ..tracking.reviews import demoted
from . import reviewed
from .features.embed import DEFAULT_ENCODER, Encoder
from .ensemble import fit_ensemble
from .ranker import (TARGET, Features, RewardDataError, check_enough, correlations,
                     load_dataset)
from .measure import ranking_report
from .split import chosen, report, split
from ..tracking.queries import round_numbers
from .rows import ScoringLimits
from ..config import UsageError

HOLDOUT_ROUNDS = 1
MIN_PROMOTION_SAMPLE = 8  # unbiased held-out hypotheses below which a Spearman decides nothing


def model_name(kind: str) -> str:
    return f"{names.REWARD_MODEL_PREFIX}{kind}"


@dataclasses.dataclass
class TrainResult:
    run_id: str
    version: str
    algorithm: str
    held_out: dict
    holdout_rounds: list[str]
    report: dict  # split.report: the same split, reported the same way as `reward evaluate`

    def to_dict(self, kind: str) -> dict:
        return {"run_id": self.run_id, "version": self.version, "algorithm": self.algorithm,
                "alias": "challenger", "model": model_name(kind),
                "holdout_rounds": self.report["split"]["holdout_rounds"],
                "holdout_round_ids": self.holdout_rounds, **self.held_out["holdout"], **self.report}


FEATURES = ("structural", "grid", "embedding", "probes")
# see docs/benchmarks.md: embeddings did not help ranking; the transfer probes did (by round, by
# source and the discovery curve)
DEFAULT_FEATURES = ("structural", "grid", "probes")


def parse_features(text: str | None) -> tuple[str, ...]:
    chosen = tuple(f.strip() for f in (text or ",".join(DEFAULT_FEATURES)).split(",") if f.strip())
    unknown = set(chosen) - set(FEATURES)
    if unknown or not chosen:
        raise UsageError(f"unknown feature family {sorted(unknown)} (choose from {', '.join(FEATURES)})")
    return chosen


def _measured(features, kind: str, data, encoder, config, progress=lambda _: None):
    """(features, data) of the hypotheses whose behaviour could be measured: one that ran out of
    time is left out (its NaN features would teach the model the machine's load), said here."""
    X, unmeasured = features.measure(kind, data.sources, data.shas, encoder, config.sandbox)
    keep = np.array([reason is None for reason in unmeasured], dtype=bool)
    if not keep.all():
        first = next(reason for reason in unmeasured if reason)
        logging.getLogger(__name__).warning("reward: %d hypotheses left out: %s",
                                            int((~keep).sum()), first)
        progress(f"{int((~keep).sum())} hypotheses left out: {first}")
        return X[keep], data.subset(keep)
    return X, data


def evaluate_features(client, config, kind: str, encoder_name: str = DEFAULT_ENCODER,
                      features: tuple[str, ...] | None = None,
                      holdout_rounds: int = HOLDOUT_ROUNDS) -> dict:
    """The split `train` would make, reported as `train` reports it (split.report), plus the
    ranking report (NDCG@10, precision@10, the discovery walk) of each algorithm over every round."""
    exp = experiment_id(client, config.experiment_name(kind))
    data = reviewed.apply(load_dataset(client, exp, kind), demoted(client, exp))  # as `train` does
    check_enough(data)
    flags = {name: name in (features or DEFAULT_FEATURES) for name in FEATURES}
    X, data = _measured(Features(**flags), kind, data, Encoder(encoder_name), config)
    held = set(split(data, holdout_rounds)[2])
    mask = np.array([r in held for r in data.rounds])
    train_set, holdout = data.subset(~mask), data.subset(mask)
    check_enough(train_set)
    out = report(X[~mask], train_set, X[mask], holdout, round_numbers(client, exp))
    for alg in ("ranker", "regressor"):
        out[alg]["ranking"] = ranking_report(X, data, alg)
    return out | {"n": len(data), "rounds": len(set(data.rounds)), "chosen": chosen(out)}


def train(client, config, kind: str, encoder_name: str = DEFAULT_ENCODER,
          holdout_rounds: int = HOLDOUT_ROUNDS, progress=lambda _: None,
          features: tuple[str, ...] = DEFAULT_FEATURES) -> TrainResult:
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from .pyfunc import RewardModel, code_identity

    exp = experiment_id(client, config.experiment_name(kind))
    rejected = demoted(client, exp)  # reviewers: a shortcut or invalid, never a good example
    data = load_dataset(client, exp, kind)
    n_rejected = sum(sha in rejected for sha in data.shas)
    data = reviewed.apply(data, rejected)
    check_enough(data)
    train_set, holdout, held_rounds = split(data, holdout_rounds)
    check_enough(train_set)
    flags = {name: name in features for name in FEATURES}
    # the encoder is kept even when embeddings are not features: rounds use it for diversity
    encoder, features = Encoder(encoder_name), Features(**flags)
    progress(f"features for {len(data)} {kind} hypotheses ({len(set(data.rounds))} rounds)")
    X, train_set = _measured(features, kind, train_set, encoder, config, progress)
    X_hold, holdout = _measured(features, kind, holdout, encoder, config, progress)
    fitted: dict = {}
    rep = report(X, train_set, X_hold, holdout, round_numbers(client, exp), fitted)
    algorithm = chosen(rep)
    progress(f"kept the {algorithm} (higher Spearman when a training round is left out)")
    model = fitted[algorithm]
    ensemble = fit_ensemble(X, train_set.target, train_set.rounds, algorithm)
    predicted = model.predict(X_hold)
    on_holdout = correlations(predicted, holdout.target)
    on_holdout_test = correlations(predicted, holdout.b_wr)  # reported, never used to choose

    exp = experiment_id(client, config.reward_experiment_name(kind))  # not among the hypotheses
    run_id = create_run(client, exp, f"reward-{kind}", {
        names.ROLE: "reward", names.KIND: kind, names.REWARD_ALGORITHM: algorithm,
        names.REWARD_ENCODER: encoder_name, names.REWARD_HOLDOUT_ROUNDS: json.dumps(held_rounds),
        names.REWARD_TARGET: TARGET})
    try:
        metrics = {f"{names.HOLDOUT_PREFIX}{k}": v for k, v in on_holdout.items()}
        metrics.update({f"{names.HOLDOUT_TEST_PREFIX}{k}": v for k, v in on_holdout_test.items()})
        for alg in ("ranker", "regressor"):
            metrics.update({f"cv_round.{alg}.{k}": v for k, v in rep[alg]["cross_validated"].items()})
            metrics.update({f"{names.HOLDOUT_PREFIX}{alg}.{k}": v for k, v in (rep[alg]["held_out"] or {}).items()})
        metrics.update({f"cv_generator.{k}": v for k, v in (rep[algorithm]["by_generator"] or {}).items()})
        log(client, run_id, params={"n_train": len(train_set), "n_holdout": len(holdout),
                                    "reviewed_rejected": n_rejected,
                                    "reviewed_treatment": reviewed.TREATMENT,
                                    "features": ",".join(f for f in FEATURES if flags[f]),
                                    "algorithm": algorithm},
            metrics=metrics)
        # predicted against measured, per held-out hypothesis: the dashboard's calibration plot
        client.log_table(run_id, data={"sha256": list(holdout.shas), "round_id": list(holdout.rounds),
                                       "generator": list(holdout.generators),
                                       "predicted": [float(v) for v in predicted],
                                       "measured": [float(v) for v in holdout.target],
                                       "measured_test_b_wr": [float(v) for v in holdout.b_wr]},
                         artifact_file=names.HOLDOUT_PREDICTIONS_ARTIFACT)
        with tempfile.TemporaryDirectory() as tmp:
            model.save_model(f"{tmp}/model.json")
            ensemble.save(f"{tmp}/ensemble")
            meta = {"kind": kind, "algorithm": algorithm, "encoder": encoder_name, "features": flags,
                    "limits": dataclasses.asdict(ScoringLimits()),  # what one scoring may take
                    **code_identity()}  # the feature code's digest: see pyfunc.py
            Path(tmp, "meta.json").write_text(json.dumps(meta))
            example = pd.DataFrame({"code": train_set.sources[:2]})
            # params: {"details": true} answers score, measured and reason per row (pyfunc.py)
            signature = infer_signature(example, np.zeros(len(example)), params={"details": False})
            # log_model exists only in the fluent API: under the fluent lock (tracking/fluent.py)
            with fluent_store(client.tracking_uri, exp), mlflow.start_run(run_id=run_id, experiment_id=exp):
                info = mlflow.pyfunc.log_model(
                    name="reward_model", python_model=RewardModel(), signature=signature,
                    input_example=example, registered_model_name=model_name(kind),
                    artifacts={"xgb": f"{tmp}/model.json", "meta": f"{tmp}/meta.json",
                               "encoder": str(encoder.path), "ensemble": f"{tmp}/ensemble"},
                    # the package's code travels with the version: a fresh process needs only the
                    # libraries, and an old champion keeps scoring with the code it was built with
                    code_paths=[str(Path(__file__).resolve().parents[1])],
                    pip_requirements=["xgboost", "transformers", "torch", "numpy", "pandas"])
        version = str(info.registered_model_version)
        client.set_registered_model_alias(model_name(kind), "challenger", version)
        client.set_model_version_tag(model_name(kind), version, names.REWARD_HOLDOUT_SPEARMAN,
                                     str(on_holdout["spearman"]))
        finish(client, run_id, status_tag="trained")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    return TrainResult(run_id, version, algorithm, {"holdout": on_holdout, "holdout_test": on_holdout_test,
                                                    "cv_round": {a: rep[a]["cross_validated"] for a in ("ranker", "regressor")},
                                                    "cv_generator": rep[algorithm]["by_generator"]}, held_rounds, rep)


def _version(client, kind: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name(kind), alias)
    except MlflowException:
        return None


def _champion_since(client, kind: str, version) -> None:
    """When a version became champion (ISO 8601, UTC, readable in the registry's page): the
    champion history the dashboard shows."""
    import datetime as dt

    client.set_model_version_tag(model_name(kind), version, names.CHAMPION_SINCE,
                                 dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"))


def _holdout_rounds(run) -> set[str]:
    """The challenger's held-out rounds, from its run's tag: a list of round ids, or a refusal."""
    try:
        rounds = json.loads(run.data.tags.get(names.REWARD_HOLDOUT_ROUNDS, ""))
    except ValueError:
        rounds = None
    if not isinstance(rounds, list) or not all(isinstance(r, str) and len(r) <= 64 for r in rounds):
        raise UsageError(f"the challenger's run {run.info.run_id} records no list of held-out rounds "
                         f"(tag {names.REWARD_HOLDOUT_ROUNDS}); promotion refused")
    return set(rounds)


def promote(client, config, kind: str) -> dict:
    """{"promoted": bool, "reason", "challenger", "champion", scores}. Raises RewardDataError when
    there is no challenger."""
    import mlflow.pyfunc
    import pandas as pd

    challenger = _version(client, kind, "challenger")
    if challenger is None:
        raise RewardDataError(f"no challenger for {model_name(kind)}: run `mlr-mlflow reward train "
                              f"--kind {kind}` first")
    champion = _version(client, kind, "champion")
    if champion is None:
        client.set_registered_model_alias(model_name(kind), "champion", challenger.version)
        client.set_model_version_tag(model_name(kind), challenger.version, names.PROMOTION,
                                     "first champion (no earlier one)")
        _champion_since(client, kind, challenger.version)
        return {"promoted": True, "reason": "first champion: there was none",
                "challenger": str(challenger.version), "champion": str(challenger.version)}
    if str(champion.version) == str(challenger.version):
        return {"promoted": False, "reason": "the challenger is already the champion",
                "challenger": str(challenger.version), "champion": str(champion.version)}
    run = client.get_run(challenger.run_id)
    rounds = _holdout_rounds(run)
    exp = experiment_id(client, config.experiment_name(kind))
    everything = load_dataset(client, exp, kind, rounds=rounds)
    data = everything.subset(everything.unbiased())
    sample = (f"{len(data)} unbiased hypotheses (unscreened rounds and exploration picks) of "
              f"{len(everything)} in holdout round(s) {', '.join(sorted(rounds))}")
    for version in (challenger, champion):
        client.set_model_version_tag(model_name(kind), version.version,
                                     names.promotion_tag(challenger.version, champion.version) + ".sample",
                                     sample)
    if len(data) < MIN_PROMOTION_SAMPLE:
        return {"promoted": False, "sample": sample, "n_sample": len(data),
                "reason": f"{sample}: at least {MIN_PROMOTION_SAMPLE} are needed to judge (run a "
                          "round with screen = 'one-pass', or a larger explore share)",
                "challenger": str(challenger.version), "champion": str(champion.version)}
    frame = pd.DataFrame({"code": data.sources})
    scores = {}
    for role, version in (("challenger", challenger), ("champion", champion)):
        with fluent_store(client.tracking_uri):  # models:/ URIs resolve through the fluent registry
            model = mlflow.pyfunc.load_model(f"models:/{model_name(kind)}/{version.version}")
        scores[f"spearman_{role}"] = correlations(model.predict(frame), data.target)["spearman"]
    sc, sh = scores["spearman_challenger"], scores["spearman_champion"]
    better = np.nan_to_num(sc, nan=-2) > np.nan_to_num(sh, nan=-2)
    summary = (f"on {sample}, Spearman with the validation target ({TARGET}): "
               f"challenger v{challenger.version} {sc:.3f} vs champion v{champion.version} {sh:.3f}"
               + ("" if better else " (the challenger must be strictly better)"))
    for version in (challenger, champion):
        client.set_model_version_tag(model_name(kind), version.version,
                                     names.promotion_tag(challenger.version, champion.version),
                                     summary)
    if better:
        client.set_registered_model_alias(model_name(kind), "champion", challenger.version)
        _champion_since(client, kind, challenger.version)
    return {"promoted": bool(better), "reason": summary, "sample": sample, "n_sample": len(data),
            "challenger": str(challenger.version),
            "champion": str(challenger.version if better else champion.version), **scores}
