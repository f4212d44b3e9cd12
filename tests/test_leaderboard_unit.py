"""A round's leaderboard on plain values (no training, no store): one row per valid one-pass
evaluation, confirmed first, then by the most trustworthy B-WR; the best row's best result."""
from mlr_mlflow.evaluate.evaluation import Evaluation
from mlr_mlflow.hypothesis import Hypothesis
from mlr_mlflow.round.leaderboard import best_of, columns, leaderboard
from mlr_mlflow.round.selection import Confirmation
from mlr_mlflow.round.transfer import Transfer


def hyp(i: int, score=None) -> Hypothesis:
    h = Hypothesis("activation", f"def activation(x):\n    return x * {i}\n", "symbolic")
    return h.annotated(metrics={"reward.score": score}) if score is not None else h


def ev(h, variant, b_wr, valid=True, **uncertainty):
    e = Evaluation(h, f"{variant}-{h.sha256[:4]}", variant, b_wr=b_wr, bsota_wr=b_wr,
                   uncertainty=dict(uncertainty))
    if not valid:
        e.reject(["broken"], "dynamic")
    return e


def test_confirmed_hypotheses_lead_then_confirmation_then_full_then_one_pass_b_wr():
    a, b, c, d = hyp(1), hyp(2), hyp(3), hyp(4)
    one_pass = [ev(a, "one-pass", 0.9), ev(b, "one-pass", 0.5), ev(c, "one-pass", 0.6), ev(d, "one-pass", 0.95)]
    full = [ev(a, "full", 0.9), ev(b, "full", 0.55), ev(c, "full", 0.7)]
    confirmation = Confirmation(selected=(a.sha256, b.sha256, c.sha256),
                                evaluations={a.sha256: ev(a, "confirm", 0.8), b.sha256: ev(b, "confirm", 0.6),
                                             c.sha256: ev(c, "confirm", 0.4)},
                                q_values={a.sha256: 0.2, b.sha256: 0.01, c.sha256: 0.5},
                                confirmed=frozenset({b.sha256}))
    rows = leaderboard(one_pass, full, confirmation, noise_ceiling=0.07)
    assert [r["sha256"] for r in rows] == [b.sha256, a.sha256, c.sha256, d.sha256]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["confirmed"] and not rows[1]["confirmed"]
    assert rows[0]["confirm_q_value"] == 0.01 and rows[3]["confirm_q_value"] is None
    assert all(r["suite_noise_ceiling"] == 0.07 for r in rows)  # never read without it


def test_invalid_evaluations_have_no_row_and_an_invalid_confirmation_counts_as_none():
    a, b = hyp(1), hyp(2)
    one_pass = [ev(a, "one-pass", 0.7), ev(b, "one-pass", 0.9, valid=False)]
    full = [ev(a, "full", 0.8)]
    confirmation = Confirmation(selected=(a.sha256,), evaluations={a.sha256: ev(a, "confirm", 0.9, valid=False)})
    [row] = leaderboard(one_pass, full, confirmation)
    assert row["sha256"] == a.sha256 and row["confirm_b_wr"] is None and row["full_b_wr"] == 0.8


def test_rows_carry_the_reward_score_that_picked_them_and_the_held_out_verdict():
    a, b = hyp(1, score=1.5), hyp(2)
    held_out = Transfer(selected=(a.sha256,), evaluations={a.sha256: ev(a, "transfer", 0.66)},
                        q_values={a.sha256: 0.03}, transfers=frozenset({a.sha256}))
    rows = leaderboard([ev(a, "one-pass", 0.6), ev(b, "one-pass", 0.5)], [ev(a, "full", 0.7)],
                       held_out=held_out)
    by_sha = {r["sha256"]: r for r in rows}
    assert by_sha[a.sha256]["reward_score"] == 1.5 and by_sha[b.sha256]["reward_score"] is None
    assert (by_sha[a.sha256]["transfer_b_wr"], by_sha[a.sha256]["transfer_q_value"],
            by_sha[a.sha256]["transfers"]) == (0.66, 0.03, True)
    assert by_sha[b.sha256]["transfers"] is False


def test_the_best_is_the_top_rows_most_trustworthy_result_with_its_interval():
    a = hyp(1)
    rows = leaderboard([ev(a, "one-pass", 0.6)], [ev(a, "full", 0.7, b_wr_ci_low=0.6, b_wr_ci_high=0.8)])
    best = best_of(rows)
    assert (best["variant"], best["b_wr"], best["b_wr_ci_low"], best["b_wr_ci_high"]) == ("full", 0.7, 0.6, 0.8)
    assert best["run_id"] == rows[0]["full_run_id"] and best["confirmed"] is False
    only_one_pass = best_of(leaderboard([ev(a, "one-pass", 0.6)], []))
    assert (only_one_pass["variant"], only_one_pass["b_wr"]) == ("one-pass", 0.6)
    assert best_of([]) is None


def test_columns_turn_rows_into_the_logged_table():
    rows = leaderboard([ev(hyp(1), "one-pass", 0.6), ev(hyp(2), "one-pass", 0.5)], [])
    table = columns(rows)
    # every column some row fills, and every run id column; none that is empty in every row
    assert set(table) == {k for k in rows[0] if k.endswith("_run_id")
                          or any(r[k] is not None for r in rows)}
    assert table["rank"] == [1, 2] and list(table)[0] == "rank" and "full_b_wr" not in table


def test_regularizers_are_ranked_and_confirmed_by_the_test_log_loss_ratio():
    """A regularizer's B-WR does not repeat (evaluate/verdict.py): its rows are ordered by the log-loss
    ratio, and confirmation passes on that ratio's test, not on B-WR."""
    from mlr_mlflow.round.confirm import verdicts

    def reg(i):
        return Hypothesis("regularizer", f"def regularizer(params):\n    return {i}e-4 * sum(p.sum() for p in params)\n")

    def rev(h, variant, b_wr, ratio, **u):
        e = ev(h, variant, b_wr, **u)
        e.log_loss_ratio = ratio
        return e

    a, b = reg(1), reg(2)
    one_pass = [rev(a, "one-pass", 0.9, -0.2), rev(b, "one-pass", 0.4, 0.1)]
    full = [rev(a, "full", 0.8, -0.1), rev(b, "full", 0.45, 0.05)]
    rows = leaderboard(one_pass, full)
    assert [r["sha256"] for r in rows] == [b.sha256, a.sha256]  # by the ratio, against B-WR's order
    assert rows[0]["ranked_by"] == "log_loss_ratio" and rows[0]["full_log_loss_ratio"] == 0.05
    # confirmation: a low ratio p-value and a ratio above 0 pass, whatever B-WR says; a B-WR p-value
    # alone does not
    by_ratio = rev(b, "confirm", 0.45, 0.05, log_loss_ratio_p_value=0.001, b_wr_p_value=0.9)
    by_b_wr = rev(a, "confirm", 0.95, -0.05, log_loss_ratio_p_value=0.9, b_wr_p_value=0.001)
    _, _, passing = verdicts([by_ratio, by_b_wr], 0.1)
    assert passing == {b.sha256}
    # an activation is still confirmed on B-WR
    act = ev(hyp(7), "confirm", 0.9, b_wr_p_value=0.001, log_loss_ratio_p_value=0.9)
    act.log_loss_ratio = -0.3
    assert verdicts([act], 0.1)[2] == {act.hypothesis.sha256}
