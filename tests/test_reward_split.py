"""`reward train` and `reward evaluate` report one split the same way (reward/split.py)."""
import numpy as np

from mlr_mlflow.reward.ranker import Dataset
from mlr_mlflow.reward.split import chosen, lines, report, split


def _data(generators):
    rng = np.random.default_rng(0)
    rounds = [r for r in ("a", "b", "c", "d") for _ in range(10)]
    X = rng.normal(size=(40, 3)).astype(np.float32)
    target = (X[:, 0] + 0.3 * rng.normal(size=40)).astype(np.float32)
    n = len(rounds)
    data = Dataset("activation", ["src"] * n, [str(i) for i in range(n)], target, target.copy(), rounds,
                   generators(rounds), [""] * n)
    return X, data


def _report(generators):
    X, data = _data(generators)
    train_set, holdout, held = split(data, 1)
    mask = np.array([r in set(held) for r in data.rounds])
    return held, report(X[~mask], train_set, X[mask], holdout, {"a": 1, "b": 2, "c": 3, "d": 4})


def test_the_split_names_rounds_by_number_and_holds_out_the_newest():
    held, rep = _report(lambda rounds: ["symbolic"] * len(rounds))
    assert held == ["d"]
    assert rep["split"] == {"train_rounds": [1, 2, 3], "holdout_rounds": [4], "n_train": 30, "n_holdout": 10}
    for alg in ("ranker", "regressor"):
        # the feature that drives the target is learned: both views see it, from the same fits
        assert rep[alg]["cross_validated"]["mean_spearman"] > 0.5
        assert rep[alg]["held_out"]["spearman"] > 0.5
    text = "\n".join(lines(rep))
    assert "trained on rounds 1, 2, 3 (30 hypotheses); held out round 4 (10)" in text
    assert "nan" not in text.lower()
    assert chosen(rep) == max(("ranker", "regressor"),
                              key=lambda a: rep[a]["cross_validated"]["mean_spearman"])


def test_one_generator_is_said_not_reported_as_nan():
    _, rep = _report(lambda rounds: ["symbolic"] * len(rounds))
    assert rep["regressor"]["by_generator"] is None
    assert "one generator" in rep["regressor"]["by_generator_note"]
    assert "by generator: n/a (one generator in the training rounds)" in "\n".join(lines(rep))
    _, rep = _report(lambda rounds: ["symbolic" if i % 2 else "llm" for i in range(len(rounds))])
    assert rep["regressor"]["by_generator_note"] is None
    assert -1 <= rep["regressor"]["by_generator"]["spearman"] <= 1


def test_a_round_without_a_number_is_named_by_its_id():
    X, data = _data(lambda rounds: ["symbolic"] * len(rounds))
    train_set, holdout, _ = split(data, 1)
    rep = report(X[:30], train_set, X[30:], holdout, {"a": 1, "b": 2})
    assert rep["split"]["train_rounds"] == [1, 2, "c"] and rep["split"]["holdout_rounds"] == ["d"]
