"""The reward model on runs of real rounds: training, the registry, loading by alias in a fresh
process, the promotion gate, screening in a round, and bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.reward.features.structural import NAMES, structural
from mlr_mlflow.reward.screen import mean_pairwise_similarity, mmr, select
from mlr_mlflow.tracking import names

from .conftest import SWISH, write

# parents = 0: every round is an independent random sample of the generator, so the held-out round
# is a fair test of ranking (a round bred from parents is a narrow neighbourhood of them, where the
# Spearman of 12 hypotheses says little about which model ranks better)
CONFIG = ('[suite]\ndatasets = ["iris", "xor", "moons", "circles"]\n'
          '[discover]\nparents = 0\nscreen = "one-pass"\n')


def cli(capsys, *args):
    code = main([*args, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three real symbolic rounds (36 hypotheses evaluated one-pass) in a temporary store, after
    three activations a user evaluated, two of them dead: the symbolic generator no longer proposes constants (it
    simplifies them away), so without them the training data would hold no example of a function
    that kills every signal, and no model could know where such a function ranks."""
    tmp = tmp_path_factory.mktemp("reward")
    uri = f"sqlite:///{tmp}/mlflow.db"
    config = write(tmp, "c.toml", CONFIG)
    dead = tmp / "dead"
    dead.mkdir()
    write(dead, "minus.py", "def activation(x):\n    return x * 0 - 1.0\n")
    # and one good idea beside them: a ranker learns only from pairs within a group (here the
    # user's evaluations), and two equally dead functions make no pair
    write(dead, "gelu_approx.py", "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(1.702 * x)\n")
    write(dead, "half.py", "def activation(x):\n    return x * 0 + 0.5\n")
    assert main(["evaluate", str(dead), "--kind", "activation", "--tracking-uri", uri, "--config",
                 str(config), "--seeds", "2"]) == 0
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
    # a better challenger (the default features: behaviour on the probe grid and the transfer probes)
    code, strong = cli(capsys, "reward", "train", *base)
    assert code == 0 and strong["version"] == "2"
    code, out = cli(capsys, "reward", "promote", *base)
    assert code == 0 and out["promoted"], out
    assert out["spearman_challenger"] > out["spearman_champion"]
    assert out["n_sample"] >= 8 and "unbiased" in out["sample"]  # a one-pass round: all of it counts
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
    # the reward model's runs sit in an experiment of their own, not among the hypotheses
    trained = client.get_run(client.get_model_version("mlr-reward-activation", "3").run_id)
    assert client.get_experiment(trained.info.experiment_id).name == "mlr-activation-reward"

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
    # the selection carries each score's spread (the champion's bootstrap ensemble) and its rule
    selection = json.loads(open(client.download_artifacts(out["round_run_id"], names.SELECTION_ARTIFACT,
                                                           str(tmp))).read())
    assert selection["acquisition"]["rule"] == "ucb" and set(selection["spreads"]) == set(selection["scores"])
    assert any(v > 0 for v in selection["spreads"].values())

    # within a round: evaluations that arrive refit the champion in memory, the rest are re-decided
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.reward.screen import load_champion, rescore

    champion = load_champion(client, "activation")
    pool = [Hypothesis("activation", src, "test") for src in (
        SWISH, "def activation(x):\n    return x * 0\n", "import torch\ndef activation(x):\n    return torch.tanh(x)\n",
        "import torch\ndef activation(x):\n    return torch.relu(x) + 0.1 * x\n")]
    before = champion.unwrap_python_model().score_with_spread([h.source for h in pool[2:]])
    again = rescore(champion, pool[:2], [0.9, 0.0], pool[2:], k=1)
    assert len(again["picks"]) == 1 and again["picks"][0] in {h.sha256 for h in pool[2:]}
    assert not np.allclose(before[0], [again["scores"][h.sha256] for h in pool[2:]])

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

    # the screened round is now the holdout: the champion's own picks are no fair sample, so only
    # its exploration picks count, too few to judge: the promotion is refused and says so
    picked = [r.data.tags.get(names.SCREEN_PICK) for r in kids
              if r.data.tags.get(names.STATUS) == "evaluated" and r.data.tags.get(names.VARIANT) == "one-pass"]
    code, newer = cli(capsys, "reward", "train", *base)
    assert code == 0 and newer["holdout_round_ids"] == [run.data.tags[names.ROUND_ID]]
    assert newer["holdout_rounds"] == newer["split"]["holdout_rounds"] == [int(run.data.tags[names.ROUND_NUMBER])]
    code, out = cli(capsys, "reward", "promote", *base)
    assert code == 1 and not out["promoted"] and out["n_sample"] == picked.count("explore") < 8
    assert "unbiased" in out["reason"] and out["champion"] == "2"


@pytest.mark.slow
def test_reward_evaluate_reports_ranking_quality_where_a_round_needs_it(store, capsys):
    uri, config, _ = store
    code, out = cli(capsys, "reward", "evaluate", "--kind", "activation", "--tracking-uri", uri,
                    "--config", str(config), "--features", "structural")
    assert code == 0
    ranking = out["regressor"]["ranking"]
    assert ranking["by_round"]["n"] == out["n"] and -1 <= ranking["by_round"]["spearman"] <= 1
    # two sources (the rounds' and the user's three): each predicted by a model trained on the other
    assert set(ranking["by_source"]) <= {"symbolic", "user"}
    found = ranking["discovery"]["find_10_of_top10"]
    assert 10 <= found["evaluations"] <= out["n"] and found["fraction_of_random"] > 0
    assert 0 <= ranking["discovery"]["ndcg_at_10"] <= 1
    # the same split as `reward train` makes, reported the same way: numbers, not internal ids
    code, trained = cli(capsys, "reward", "train", "--kind", "activation", "--tracking-uri", uri,
                        "--config", str(config), "--features", "structural")
    assert code == 0 and trained["split"] == out["split"]
    # rounds by number; the user's own `evaluate` runs belong to no round and say so
    [newest] = out["split"]["holdout_rounds"]
    assert out["split"]["train_rounds"] == [*range(1, newest), "outside rounds"]
    for alg in ("ranker", "regressor"):
        assert trained[alg]["cross_validated"] == out[alg]["cross_validated"]
        assert trained[alg]["held_out"] == out[alg]["held_out"]
    assert trained["algorithm"] == out["chosen"]
    assert trained["spearman"] == trained[trained["algorithm"]]["held_out"]["spearman"]


def test_too_few_runs_and_unknown_encoder_are_clear_errors(tmp_path, tracking_uri, capsys):
    code, out = cli(capsys, "reward", "train", "--kind", "regularizer", "--tracking-uri", tracking_uri)
    assert code == 2 and "too few evaluated regularizer runs" in out["error"]
    assert "at least 20" in out["error"]
    code, out = cli(capsys, "reward", "promote", "--kind", "regularizer", "--tracking-uri", tracking_uri)
    assert code == 2 and "no challenger" in out["error"]
    from mlr_mlflow.reward.features.embed import Encoder, EncoderError

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
        client.log_metric(run.info.run_id, names.VAL_B_WR, 0.5)
        client.set_terminated(run.info.run_id)
    data = load_dataset(client, exp_id, "activation")
    assert data.sources == [honest]
    # a source no hypothesis could be (10x the validator's limit) is not even parsed
    huge = "def activation(x):\n    return x\n" + "# padding\n" * 30_000
    run = client.create_run(exp_id, tags={
        names.ROLE: "hypothesis", names.VARIANT: "one-pass", names.STATUS: "evaluated",
        names.HYPOTHESIS_SHA256: normalized_sha256(huge), names.KIND: "activation"}, run_name="huge")
    client.log_text(run.info.run_id, huge, names.HYPOTHESIS_ARTIFACT)
    client.log_metric(run.info.run_id, names.B_WR, 0.5)
    client.log_metric(run.info.run_id, names.VAL_B_WR, 0.5)
    client.set_terminated(run.info.run_id)
    assert load_dataset(client, exp_id, "activation").sources == [honest]


def test_targets_are_validation_win_rates_never_test_numbers():
    from mlr_mlflow.reward.ranker import selection_target

    assert selection_target({names.B_WR: 0.9, names.BSOTA_WR: 0.9}) is None  # no validation: not learned
    assert selection_target({names.B_WR: 0.9, names.VAL_B_WR: 0.2, names.VAL_BSOTA_WR: 0.4}) \
        == pytest.approx(0.3)


def test_promotion_sample_leaves_out_what_a_reward_model_picked():
    from mlr_mlflow.reward.ranker import Dataset

    picks = ["", "", "explore", "reward", "reward", "explore"]
    data = Dataset("activation", ["s"] * 6, [str(i) for i in range(6)], np.arange(6.0), np.arange(6.0),
                   ["r1", "r1", "r2", "r2", "r2", "r2"], ["symbolic"] * 6, picks)
    assert data.unbiased().tolist() == [True, True, True, False, False, True]
    assert data.subset(data.unbiased()).shas == ["0", "1", "2", "5"]


def test_parents_are_ranked_by_validation_not_test_win_rate(tracking_uri, tmp_path):
    from mlr_mlflow.hypothesis import normalized_sha256
    from mlr_mlflow.round.proposals import known_hypotheses

    client = MlflowClient(tracking_uri)
    exp_id = client.create_experiment("mlr-activation")
    sources = {"test-best": SWISH, "val-best": "def activation(x):\n    return x * 2\n"}
    for name, (test, val) in {"test-best": (0.9, 0.1), "val-best": (0.2, 0.8)}.items():
        run = client.create_run(exp_id, tags={
            names.ROLE: "hypothesis", names.VARIANT: "one-pass", names.STATUS: "evaluated",
            names.HYPOTHESIS_SHA256: normalized_sha256(sources[name]), names.KIND: "activation"})
        path = tmp_path / name / names.HYPOTHESIS_ARTIFACT
        path.parent.mkdir()
        path.write_text(sources[name])
        client.log_artifact(run.info.run_id, str(path))
        client.log_metric(run.info.run_id, names.B_WR, test)
        client.log_metric(run.info.run_id, names.VAL_B_WR, val)
        client.set_terminated(run.info.run_id)
    _, known = known_hypotheses(client, exp_id, limit=1)
    assert [k.source for k in known] == [sources["val-best"]] and known[0].b_wr == pytest.approx(0.8)


def _dense_and_sparse(seed: int = 0):
    """y = x^2 + noise: 300 rows in [0, 1] (dense), 6 in [2, 3] (sparse)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(0, 1, 300), rng.uniform(2, 3, 6)])
    y = (x ** 2 + rng.normal(0, 0.3, len(x))).astype(np.float32)
    return x.reshape(-1, 1).astype(np.float32), y


def test_ensemble_spread_shrinks_where_data_is_dense():
    from mlr_mlflow.reward.ensemble import fit_ensemble

    X, y = _dense_and_sparse()
    ensemble = fit_ensemble(X, y, ["r"] * len(y), "regressor", members=8)
    _, spread = ensemble.predict(np.array([[0.3], [0.5], [0.7], [2.3], [2.5], [2.7]], np.float32))
    assert spread[:3].mean() < 0.5 * spread[3:].mean(), spread


def test_ucb_and_refit_act_on_the_spread_and_the_new_evaluations(tmp_path):
    from mlr_mlflow.reward.ensemble import Ensemble, acquisition, fit_ensemble, refit

    # equal scores: UCB prefers the uncertain one, the plain mean cannot tell them apart
    value = acquisition(np.array([1.0, 1.0]), np.array([0.1, 0.5]), "ucb", beta=1.0)
    assert value[1] > value[0]
    draws = acquisition(np.array([0.0, 0.0]), np.array([0.0, 1.0]), "thompson", seed=3)
    assert draws[0] == 0.0 and draws[1] != 0.0
    X, y = _dense_and_sparse()
    ensemble = fit_ensemble(X, y, ["r"] * len(y), "regressor", members=4)
    probe = np.array([[0.5], [2.5]], np.float32)
    before, spread_before = ensemble.predict(probe)
    # evaluations arrive in the sparse region: the refitted ensemble is surer there
    X_new = np.linspace(2, 3, 40, dtype=np.float32).reshape(-1, 1)
    updated = refit(ensemble, X_new, (X_new[:, 0] ** 2).astype(np.float32))
    _, spread_after = updated.predict(probe)
    assert spread_after[1] < spread_before[1]
    assert np.allclose(ensemble.predict(probe)[0], before)  # the old ensemble is unchanged
    ensemble.save(tmp_path / "ens")
    assert np.allclose(Ensemble.load(tmp_path / "ens").predict(probe)[0], before, atol=1e-5)


def test_a_challengers_tampered_holdout_rounds_tag_refuses_promotion(tracking_uri):
    from mlr_mlflow.config import UsageError
    from mlr_mlflow.reward.registry import _holdout_rounds

    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("mlr-reward")
    honest = client.create_run(exp, tags={"mlr.reward.holdout_rounds": '["r1", "r2"]'})
    assert _holdout_rounds(client.get_run(honest.info.run_id)) == {"r1", "r2"}
    for value in ('{"r1": 1}', "not json", "[1, 2]", None):
        run = client.create_run(exp, tags={} if value is None else {"mlr.reward.holdout_rounds": value})
        with pytest.raises(UsageError, match="promotion refused"):
            _holdout_rounds(client.get_run(run.info.run_id))
