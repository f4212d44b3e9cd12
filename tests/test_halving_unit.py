"""The halving's rules on plain values (no training, no store): which one-pass evaluations go on to
full training, how the one-pass share splits into waves, what a round's training costs."""
from mlr_mlflow.config import Config, with_overrides
from mlr_mlflow.evaluate.evaluation import Evaluation
from mlr_mlflow.hypothesis import Hypothesis
from mlr_mlflow.round.halving import one_pass_share, promote, round_cost, wave_sizes


def ev(i: int, valid=True, screen=None, val_b_wr=None, b_wr=0.5, val_bsota_wr=None, bsota_wr=0.5):
    h = Hypothesis("activation", f"def activation(x):\n    return x * {i}\n")
    e = Evaluation(h, f"run{i}", "one-pass", b_wr=b_wr, bsota_wr=bsota_wr, val_b_wr=val_b_wr,
                   val_bsota_wr=val_bsota_wr, screen_score=screen)
    if not valid:
        e.reject(["broken"], "dynamic")
    return e


def test_promotion_ranks_by_the_screening_statistic_never_by_test_numbers():
    low_screen_high_test = ev(1, screen=0.2, val_b_wr=0.2, b_wr=0.99)
    high_screen_low_test = ev(2, screen=0.9, val_b_wr=0.9, b_wr=0.1)
    middle = ev(3, screen=0.5, val_b_wr=0.5, b_wr=0.5)
    chosen = promote([low_screen_high_test, middle, high_screen_low_test], 2)
    assert [e.run_id for e in chosen] == ["run2", "run3"]


def test_promotion_leaves_out_invalid_and_unscored_evaluations_and_respects_top_k():
    evs = [ev(1, screen=0.9, valid=False), ev(2, screen=0.1), ev(3, screen=0.8, b_wr=None)]
    assert [e.run_id for e in promote(evs, 5)] == ["run2"]
    assert promote(evs, 0) == [] and promote(evs, -1) == []


def test_runs_from_before_screen_score_rank_by_validation_then_test_b_wr():
    old_val = ev(1, val_b_wr=0.7)  # no screen_score: its validation B-WR ranks it
    old_test_only = ev(2, b_wr=0.6)  # no validation metrics at all: its B-WR stands in
    new = ev(3, screen=0.65, val_b_wr=0.1)
    assert [e.run_id for e in promote([old_test_only, new, old_val], 3)] == ["run1", "run3", "run2"]


def test_ties_are_broken_by_hash_so_a_resumed_round_promotes_the_same():
    evs = [ev(i, screen=0.5, val_b_wr=0.5, val_bsota_wr=0.5) for i in range(6)]
    first = [e.hypothesis.sha256 for e in promote(evs, 3)]
    again = [e.hypothesis.sha256 for e in promote(list(reversed(evs)), 3)]
    assert first == again == sorted(e.hypothesis.sha256 for e in evs)[:3]


def test_the_one_pass_share_is_eta_times_top_k_capped_by_the_valid_count():
    assert one_pass_share(valid=100, top_k=4, eta=3) == 12
    assert one_pass_share(valid=5, top_k=4, eta=3) == 5
    assert one_pass_share(valid=0, top_k=4, eta=3) == 0


def test_waves_split_the_share_near_equally_and_never_into_empty_waves():
    assert wave_sizes(12, 3) == [4, 4, 4]
    assert wave_sizes(10, 3) == [3, 4, 3] and sum(wave_sizes(10, 3)) == 10
    assert wave_sizes(2, 5) == [1, 1]  # fewer waves than asked when the share is smaller
    assert wave_sizes(7, 1) == [7]
    assert wave_sizes(0, 4) == [0]  # nothing to train: one empty wave, never none


def test_the_cost_counts_one_pass_as_one_epoch_and_confirmation_by_its_seeds():
    config = with_overrides(Config(), model={"max_epochs": 10}, confirm={"seeds": 6})
    cost = round_cost(config, seeds=3, one_pass=20, full=4, confirm=2)
    assert cost.full_equivalents == 20 / 10 + 4 + 2 * 6 / 3
    assert cost.metrics() == {"one_pass_trained": 20, "full_trained": 4, "confirm_trained": 2,
                              "cost_full_equivalents": cost.full_equivalents}
    assert round_cost(config, seeds=3, one_pass=0, full=0, confirm=0).full_equivalents == 0
