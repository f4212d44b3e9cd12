"""The confirmation stage of a round, on a real sqlite store and real training: fresh seeds and
split, confirmed only what passes Benjamini-Hochberg, never a ReLU in disguise, idempotent resume."""
import json
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.config import config_from_dict
from mlr_mlflow.round.confirm import confirmation_config
from mlr_mlflow.generate import Proposal
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import connect, names

from .conftest import SWISH, write

RELU_IN_DISGUISE = [
    "import torch\n\ndef activation(x):\n    return torch.clamp(x, min=0)\n",
    "def activation(x):\n    return (x + x.abs()) / 2\n",
]
# dedup off: ReLU in disguise and Swish (= the silu reference) must be trained here, not turned away
CONFIG = {"suite": {"datasets": ["iris", "xor"]},
          "discover": {"screen": "one-pass", "parents": 0, "dedup": False}, "confirm": {"seeds": 3}}


class Fixed:
    """A generator that proposes the given sources, in order."""

    name = "fixed"

    def __init__(self, sources):
        self.sources = sources

    def propose(self, context):
        for source in self.sources:
            yield Proposal(source=source)


def runs_of(client, round_run_id, variant=None):
    exp = client.get_run(round_run_id).info.experiment_id
    found = client.search_runs([exp], f"tags.`{names.PARENT_RUN_ID}` = '{round_run_id}'",
                               max_results=1000)
    return [r for r in found if variant is None or r.data.tags.get(names.VARIANT) == variant]


@pytest.mark.slow
def test_confirmed_are_selected_on_fresh_data_and_relu_in_disguise_is_never_confirmed(tracking_uri):
    client = connect(tracking_uri)
    config = config_from_dict(CONFIG)
    sources = RELU_IN_DISGUISE + [SWISH]
    summary = Round(client, config, "activation", generator=Fixed(sources)).run(
        n=3, top_k=3, seeds=1, seed=0)
    full, confirms = runs_of(client, summary.round_run_id, "full"), \
        runs_of(client, summary.round_run_id, "confirm")
    selected = {r.data.tags[names.HYPOTHESIS_SHA256] for r in full if r.info.status == "FINISHED"}
    confirmed = {r.data.tags[names.HYPOTHESIS_SHA256] for r in confirms
                 if r.data.tags.get(names.CONFIRMED) == "true"}
    round_run = client.get_run(summary.round_run_id)
    assert round_run.data.metrics["selected"] == len(selected) == summary.selected == 3
    assert round_run.data.metrics["confirmed"] == len(confirmed) == summary.confirmed
    assert confirmed <= selected
    assert {r.data.tags[names.HYPOTHESIS_SHA256] for r in confirms} == selected
    # confirmation seeds and split are disjoint from the ones the selection saw
    for run in confirms:
        p = run.data.params
        assert int(p["first_seed"]) == 1000 and int(p["seeds"]) == 3 and int(p["split_seed"]) == 1
        assert run.data.tags[names.CONFIRMED] in ("true", "false")
        assert names.B_WR_Q_VALUE in run.data.metrics
    for run in runs_of(client, summary.round_run_id, "one-pass") + full:
        assert (int(run.data.params["first_seed"]), int(run.data.params["split_seed"])) == (0, 0)
    digests = {run.info.run_id: {i.dataset.digest for i in run.inputs.dataset_inputs}
               for run in full + confirms}
    assert not set().union(*(digests[r.info.run_id] for r in full)) & \
        set().union(*(digests[r.info.run_id] for r in confirms))  # another split: other data
    # behaviour identical to the baseline ReLU: ties everywhere, p = 1, never "better"
    relu_like = {h.sha256 for h in summary_hypotheses(sources[:2])}
    for run in confirms:
        if run.data.tags[names.HYPOTHESIS_SHA256] in relu_like:
            assert run.data.tags[names.CONFIRMED] == "false"
            assert run.data.metrics["b_wr"] == 0.5 and run.data.metrics["b_wr_p_value"] == 1.0
    # the leaderboard shows the confirmation with its interval, and ranks confirmed rows first
    rows = summary.leaderboard
    assert all(r["confirm_run_id"] for r in rows)
    assert all(r["confirm_b_wr_ci_low"] <= r["confirm_b_wr"] <= r["confirm_b_wr_ci_high"] for r in rows)
    assert [r["confirmed"] for r in rows] == sorted((r["confirmed"] for r in rows), reverse=True)
    assert summary.best["variant"] == "confirm" and summary.best["run_id"] == rows[0]["confirm_run_id"]


def summary_hypotheses(sources):
    from mlr_mlflow.hypothesis import Hypothesis

    return [Hypothesis("activation", s, "fixed") for s in sources]


def test_confirmation_data_must_be_fresh():
    config = config_from_dict({"confirm": {"first_seed": 2}})
    with pytest.raises(ValueError, match="overlap"):
        confirmation_config(config, seeds=3)
    with pytest.raises(ValueError, match="split_seed"):
        confirmation_config(config_from_dict({"confirm": {"split_seed": 0}}), seeds=3)
    fresh = confirmation_config(config_from_dict({}), seeds=3)
    assert (fresh.suite.first_seed, fresh.suite.split_seed) == (1000, 1)


def test_overlapping_confirmation_seeds_are_refused_before_any_work(tmp_path, tracking_uri, capsys):
    config = write(tmp_path, "c.toml", '[suite]\ndatasets = ["iris"]\n[confirm]\nfirst_seed = 1\n')
    code = main(["discover", "--tracking-uri", tracking_uri, "--config", str(config), "--seeds", "2",
                 "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 2 and "overlap" in out["error"]
    assert MlflowClient(tracking_uri).get_experiment_by_name("mlr-activation") is None or \
        not MlflowClient(tracking_uri).search_runs(
            [MlflowClient(tracking_uri).get_experiment_by_name("mlr-activation").experiment_id])


@pytest.mark.slow
def test_round_killed_during_confirmation_resumes_without_duplicate_confirm_runs(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = write(tmp_path, "c.toml", '[suite]\ndatasets = ["iris", "xor"]\n[discover]\n'
                                       'screen = "one-pass"\n[confirm]\nseeds = 1\n')
    args = ["--tracking-uri", uri, "--config", str(config), "--seeds", "1"]
    client = MlflowClient(uri)
    client.search_experiments()  # the store's tables exist before two processes open it
    proc = subprocess.Popen([sys.executable, "-m", "mlr_mlflow", "discover", *args, "--n", "4",
                             "--top-k", "2", "--seed", "5"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            exp = client.get_experiment_by_name("mlr-activation")
            if exp and client.search_runs([exp.experiment_id], f"tags.`{names.VARIANT}` = 'confirm'"):
                break
            assert proc.poll() is None, "the round ended before its confirmation stage was seen"
            time.sleep(0.1)
        else:
            raise AssertionError("the round never reached confirmation")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    exp = exp.experiment_id
    [round_run] = client.search_runs([exp], f"tags.`{names.ROLE}` = 'round'")
    assert round_run.info.status == "RUNNING"
    cut = client.search_runs([exp], f"tags.`{names.VARIANT}` = 'confirm'")
    assert any(r.info.status == "RUNNING" for r in cut)  # killed in the middle of confirmation
    assert main(["discover", "--resume", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["round_run_id"] == round_run.info.run_id
    after = client.search_runs([exp], f"tags.`{names.ROLE}` = 'hypothesis'", max_results=1000)
    assert all(r.info.status != "RUNNING" for r in after)
    full = {r.data.tags[names.HYPOTHESIS_SHA256] for r in after
            if r.data.tags[names.VARIANT] == "full" and r.data.tags[names.STATUS] == "evaluated"}
    confirms = [r.data.tags[names.HYPOTHESIS_SHA256] for r in after
                if r.data.tags[names.VARIANT] == "confirm" and r.data.tags[names.STATUS] == "evaluated"]
    assert sorted(confirms) == sorted(full) and len(confirms) == len(set(confirms))  # once each
    metrics = client.get_run(round_run.info.run_id).data.metrics
    assert metrics["selected"] == len(full) == out["selected"]
    assert metrics["confirmed"] == out["confirmed"] == sum(
        r.data.tags.get(names.CONFIRMED) == "true" for r in after if r.data.tags[names.VARIANT] == "confirm")


def test_p_values_read_back_from_kept_confirmation_runs_are_checked(tracking_uri):
    """A confirmation run kept from before a kill is read back from the store, where anyone who may
    write can change its metrics: a p-value or B-WR that no test gives refuses the round."""
    from mlr_mlflow.config import Config, UsageError
    from mlr_mlflow.round.confirm import confirm
    from mlr_mlflow.evaluate.evaluation import Evaluation
    from mlr_mlflow.hypothesis import Hypothesis

    client = connect(tracking_uri)
    exp = client.create_experiment("rounds")
    round_run, full_run, kept_run = (client.create_run(exp).info.run_id for _ in range(3))
    h = Hypothesis("activation", SWISH)
    full = [Evaluation(h, full_run, "full", b_wr=0.9)]
    for p, b_wr in [(-3.0, 0.9), (0.01, 7.0), ("0", 0.9)]:
        kept = Evaluation(h, kept_run, "confirm", b_wr=b_wr, uncertainty={names.B_WR_P_VALUE: p})
        with pytest.raises(UsageError, match="refusing to confirm"):
            confirm(client, Config(), [], full, 3, round_run, lambda *a: [kept])
    kept = Evaluation(h, kept_run, "confirm", b_wr=0.9, uncertainty={names.B_WR_P_VALUE: float("nan")})
    result = confirm(client, Config(), [], full, 3, round_run, lambda *a: [kept])
    assert result.confirmed == set()  # no test was possible: not confirmed, not refused
