"""The evaluated pool that bench/reward.py measures the reward model on.

Three sources of activation hypotheses, all evaluated one-pass into the store's `mlr-activation`:
- `symbolic`: `--rounds` real discovery rounds of `--round-size` (one-pass screening, top-k 0);
- `handwritten`: bench/throughput.py's eight families with varying constants (one round);
- `literature`: bench/literature.py, named activations from the literature: the HELD-OUT source,
  whose families neither training source has. The benchmark never trains on it.
Then every hypothesis of the pool is trained in full (variant `full`, round `bench-full`), and
evaluated one-pass again on disjoint seeds (first seed 100, experiment `ceiling-activation`) for
the noise ceiling. With `truth_again`, the pool is also trained in full on those disjoint seeds:
the truth's own repeatability, and how well a perfect knowledge of one draw of the truth finds the
other draw's top 10 (what no reward model can be expected to beat).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

HELD_OUT = "literature"
CEILING_FIRST_SEED = 100


@dataclass(frozen=True)
class PoolSpec:
    rounds: int = 8
    round_size: int = 32
    handwritten: int = 64
    literature: int = 32
    datasets: tuple[str, ...] = ()  # empty: the default suite
    seeds: int = 3
    full: bool = True
    ceiling: bool = True
    truth_again: bool = False


def bench_config(spec: PoolSpec):
    from mlr_mlflow.config import Config, for_kind, with_overrides

    suite = {"datasets": spec.datasets} if spec.datasets else {}
    # a pool trains in full in few large calls on a busy machine: backstops must not cut one short;
    # one-pass at the activation kind's own rate, as a round trains it
    config = with_overrides(Config(), suite=suite, discover={"screen": "one-pass", "parents": 8},
                            sandbox={"train_timeout_s": 4 * 3600.0, "hypothesis_budget_s": 900.0,
                                     "probe_timeout_s": 300.0})
    return for_kind(config, "activation")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build(uri: str, spec: PoolSpec) -> None:
    import literature
    from throughput import hypotheses as handwritten

    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import connect

    client = connect(uri)
    config = bench_config(spec)
    for r in range(spec.rounds):
        summary = Round(client, config, "activation").run(n=spec.round_size, top_k=0, seeds=spec.seeds,
                                                          seed=r)
        _say(f"symbolic round {r + 1}/{spec.rounds}: {summary.evaluated} evaluated")
    evaluator = Evaluator(client, config)
    for name, sources in (("handwritten", handwritten(spec.handwritten)),
                          (HELD_OUT, literature.sources(spec.literature))):
        evs = evaluator.evaluate([Hypothesis("activation", s, name) for s in sources], "one-pass",
                                 spec.seeds, round_id=name)
        _say(f"{name}: {sum(ev.valid for ev in evs)} of {len(evs)} evaluated")
    pool = pool_hypotheses(client, config)
    if spec.full:
        _say(f"full training of all {len(pool)}")
        evaluator.evaluate(pool, "full", spec.seeds, round_id="bench-full")
    if spec.ceiling:
        _say(f"one-pass again on seeds {CEILING_FIRST_SEED}.. for the noise ceiling")
        fresh = replace(config, experiment_prefix="ceiling-",
                        suite=replace(config.suite, first_seed=CEILING_FIRST_SEED))
        Evaluator(client, fresh).evaluate(pool, "one-pass", spec.seeds, round_id="ceiling")
        if spec.full and spec.truth_again:
            _say(f"full training of all {len(pool)} again on seeds {CEILING_FIRST_SEED}..")
            Evaluator(client, fresh).evaluate(pool, "full", spec.seeds, round_id="ceiling-full")


def pool_hypotheses(client, config) -> list:
    """Every one-pass evaluated hypothesis of the store, with its source and generator."""
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.reward.ranker import load_dataset
    from mlr_mlflow.tracking import experiment_id

    data = load_dataset(client, experiment_id(client, config.experiment_name("activation")), "activation")
    return [Hypothesis("activation", s, g) for s, g in zip(data.sources, data.generators)]


def metric_by_sha(client, experiment_name: str, variant: str, metric: str) -> dict[str, float]:
    from mlr_mlflow.tracking import experiment_id, names
    from mlr_mlflow.tracking.queries import hypothesis_runs

    exp = client.get_experiment_by_name(experiment_name)
    if exp is None:
        return {}
    runs = hypothesis_runs(client, experiment_id(client, experiment_name),
                           f"tags.`{names.VARIANT}` = '{variant}' and tags.`{names.STATUS}` = 'evaluated'")
    out = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        if metric in run.data.metrics:
            out.setdefault(run.data.tags[names.HYPOTHESIS_SHA256], run.data.metrics[metric])
    return out


def aligned(shas: list[str], values: dict[str, float]) -> np.ndarray:
    return np.array([values.get(sha, np.nan) for sha in shas], dtype=float)
