"""Win-rate statistics: intervals that cover the truth, a calibrated paired test, BH, noise ceiling."""
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
