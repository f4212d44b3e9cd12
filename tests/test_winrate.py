import math

import pytest

from mlr_mlflow.evaluate.winrate import compare, summarize, win_rate


def r(acc, loss, n=10, val=None):
    """A result whose validation split scores `val` (acc, loss), by default the same as its test."""
    val_acc, val_loss = val or (acc, loss)
    return {"test_acc": acc, "test_loss": loss, "n_test": n, "val_acc": val_acc, "val_loss": val_loss,
            "n_val": n}


def test_more_correct_examples_win_whatever_the_loss():
    assert compare(r(0.9, 5.0), r(0.8, 0.1), 1e-3) == 1.0
    assert compare(r(0.8, 0.1), r(0.9, 5.0), 1e-3) == 0.0


def test_same_accuracy_is_decided_by_loss_beyond_the_tolerance():
    assert compare(r(0.8, 0.50), r(0.8, 0.60), 1e-3) == 1.0
    assert compare(r(0.8, 0.60), r(0.8, 0.50), 1e-3) == 0.0
    assert compare(r(0.8, 0.5000), r(0.8, 0.5005), 1e-3) == 0.5


def test_float_noise_in_accuracy_does_not_decide():
    assert compare(r(0.7000001, 0.5), r(0.6999999, 0.5), 1e-3) == 0.5


def test_non_finite_loss_is_worst():
    assert compare(r(0.5, None), r(0.5, 1.0), 1e-3) == 0.0
    assert compare(r(0.5, math.nan), r(0.5, 1.0), 1e-3) == 0.0
    assert compare(r(0.5, None), r(0.5, None), 1e-3) == 0.5


def test_win_rates_average_over_datasets_seeds_and_references():
    h = {"a": {0: r(0.9, 0.1), 1: r(0.5, 0.1)}}
    base = {"relu": {"a": {0: r(0.8, 0.1), 1: r(0.8, 0.1)}}}
    sota = {"gelu": {"a": {0: r(0.9, 0.1), 1: r(0.9, 0.1)}}}
    assert win_rate(h, base, 1e-3) == pytest.approx(0.5)
    summary = summarize(h, base, sota, 1e-3)
    assert summary["b_wr"] == pytest.approx(0.5)
    assert summary["bsota_wr"] == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert summary["datasets"]["a"]["test_acc"] == pytest.approx(0.7)


def test_validation_win_rates_are_separate_from_the_reported_test_win_rates():
    # better than the baseline on validation, worse on test: selection and report must not mix
    h = {"a": {0: r(0.5, 0.1, val=(0.9, 0.1)), 1: r(0.5, 0.1, val=(0.9, 0.1))}}
    base = {"relu": {"a": {0: r(0.8, 0.1), 1: r(0.8, 0.1)}}}
    summary = summarize(h, base, {}, 1e-3)
    assert summary["val_b_wr"] == 1.0 and summary["b_wr"] == 0.0
    assert summary["datasets"]["a"]["val_b_wr"] == 1.0


def test_summary_carries_intervals_around_the_point_values_and_a_p_value():
    h = {ds: {s: r(0.9 if s % 2 else 0.7, 0.1) for s in range(4)} for ds in ("a", "b", "c")}
    base = {"relu": {ds: {s: r(0.8, 0.1) for s in range(4)} for ds in ("a", "b", "c")}}
    sota = {"gelu": {ds: {s: r(0.6, 0.1) for s in range(4)} for ds in ("a", "b", "c")}}
    s = summarize(h, base, sota, 1e-3, level=0.9, n_boot=500)
    assert s["b_wr_ci_low"] <= s["b_wr"] == 0.5 <= s["b_wr_ci_high"]
    assert s["bsota_wr_ci_low"] <= s["bsota_wr"] <= s["bsota_wr_ci_high"]
    assert 0.0 < s["b_wr_p_value"] <= 1.0
    same = summarize(base["relu"], base, sota, 1e-3)
    assert same["b_wr_p_value"] == 1.0 and same["b_wr_ci_low"] == same["b_wr_ci_high"] == 0.5


def test_units_are_paired_per_dataset_and_seed_and_average_to_the_win_rate():
    from mlr_mlflow.evaluate.winrate import units

    h = {"a": {0: r(0.9, 0.1), 1: r(0.5, 0.1)}, "b": {0: r(0.8, 0.1), 1: r(0.8, 0.2)}}
    refs = {"relu": {ds: {0: r(0.8, 0.1), 1: r(0.8, 0.1)} for ds in "ab"},
            "l2": {ds: {0: r(0.7, 0.1), 1: r(0.9, 0.1)} for ds in "ab"}}
    u = units(h, refs, 1e-3)
    assert u.tolist() == [[1.0, 0.0], [0.75, 0.0]]
    assert u.mean() == pytest.approx(win_rate(h, refs, 1e-3))


def test_under_the_loss_rule_the_lower_loss_wins_whatever_the_accuracy():
    assert compare(r(0.9, 5.0), r(0.8, 0.1), 1e-3, metric="loss") == 0.0
    assert compare(r(0.8, 0.1), r(0.9, 5.0), 1e-3, metric="loss") == 1.0
    assert compare(r(0.8, 0.5000), r(0.9, 0.5005), 1e-3, metric="loss") == 0.5  # within the tolerance
    assert compare(r(0.9, math.nan), r(0.1, 9.0), 1e-3, metric="loss") == 0.0
    # validation too: what a loss-judged kind is screened by
    assert compare(r(0.5, 1.0, val=(0.9, 2.0)), r(0.5, 1.0, val=(0.6, 0.3)), 1e-3, "val", "loss") == 0.0
    with pytest.raises(ValueError, match="unknown win-rate metric"):
        compare(r(0.8, 0.1), r(0.8, 0.2), 1e-3, metric="f1")


def test_the_summary_and_its_test_follow_the_metric():
    # more correct examples than the baseline, but a worse loss on every unit
    h = {ds: {s: r(0.9, 0.4) for s in range(4)} for ds in ("a", "b")}
    base = {"none": {ds: {s: r(0.8, 0.2) for s in range(4)} for ds in ("a", "b")}}
    by_accuracy = summarize(h, base, {}, 1e-3, n_boot=200)
    by_loss = summarize(h, base, {}, 1e-3, n_boot=200, metric="loss")
    assert by_accuracy["b_wr"] == 1.0 and by_loss["b_wr"] == 0.0
    assert by_accuracy["b_wr_p_value"] < 0.05 and by_loss["b_wr_p_value"] == 1.0
    assert by_loss["datasets"]["a"]["b_wr"] == 0.0 and by_loss["val_b_wr"] == 0.0


def test_the_log_loss_ratio_measures_how_much_lower_the_loss_is_with_its_interval_and_test():
    from mlr_mlflow.evaluate.winrate import log_ratio

    h = {ds: {s: r(0.8, 0.25) for s in range(4)} for ds in ("a", "b")}
    base = {"none": {ds: {s: r(0.8, 0.5) for s in range(4)} for ds in ("a", "b")}}
    sota = {"l2": {ds: {s: r(0.9, 1.0) for s in range(4)} for ds in ("a", "b")}}
    s = summarize(h, base, sota, 1e-3, n_boot=200)
    assert s["log_loss_ratio"] == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert s["log_loss_ratio_ci_low"] <= s["log_loss_ratio"] <= s["log_loss_ratio_ci_high"]
    assert s["log_loss_ratio_p_value"] < 0.01
    worse = summarize(sota["l2"], base, {}, 1e-3, n_boot=200)
    assert worse["log_loss_ratio"] < 0 and worse["log_loss_ratio_p_value"] == 1.0
    assert log_ratio(None, 1.0) == -3.0 and log_ratio(1.0, math.inf) == 3.0 and log_ratio(None, None) == 0.0
    assert log_ratio(1e-9, 1e3) == 3.0  # clipped: one diverged comparison cannot dominate
