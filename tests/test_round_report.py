"""How a round presents itself in MLflow: names, description, figures, metrics across rounds."""
import re

from mlflow import MlflowClient

from mlr_mlflow.round.report import description, round_name
from mlr_mlflow.round import RoundSummary
from mlr_mlflow.tracking import names


def _round_runs(client, exp_id):
    return client.search_runs([exp_id], f"tags.`{names.ROLE}` = 'round'",
                              order_by=["attributes.start_time ASC"])


def test_experiments_are_marked_for_model_development_and_baselines_live_apart(rounds_store):
    client = MlflowClient(rounds_store["uri"])
    exps = {e.name: e for e in client.search_experiments()}
    for name in ("mlr-activation", "mlr-activation-baselines"):
        assert exps[name].tags[names.EXPERIMENT_KIND] == names.MODEL_DEVELOPMENT
    kind_runs = client.search_runs([exps["mlr-activation"].experiment_id], max_results=1000)
    base_runs = client.search_runs([exps["mlr-activation-baselines"].experiment_id], max_results=1000)
    assert {r.data.tags[names.ROLE] for r in kind_runs} == {"round", "hypothesis"}
    assert {r.data.tags[names.ROLE] for r in base_runs} == {"baseline"}
    assert all(re.fullmatch(r"baseline \w+ (one-pass|full)", r.info.run_name) for r in base_runs)


def test_rounds_and_their_runs_have_names_that_say_what_they_are(rounds_store):
    client = MlflowClient(rounds_store["uri"])
    rounds = _round_runs(client, rounds_store["exp_id"])
    assert [r.info.run_name for r in rounds] == ["round 1 · symbolic · 4", "round 2 · symbolic · 4"]
    for r in rounds:
        children = client.search_runs([rounds_store["exp_id"]],
                                      f"tags.`{names.PARENT_RUN_ID}` = '{r.info.run_id}'")
        labels = [c.info.run_name for c in children]
        assert len(labels) == len(set(labels)) == 6  # 4 one-pass, 1 full, 1 confirm: each its own name
        for child in children:
            sha, variant = child.data.tags[names.HYPOTHESIS_SHA256], child.data.tags[names.VARIANT]
            assert child.info.run_name == f"{sha[:8]} {variant}"


def test_round_description_counts_links_the_best_and_figures_are_logged(rounds_store):
    client = MlflowClient(rounds_store["uri"])
    summary = rounds_store["rounds"][-1]
    run = client.get_run(summary["round_run_id"])
    note = run.data.tags[names.NOTE]
    assert note.startswith("**Round 2** — 4 generated, 4 valid")
    assert f"#/experiments/{rounds_store['exp_id']}/runs/{summary['best']['run_id']}" in note
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == {"figures/b_wr_distribution.png", "figures/discovery_curve.png"}
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"leaderboard.json"}
    # the suite's repeatability is stated beside the results: this small suite was never measured
    assert "Instrument: this suite's repeatability is not measured: run `mlr-mlflow suite check" in note
    assert run.data.tags[names.INSTRUMENT_SOURCE].startswith("not measured")
    assert "instrument.full_noise_ceiling" not in run.data.metrics
    assert summary["instrument"]["full_noise_ceiling"] is None


def test_round_metrics_carry_the_round_number_as_step(rounds_store):
    client = MlflowClient(rounds_store["uri"])
    first, second = _round_runs(client, rounds_store["exp_id"])
    for number, run in ((1, first), (2, second)):
        for key in ("best_b_wr", "validator_pass_rate", "generated", "discovery.best_b_wr"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [number]
    spent = [client.get_run(r.info.run_id).data.metrics["discovery.evaluations"] for r in (first, second)]
    assert spent == [6, 12]  # 4 one-pass, 1 full and 1 confirmation per round, accumulated


def test_description_says_why_generation_stopped_and_when_nothing_was_evaluated():
    summary = RoundSummary(round_run_id="r", round_id="x", generated=0,
                           stop_reason="token budget spent: 10 of 10 tokens")
    text = description(summary, "7", 3)
    assert "Generation stopped early: token budget spent" in text
    assert "No hypothesis was evaluated in this round." in text
    assert round_name(3, "llm", 32) == "round 3 · llm · 32"


def test_a_round_says_where_it_stands_against_earlier_rounds():
    from mlr_mlflow.round.report import standing

    def rounds(*bests):
        return [{"round_best": b} for b in bests]

    assert standing(rounds(0.792)) == "Best B-WR 0.792: the first round of this kind to report one."
    assert standing(rounds(0.792, 0.75, 0.792)) == "Best B-WR 0.792 ties the best so far (round 1, 0.792)."
    assert "improves on the best so far (round 2, 0.800) by +0.020" in standing(rounds(0.7, 0.8, 0.82))
    assert "stays below the best so far (round 1, 0.900)" in standing(rounds(0.9, None, 0.5))
    assert standing(rounds(0.5, None)) is None


def test_the_description_says_why_hypotheses_were_rejected():
    summary = RoundSummary(round_run_id="r", round_id="x", generated=4)
    for reasons in (["line 3: import of 'os' is not allowed for activation hypotheses"],
                    ["line 7: import of 'sys' is not allowed for activation hypotheses"],
                    ["no usable code in the reply"], []):
        summary.reject(reasons)
    text = description(summary, "7", 2)
    assert ("Rejected 4: 2 × line N: import of … is not allowed for activation hypotheses; "
            "1 × no usable code in the reply; 1 × no reason recorded.") in text
