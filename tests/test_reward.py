"""The reward model on runs of real rounds: training, the registry, loading by alias in a fresh
process, the promotion gate, screening in a round, and bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.reward.features import NAMES, structural
from mlr_mlflow.reward.screen import mean_pairwise_similarity, mmr, select
from mlr_mlflow.tracking import names

from .conftest import SWISH, write

CONFIG = ('[suite]\ndatasets = ["iris", "xor", "moons", "circles"]\n'
          '[discover]\nparents = 4\nscreen = "one-pass"\n')


def cli(capsys, *args):
    code = main([*args, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three real symbolic rounds (36 hypotheses evaluated one-pass) in a temporary store."""
    tmp = tmp_path_factory.mktemp("reward")
    uri = f"sqlite:///{tmp}/mlflow.db"
    config = write(tmp, "c.toml", CONFIG)
    for seed in (1, 2, 3):
        assert main(["discover", "--tracking-uri", uri, "--config", str(config), "--n", "12",
                     "--top-k", "0", "--seeds", "2", "--seed", str(seed)]) == 0
    return uri, config, tmp


def test_structural_features_read_the_code_without_running_it():
    v = dict(zip(NAMES, structural(SWISH)))
    assert v["calls.sigmoid"] == 1 and v["ops.Mult"] == 1 and v["parse_failed"] == 0
    assert dict(zip(NAMES, structural("def activation(x:")))["parse_failed"] == 1


def test_mmr_prefers_a_different_idea_over_a_near_duplicate():
    scores = np.array([1.0, 0.99, 0.8])
    vectors = np.array([[1, 0], [1, 0], [0, 1]], dtype=float)
    assert mmr(scores, vectors, 2, lam=0.5) == [0, 2]
    assert mmr(scores, vectors, 2, lam=1.0) == [0, 1]  # score only: the duplicate wins
    picks, explored = select(np.arange(10.0), np.eye(10), 4, explore=0.25, lam=0.7, seed=0)
    assert len(picks) == 4 and len(explored) == 1 and explored[0] in picks
    assert mean_pairwise_similarity(vectors[[0, 1]]) == pytest.approx(1.0)


@pytest.mark.slow
def test_train_register_load_by_alias_and_promotion_gate(store, capsys):
    uri, config, tmp = store
    base = ["--kind", "activation", "--tracking-uri", uri, "--config", str(config)]
    # a weak first model (code structure only) becomes champion: there is none yet
    code, weak = cli(capsys, "reward", "train", *base, "--features", "structural")
    assert code == 0 and weak["version"] == "1" and weak["alias"] == "challenger"
    code, out = cli(capsys, "reward", "promote", *base)
    assert code == 0 and out["promoted"] and "first champion" in out["reason"]
    # a better challenger (behaviour on the probe grid) is promoted
    code, strong = cli(capsys, "reward", "train", *base)
    assert code == 0 and strong["version"] == "2"
    code, out = cli(capsys, "reward", "promote", *base)
    assert code == 0 and out["promoted"], out
    assert out["spearman_challenger"] > out["spearman_champion"]
    # a worse challenger is refused, with exit status 1 and the comparison on both versions
    code, worse = cli(capsys, "reward", "train", *base, "--features", "structural")
    code, out = cli(capsys, "reward", "promote", *base)
    assert code == 1 and not out["promoted"] and out["champion"] == "2"
    client = MlflowClient(uri)
    for version in ("2", "3"):
        tags = client.get_model_version("mlr-reward-activation", version).tags
        assert any(k.startswith("mlr.promotion.v3_vs_v2") for k in tags)
    assert str(client.get_model_version_by_alias("mlr-reward-activation", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("mlr-reward-activation", "challenger").version) == "3"

    # the champion loads by alias in a fresh process and scores code strings
    script = (
        "import mlflow, pandas as pd, json\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        "m = mlflow.pyfunc.load_model('models:/mlr-reward-activation@champion')\n"
        "codes = ['import torch\\ndef activation(x):\\n    return x * torch.sigmoid(x)\\n',\n"
        "         'def activation(x):\\n    return x * 0\\n']\n"
        "print(json.dumps([float(s) for s in m.predict(pd.DataFrame({'code': codes}))]))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(scores) == 2 and all(np.isfinite(scores))
    assert scores[0] > scores[1]  # swish above a function that kills every signal

    # with a champion, a round screens before training: only eta * top-k (exploration included)
    # are trained one-pass, and top-k of those in full
    screen_config = write(tmp, "s.toml", CONFIG.replace('"one-pass"', '"auto"\neta = 2'))
    code, out = cli(capsys, "discover", "--tracking-uri", uri, "--config", str(screen_config),
                    "--n", "8", "--top-k", "3", "--seeds", "2", "--seed", "9")
    assert code == 0 and out["evaluated"] <= 6 and out["full_evaluated"] <= 3
    run = client.get_run(out["round_run_id"])
    assert run.data.tags["mlr.screen"] == "reward"
    assert "selection_mean_similarity" in run.data.metrics
    kids = client.search_runs([run.info.experiment_id],
                              f"tags.`{names.PARENT_RUN_ID}` = '{out['round_run_id']}'")
    screened = [r for r in kids if r.data.tags.get(names.STATUS) == "screened"]
    assert len(screened) == out["valid"] - out["evaluated"]
    assert all("reward.score" in r.data.metrics for r in screened)
    assert all(r.info.status != "RUNNING" for r in kids)

    # the dashboard reads what the registry records: versions, held-out predictions, champions
    from mlr_mlflow.dashboard import data
    from mlr_mlflow.tracking.dashboard_queries import snapshot

    reward = data.reward(snapshot(client))
    assert [v["version"] for v in reward["versions"]] == [1, 2, 3]
    assert all(v["predictions"] and v["holdout_spearman"] is not None for v in reward["versions"])
    assert [v["version"] for v in reward["champions"]] == [1, 2]
    assert {v["version"]: v["alias"] for v in reward["versions"]} == {1: "", 2: "champion",
                                                                       3: "challenger"}
    assert [d["run_id"] for d in reward["diversity"]] == [out["round_run_id"]]


@pytest.mark.slow
def test_reward_evaluate_reports_ranking_quality_where_a_round_needs_it(store, capsys):
    uri, config, _ = store
    code, out = cli(capsys, "reward", "evaluate", "--kind", "activation", "--tracking-uri", uri,
                    "--config", str(config), "--features", "structural")
    assert code == 0
    ranking = out["regressor"]["ranking"]
    assert ranking["by_round"]["n"] == out["n"] and -1 <= ranking["by_round"]["spearman"] <= 1
    assert set(ranking["by_source"]) <= {"symbolic"}  # one source: nothing else to train on
    found = ranking["discovery"]["find_10_of_top10"]
    assert 10 <= found["evaluations"] <= out["n"] and found["fraction_of_random"] > 0
    assert 0 <= ranking["discovery"]["ndcg_at_10"] <= 1


def test_too_few_runs_and_unknown_encoder_are_clear_errors(tmp_path, tracking_uri, capsys):
    code, out = cli(capsys, "reward", "train", "--kind", "regularizer", "--tracking-uri", tracking_uri)
    assert code == 2 and "too few evaluated regularizer runs" in out["error"]
    assert "at least 20" in out["error"]
    code, out = cli(capsys, "reward", "promote", "--kind", "regularizer", "--tracking-uri", tracking_uri)
    assert code == 2 and "no challenger" in out["error"]
    from mlr_mlflow.reward.embed import Encoder, EncoderError

    with pytest.raises(EncoderError, match="cannot be loaded offline"):
        Encoder("microsoft/codebert-base").embed(["def activation(x):\n    return x\n"])


def test_training_data_leave_out_an_artifact_that_no_longer_matches_its_hash(tracking_uri, tmp_path):
    """An artifact changed in the store after evaluation is not learned from (nor run on the grid)."""
    from mlr_mlflow.hypothesis import normalized_sha256
    from mlr_mlflow.reward.ranker import load_dataset

    client = MlflowClient(tracking_uri)
    exp_id = client.create_experiment("mlr-activation")
    honest, tampered, evaluated = SWISH, "def activation(x):\n    return x * 0\n", "def activation(x):\n    return x * 2\n"
    for name, logged, tagged in (("honest", honest, honest), ("tampered", tampered, evaluated)):
        run = client.create_run(exp_id, tags={
            names.ROLE: "hypothesis", names.VARIANT: "one-pass", names.STATUS: "evaluated",
            names.HYPOTHESIS_SHA256: normalized_sha256(tagged), names.KIND: "activation"}, run_name=name)
        path = tmp_path / name / names.HYPOTHESIS_ARTIFACT
        path.parent.mkdir()
        path.write_text(logged)
        client.log_artifact(run.info.run_id, str(path))
        client.log_metric(run.info.run_id, names.B_WR, 0.5)
        client.set_terminated(run.info.run_id)
    data = load_dataset(client, exp_id, "activation")
    assert data.sources == [honest]
