"""Win-rate statistics: intervals that cover the truth, a calibrated paired test, BH, noise ceiling."""
import math

import numpy as np
import pytest

from mlr_mlflow.stats import (benjamini_hochberg, bootstrap_interval, bootstrap_means,
                              noise_ceiling, sign_flip_pvalue, spearman)


def simulate_units(rng, truth, datasets=8, seeds=3, spread=0.1):
    """Win/tie/loss outcomes of a hypothesis whose win probability varies by dataset around `truth`."""
    p = np.clip(truth + rng.uniform(-spread, spread, size=datasets), 0.0, 1.0)
    draws = rng.random((datasets, seeds))
    tie = rng.random((datasets, seeds)) < 0.2
    return np.where(tie, 0.5, (draws < p[:, None]).astype(float))


def test_bootstrap_interval_covers_the_truth_at_about_its_nominal_rate():
    rng = np.random.default_rng(1)
    truth, trials, hits = 0.6, 300, 0
    for t in range(trials):
        # the truth of this population: E[outcome] = 0.2 * 0.5 + 0.8 * E[p]; E[p] = truth (symmetric spread)
        units = simulate_units(rng, truth)
        low, high = bootstrap_interval(units, 0.95, n_boot=1000, seed=t)
        hits += low <= 0.1 + 0.8 * truth <= high
    coverage = hits / trials
    assert 0.90 <= coverage <= 0.995, coverage


def test_narrower_level_gives_a_narrower_interval_around_the_point_value():
    units = simulate_units(np.random.default_rng(0), 0.5)
    low95, high95 = bootstrap_interval(units, 0.95)
    low80, high80 = bootstrap_interval(units, 0.80)
    assert low95 <= low80 <= units.mean() <= high80 <= high95
    with pytest.raises(ValueError):
        bootstrap_interval(units, 1.5)


def test_bootstrap_is_reproducible_and_stays_within_the_observed_outcomes():
    units = np.array([[1.0, 0.0], [0.5, 1.0]])
    a, b = bootstrap_means(units, 200, seed=3), bootstrap_means(units, 200, seed=3)
    assert np.array_equal(a, b) and a.min() >= 0.0 and a.max() <= 1.0 and a.std() > 0
    assert bootstrap_interval(np.full((2, 1), 0.5)) == (0.5, 0.5)


def test_identical_behaviour_never_looks_better():
    assert sign_flip_pvalue(np.full((8, 3), 0.5)) == 1.0


def test_paired_test_is_calibrated_under_the_null_and_finds_a_real_effect():
    rng = np.random.default_rng(2)
    null_p = [sign_flip_pvalue(simulate_units(rng, 0.5, spread=0.0), n_perm=2000, seed=i)
              for i in range(300)]
    assert np.mean(np.array(null_p) <= 0.1) <= 0.14  # at most the level, up to simulation error
    strong = [sign_flip_pvalue(simulate_units(rng, 0.9, spread=0.0), n_perm=2000, seed=i)
              for i in range(20)]
    assert np.mean(np.array(strong) <= 0.05) >= 0.9


def test_exact_sign_flip_on_few_units():
    # 3 units, all wins: only the all-plus pattern of 2**3 reaches the observed sum
    assert sign_flip_pvalue(np.ones((3, 1))) == pytest.approx(1 / 8)
    assert sign_flip_pvalue(np.zeros((3, 1))) == 1.0


def test_benjamini_hochberg_matches_the_step_up_rule():
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    rejected, adjusted = benjamini_hochberg(p, 0.05)
    assert rejected.tolist() == [True, True] + [False] * 8
    # adjusted p-values are monotone in p and reject exactly where <= fdr
    assert np.all(np.diff(adjusted) >= 0) and adjusted[0] == pytest.approx(0.01)
    rejected, _ = benjamini_hochberg([0.01, 0.02, 0.03], 0.1)
    assert rejected.all()
    assert benjamini_hochberg([], 0.1)[0].size == 0


def test_benjamini_hochberg_controls_false_discoveries_among_nulls():
    rng = np.random.default_rng(4)
    any_false = np.mean([benjamini_hochberg(rng.random(20), 0.1)[0].any() for _ in range(2000)])
    assert any_false <= 0.12  # all nulls: FDR = P(any rejection) <= 0.1


def test_noise_ceiling_is_high_for_real_differences_and_low_for_noise():
    rng = np.random.default_rng(5)
    real = [simulate_units(rng, t, seeds=6, spread=0.0) for t in np.linspace(0.1, 0.9, 12)]
    null = [simulate_units(rng, 0.5, seeds=6, spread=0.0) for _ in range(12)]
    assert noise_ceiling(real, [0, 1, 2], [3, 4, 5]) > 0.7
    assert noise_ceiling(null, [0, 1, 2], [3, 4, 5]) < noise_ceiling(real, [0, 1, 2], [3, 4, 5])
    with pytest.raises(ValueError):
        noise_ceiling(real, [0, 1], [1, 2])
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_kendall_counts_concordant_pairs_and_handles_ties():
    from mlr_mlflow.stats import kendall

    assert kendall([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one discordant pair of six: (5 - 1) / 6
    assert kendall([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    # tau-b with a tie in one side: 5 concordant, 0 discordant, 6 and 5 untied pairs
    assert kendall([1, 2, 3, 4], [1, 1, 2, 3]) == pytest.approx(5 / math.sqrt(6 * 5))
    assert math.isnan(kendall([1, 1, 1], [1, 2, 3]))


def test_precision_and_ndcg_at_k_reward_finding_the_true_top():
    from mlr_mlflow.stats import ndcg_at_k, precision_at_k

    truth = np.array([0.9, 0.8, 0.1, 0.2, 0.7])
    assert precision_at_k(truth, truth, 2) == 1.0 and ndcg_at_k(truth, truth, 3) == pytest.approx(1.0)
    reversed_ = -truth
    assert precision_at_k(reversed_, truth, 2) == 0.0
    assert ndcg_at_k(reversed_, truth, 2) == pytest.approx((0.1 / np.log2(3)) / (0.8 + 0.7 / np.log2(3)))
    # swapping the top two costs a little, not everything
    swapped = np.array([0.8, 0.9, 0.1, 0.2, 0.7])
    assert 0.9 < ndcg_at_k(swapped, truth, 3) < 1.0 and precision_at_k(swapped, truth, 2) == 1.0


def test_evaluations_to_find_the_top_walks_the_predicted_order_and_random_is_its_expectation():
    from mlr_mlflow.stats import evaluations_to_find, random_evaluations_to_find

    truth = np.arange(10, dtype=float)  # items 9, 8 are the true top 2
    perfect = truth.copy()
    assert evaluations_to_find(perfect, truth, top=2) == 2
    worst = -truth
    assert evaluations_to_find(worst, truth, top=2) == 10
    assert evaluations_to_find(worst, truth, top=2, found=1) == 9
    rng = np.random.default_rng(0)
    walks = [evaluations_to_find(rng.permutation(10).astype(float), truth, top=2) for _ in range(4000)]
    assert np.mean(walks) == pytest.approx(random_evaluations_to_find(10, 2), rel=0.03)
    found_one = [evaluations_to_find(rng.permutation(10).astype(float), truth, top=2, found=1)
                 for _ in range(4000)]
    assert np.mean(found_one) == pytest.approx(random_evaluations_to_find(10, 2, 1), rel=0.05)
