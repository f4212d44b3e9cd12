"""Discovery rounds end to end on a real sqlite store: structure, dedup, leaderboard, bad input."""
import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.tracking import names

from .conftest import write

SMALL = '[suite]\ndatasets = ["iris", "xor"]\n[discover]\nparents = 0\n[confirm]\nseeds = 1\n'


def discover(capsys, uri, config, *args):
    code = main(["discover", "--tracking-uri", uri, "--config", str(config), "--seeds", "1",
                 "--json", *args])
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured


def children(client, round_run_id):
    exp = client.get_run(round_run_id).info.experiment_id
    return client.search_runs([exp], f"tags.`{names.PARENT_RUN_ID}` = '{round_run_id}'",
                              max_results=1000)


@pytest.mark.slow
def test_symbolic_round_end_to_end_and_dedup(tmp_path, tracking_uri, capsys):
    config = write(tmp_path, "c.toml", SMALL)
    code, out, captured = discover(capsys, tracking_uri, config, "--n", "6", "--top-k", "2",
                                   "--seed", "7")
    assert code == 0, captured.err
    assert (out["generated"], out["evaluated"]) == (6, out["valid"]) and out["valid"] >= 5
    client = MlflowClient(tracking_uri)
    parent = client.get_run(out["round_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags[names.ROLE] == "round"
    assert parent.data.metrics["generated"] == 6
    assert parent.data.metrics["validator_pass_rate"] == pytest.approx(out["valid"] / 6)
    kids = children(client, out["round_run_id"])
    one_pass = [r for r in kids if r.data.tags[names.VARIANT] == "one-pass"]
    full = [r for r in kids if r.data.tags[names.VARIANT] == "full"]
    confirms = [r for r in kids if r.data.tags[names.VARIANT] == "confirm"]
    assert len(one_pass) == 6 and len(full) == 2 and len(confirms) == 2
    for run in kids:
        tags = run.data.tags
        assert tags[names.ROUND_ID] == out["round_id"] and tags[names.GENERATOR] == "symbolic"
        assert tags[names.KIND] == "activation" and names.SYMBOLIC_GENOME in tags
        assert run.info.status in ("FINISHED", "FAILED")
    # the full runs are the top 2 one-pass hypotheses by validation win rates (never test ones)
    ranked = sorted((r for r in one_pass if names.B_WR in r.data.metrics),
                    key=lambda r: (-r.data.metrics[names.VAL_B_WR], -r.data.metrics[names.VAL_BSOTA_WR],
                                   r.data.tags[names.HYPOTHESIS_SHA256]))
    assert {r.data.tags[names.HYPOTHESIS_SHA256] for r in ranked[:2]} == \
        {r.data.tags[names.HYPOTHESIS_SHA256] for r in full}
    # the leaderboard artifact matches the runs
    path = client.download_artifacts(out["round_run_id"], names.LEADERBOARD_ARTIFACT, str(tmp_path))
    table = json.loads(Path(path).read_text())
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    by_id = {r.info.run_id: r for r in kids}
    assert len(rows) == out["evaluated"]
    for row in rows:
        assert by_id[row["one_pass_run_id"]].data.metrics[names.B_WR] == row["one_pass_b_wr"]
        if row["full_run_id"]:
            assert by_id[row["full_run_id"]].data.metrics[names.B_WR] == row["full_b_wr"]
    assert out["best"]["run_id"] == rows[0]["confirm_run_id"] and out["best"]["variant"] == "confirm"
    assert out["selected"] == 2 and 0 <= out["confirmed"] <= 2
    assert out["best"]["b_wr"] == by_id[out["best"]["run_id"]].data.metrics[names.B_WR]

    # same seed again: the generator steps around the six the experiment holds (issue 31), so the
    # round gets three new ones without proposing a repeat
    code, again, _ = discover(capsys, tracking_uri, config, "--n", "3", "--top-k", "0", "--seed", "7")
    assert code == 0 and again["generated"] == 3 and again["duplicates"] == 0
    exp = parent.info.experiment_id
    shas = [r.data.tags[names.HYPOTHESIS_SHA256] for r in client.search_runs(
        [exp], f"tags.`{names.VARIANT}` = 'one-pass' and tags.`{names.ROLE}` = 'hypothesis'",
        max_results=1000)]
    assert len(shas) == 9 == len(set(shas))  # never evaluated twice
    path = client.download_artifacts(again["round_run_id"], names.GENERATION_ARTIFACT, str(tmp_path))
    records = json.loads(Path(path).read_text())
    assert [r["status"] for r in records] == ["accepted"] * 3  # no repeat was even proposed


def test_unreachable_llm_endpoint_stops_cleanly(tmp_path, tracking_uri, capsys):
    config = write(tmp_path, "c.toml", SMALL + "[llm]\nmax_retries = 0\ntimeout_s = 2\n")
    code, out, captured = discover(capsys, tracking_uri, config, "--generator", "llm",
                                   "--base-url", "http://127.0.0.1:9/v1", "--n", "2")
    assert code == 2 and "cannot reach http://127.0.0.1:9/v1" in out["error"]
    assert "Traceback" not in captured.err
    client = MlflowClient(tracking_uri)
    [run] = client.search_runs([client.get_experiment_by_name("mlr-activation").experiment_id])
    assert run.info.status == "FAILED" and "cannot reach" in run.data.tags[names.REASONS]
    assert "cannot reach" in run.data.tags[names.ROUND_STOP_REASON]


def test_bad_round_arguments_are_usage_errors(tmp_path, tracking_uri, capsys):
    config = write(tmp_path, "c.toml", SMALL)
    code, out, _ = discover(capsys, tracking_uri, config, "--n", "0")
    assert code == 2 and "--n" in out["error"]
    code, out, _ = discover(capsys, tracking_uri, write(tmp_path, "d.toml", "[llm]\nprompt = 'loud'\n"),
                            "--generator", "llm")
    assert code == 2 and "[llm] prompt: expected one of" in out["error"]


def test_a_store_refusing_writes_mid_round_leaves_no_run_running(tmp_path, tracking_uri):
    """Refused from the first write (the round's parameters) or after generation (its record and
    every tag after it): the round run is ended FAILED all the same, and nothing stays RUNNING."""
    from mlflow.exceptions import MlflowException

    from mlr_mlflow.config import Config, with_overrides
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import connect

    from .faults import Flaky, refused

    config = with_overrides(Config(), suite={"datasets": ("iris", "xor")},
                            discover={"screen": "one-pass", "parents": 0})
    refusing = {"on": False}

    def after_generation(*args, **kwargs):
        refusing["on"] = True
        return refused("disk quota exceeded")

    def once_refusing(*args, **kwargs):
        return refused("disk quota exceeded") if refusing["on"] else None

    for faults in ({"log_batch": lambda *a, **k: refused("disk quota exceeded")},
                   {"log_text": after_generation, "log_batch": once_refusing}):
        refusing["on"] = False
        with pytest.raises(MlflowException, match="disk quota"):
            Round(Flaky(connect(tracking_uri), **faults), config, "activation").run(2, 0, 1, seed=1)
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("mlr-activation").experiment_id])
    assert len(runs) == 2 and all(r.info.status == "FAILED" for r in runs)


@pytest.mark.slow
def test_a_reward_screened_round_halves_eta_times_top_k_one_pass_then_top_k_full(tracking_uri):
    """Successive halving: the champion picks eta * top_k of the valid proposals, they are trained
    one-pass, and exactly their best top_k by validation B-WR are trained in full (then confirmed);
    the rest are recorded as screened out. The round states its cost in full-training equivalents
    (confirmation off here, to keep the test short: test_resume_decisions's halving test counts it)."""
    from mlr_mlflow.config import Config, with_overrides
    from mlr_mlflow.round.halving import COST_METRIC
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import connect

    from .faults import register_champion

    register_champion(tracking_uri, "activation", sign=1.0)
    config = with_overrides(Config(), suite={"datasets": ("iris",)}, confirm={"enabled": False},
                            discover={"screen": "reward", "parents": 0, "explore": 0.0, "eta": 2})
    summary = Round(connect(tracking_uri), config, "activation").run(6, 2, 1, seed=4)
    client = MlflowClient(tracking_uri)
    kids = children(client, summary.round_run_id)
    by_variant = {}
    for run in kids:
        by_variant.setdefault(run.data.tags[names.VARIANT], []).append(run)
    share = min(summary.valid, 2 * 2)
    assert summary.valid >= 4  # the symbolic proposals of this seed are valid enough to halve
    assert len(by_variant["one-pass"]) == share
    assert len(by_variant["full"]) == 2 and "confirm" not in by_variant
    assert len(by_variant["screened"]) == summary.valid - share
    one_pass = [r for r in by_variant["one-pass"] if names.B_WR in r.data.metrics]
    ranked = sorted(one_pass, key=lambda r: (-r.data.metrics[names.VAL_B_WR],
                                             -r.data.metrics[names.VAL_BSOTA_WR],
                                             r.data.tags[names.HYPOTHESIS_SHA256]))
    assert {r.data.tags[names.HYPOTHESIS_SHA256] for r in ranked[:2]} == \
        {r.data.tags[names.HYPOTHESIS_SHA256] for r in by_variant["full"]}
    # nominal cost: a one-pass epoch is 1/max_epochs of a full training
    expected = share / config.model.max_epochs + 2
    metrics = client.get_run(summary.round_run_id).data.metrics
    assert metrics[COST_METRIC] == pytest.approx(expected, abs=1e-3)
    assert summary.to_dict()[COST_METRIC] == pytest.approx(expected, abs=1e-3)
    assert client.get_run(summary.round_run_id).data.params["eta"] == "2"


def test_waves_refit_the_champion_on_what_the_round_evaluated(tracking_uri):
    """[discover] waves = 2: the champion picks the first half of the one-pass share; refitted on
    those evaluations' validation targets (here a model whose preference then turns round), it
    picks the second half among the rest. Both decisions are in selection.json, each run says its
    wave, and the rung still trains exactly eta * top_k."""
    from mlr_mlflow.config import Config, with_overrides
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import connect
    from mlr_mlflow.tracking.runs import read_json

    from .faults import RefitScorer, register_champion

    register_champion(tracking_uri, "activation", 1.0, model=RefitScorer(1.0))
    config = with_overrides(Config(), suite={"datasets": ("iris",)}, confirm={"enabled": False},
                            discover={"screen": "reward", "parents": 0, "explore": 0.0, "eta": 2,
                                      "waves": 2, "mmr_lambda": 1.0})
    summary = Round(connect(tracking_uri), config, "activation").run(8, 2, 1, seed=4)
    client = MlflowClient(tracking_uri)
    selection = read_json(client, summary.round_run_id, names.SELECTION_ARTIFACT)
    assert summary.valid >= 6 and selection["wave_sizes"] == [2, 2]
    first, second = selection["waves"]
    assert selection["picks"] == first + second
    [refit] = selection["refits"]  # the first wave's two evaluations, by the registered champion
    assert (refit["wave"], refit["learned"]) == (1, 2) and "model_run_id" in refit
    scores = selection["scores"]  # the champion's scores before any refit: longer code higher
    rest = set(scores) - set(first)
    assert min(scores[s] for s in first) >= max(scores[s] for s in rest)
    # refitted, it prefers short code: the second wave is the shortest of what was left
    assert max(scores[s] for s in second) <= min(scores[s] for s in rest - set(second))
    kids = children(client, summary.round_run_id)
    waves = {r.data.tags[names.HYPOTHESIS_SHA256]: r.data.tags.get("mlr.screen.wave")
             for r in kids if r.data.tags[names.VARIANT] == "one-pass"}
    assert waves == {**{s: "0" for s in first}, **{s: "1" for s in second}}
    assert client.get_run(summary.round_run_id).data.metrics["screen_waves"] == 2


def test_eta_below_one_is_a_config_error(tmp_path, tracking_uri, capsys):
    config = write(tmp_path, "c.toml", SMALL.replace("parents = 0", "parents = 0\neta = 0"))
    code, out, _ = discover(capsys, tracking_uri, config, "--n", "2")
    assert code == 2 and "eta" in out["error"]
    assert not MlflowClient(tracking_uri).search_experiments(filter_string="name = 'mlr-activation'")


@pytest.mark.slow
def test_a_regularizer_round_is_ranked_and_confirmed_by_the_log_loss_ratio(tmp_path, tracking_uri, capsys):
    """Regularizers' B-WR does not repeat (evaluate/verdict.py): their round orders its leaderboard by
    the test log-loss ratio every run logs, confirms on it, and says so in its description."""
    config = write(tmp_path, "c.toml", SMALL)
    code, out, captured = discover(capsys, tracking_uri, config, "--kind", "regularizer", "--n", "5",
                                   "--top-k", "2", "--seed", "3")
    assert code == 0, captured.err
    client = MlflowClient(tracking_uri)
    kids = children(client, out["round_run_id"])
    evaluated = [r for r in kids if r.data.tags.get(names.STATUS) == "evaluated"]
    assert evaluated and all(names.LOG_LOSS_RATIO in r.data.metrics for r in evaluated)
    assert all("log_loss_ratio_p_value" in r.data.metrics for r in evaluated)
    path = client.download_artifacts(out["round_run_id"], names.LEADERBOARD_ARTIFACT, str(tmp_path))
    table = json.loads(Path(path).read_text())
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert {r["ranked_by"] for r in rows} == {"log_loss_ratio"}
    by_id = {r.info.run_id: r for r in kids}
    unconfirmed = [r for r in rows if not r["confirmed"] and r["full_run_id"]]
    ratios = [by_id[r["confirm_run_id"]].data.metrics[names.LOG_LOSS_RATIO] if r["confirm_run_id"] else None
              for r in unconfirmed]
    known = [x for x in ratios if x is not None]
    assert known == sorted(known, reverse=True)  # confirmation's ratio orders what was not confirmed
    for row in rows:
        if row["confirmed"]:  # confirmed on the ratio: above 0 on fresh seeds and split
            assert by_id[row["confirm_run_id"]].data.metrics[names.LOG_LOSS_RATIO] > 0
    note = client.get_run(out["round_run_id"]).data.tags[names.NOTE]
    assert "Ranked by the test log-loss ratio" in note and "full log-loss ratio" in note
    assert "Instrument: this suite's repeatability is not measured" in note  # a suite no check measured
