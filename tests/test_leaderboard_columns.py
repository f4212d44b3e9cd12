"""leaderboard.json as a person opens it: what matters first, nothing empty."""
from mlr_mlflow.round.leaderboard import columns


def test_the_table_leads_with_rank_and_verdicts_and_leaves_out_empty_columns():
    rows = [{"sha256": "a" * 64, "generator": "symbolic", "reward_score": None, "one_pass_run_id": "r1",
             "one_pass_b_wr": 0.7, "full_run_id": None, "full_b_wr": None, "confirmed": False,
             "transfers": False, "rank": 1, "confirm_b_wr": None, "suite_noise_ceiling": 0.84},
            {"sha256": "b" * 64, "generator": "symbolic", "reward_score": None, "one_pass_run_id": "r2",
             "one_pass_b_wr": 0.5, "full_run_id": None, "full_b_wr": None, "confirmed": False,
             "transfers": False, "rank": 2, "confirm_b_wr": None, "suite_noise_ceiling": 0.84}]
    table = columns(rows)
    assert list(table)[:5] == ["rank", "confirmed", "transfers", "one_pass_b_wr", "suite_noise_ceiling"]
    assert "reward_score" not in table and "full_b_wr" not in table and "confirm_b_wr" not in table
    assert table["full_run_id"] == [None, None]  # a row always names its runs, even none
    assert table["sha256"] == ["a" * 64, "b" * 64]
