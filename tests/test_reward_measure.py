"""The reward model's out-of-sample measurements: nothing is predicted by a model that saw it, and a
held-out source never enters training."""
import numpy as np
import pytest

from mlr_mlflow.reward.measure import by_round, by_source, discovery, out_of_sample
from mlr_mlflow.reward.ranker import Dataset


def synthetic(n_per_round=12, rounds=3, held_out=8, seed=0):
    """b_wr is a function of the first feature; the held-out source lives in another feature range."""
    rng = np.random.default_rng(seed)
    n = n_per_round * rounds + held_out
    X = rng.normal(size=(n, 4)).astype(np.float32)
    X[-held_out:, 0] += 0.5
    y = (1 / (1 + np.exp(-X[:, 0]))).astype(np.float32)
    rounds_ = [f"r{i // n_per_round}" for i in range(n - held_out)] + ["lit"] * held_out
    gens = ["symbolic"] * (n - held_out) + ["literature"] * held_out
    return X, Dataset("activation", [f"s{i}" for i in range(n)], [f"{i:064x}" for i in range(n)], y,
                      y, rounds_, gens, [""] * n)  # target (validation) = b_wr (test) here


def test_out_of_sample_predictions_rank_a_learnable_target_and_keep_the_held_out_source_out():
    X, data = synthetic()
    pred = out_of_sample(X, data, "regressor", ("literature",))
    assert np.isfinite(pred).all()
    report = by_round(pred, data, ("literature",))
    assert report["n"] == 36 and set(report["rounds"]) == {"r0", "r1", "r2"}
    assert report["spearman"] > 0.8
    # a target the features cannot see is not learned: the same data with shuffled targets
    noise_y = np.random.default_rng(1).permutation(data.b_wr)
    shuffled = Dataset(data.kind, data.sources, data.shas, noise_y, noise_y, data.rounds,
                       data.generators, data.picks)
    noise = by_round(out_of_sample(X, shuffled, "regressor", ("literature",)), shuffled, ("literature",))
    assert noise["spearman"] < report["spearman"] - 0.3
    sources = by_source(X, data, "regressor", ("literature",))
    # symbolic has no other training source to learn from; the held-out one is predicted
    assert set(sources) == {"literature"} and sources["literature"]["held_out_source"] is True
    assert sources["literature"]["n"] == 8


def test_discovery_reports_fractions_of_random_for_10_9_and_8_of_the_top():
    truth = np.linspace(0, 1, 40)
    perfect = discovery(truth, truth)
    assert perfect["ndcg_at_10"] == pytest.approx(1.0) and perfect["precision_at_10"] == 1.0
    assert perfect["find_10_of_top10"]["evaluations"] == 10
    assert perfect["find_10_of_top10"]["fraction_of_random"] == pytest.approx(10 / (10 * 41 / 11), abs=1e-3)
    assert perfect["find_8_of_top10"]["evaluations"] == 8
    worst = discovery(-truth, truth)
    assert worst["find_10_of_top10"]["evaluations"] == 40 and worst["precision_at_10"] == 0.0
