"""The instrument: the screening statistic on every run, the panel's order kept across rungs, the
default suite as a named preset that leaves old runs readable, and the held-out transfer test."""
import json

import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.config import Config, config_from_dict, for_kind, with_overrides
from mlr_mlflow.config.evaluation import CLASSIC_DATASETS, SUITES
from mlr_mlflow.evaluate.baselines import components_for
from mlr_mlflow.evaluate.training.dispatch import regroup, train_models
from mlr_mlflow.evaluate.datasets import load_suite
from mlr_mlflow.evaluate.reliability import statistic
from mlr_mlflow.evaluate.screen import SCREEN_STATISTIC, screen_score
from mlr_mlflow.kinds.panels import member_source, panel
from mlr_mlflow.tracking import names

from .conftest import SWISH, write


def test_every_evaluated_run_logs_screen_score_and_names_its_statistic(tmp_path, tracking_uri, capsys):
    path = write(tmp_path, "swish.py", SWISH)
    code = main(["evaluate", str(path), "--kind", "activation", "--tracking-uri", tracking_uri, "--json",
                 "--seeds", "2", "--datasets", "iris,moons"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and 0.0 <= out["screen_score"] <= 1.0
    run = MlflowClient(tracking_uri).get_run(out["run_id"])
    assert run.data.metrics[names.SCREEN_SCORE] == pytest.approx(out["screen_score"])
    assert run.data.tags[names.SCREEN_STATISTIC] == SCREEN_STATISTIC


def _panel_results(members, variant, config, seeds):
    suite = load_suite(config.suite)
    models = [{"key": f"{m.name}:{s}", "seed": s,
               "components": components_for("activation", member_source("activation", m))}
              for m in members for s in seeds]
    raw = train_models(models, suite, variant, config)
    assert not raw["errors"], raw["errors"]
    return {m.name: regroup(raw["results"], m.name, seeds) for m in members}


@pytest.mark.slow
def test_a_degenerate_and_a_strong_panel_member_keep_their_order_at_both_rungs():
    """The screening statistic at one pass must not invert what full training shows (issue: the
    old one-pass B-WR ranked smooth activations below ReLU while full training put them above)."""
    config = for_kind(with_overrides(Config(), suite={"datasets": ("moons", "hastie")}), "activation")
    by_name = {m.name: m for m in panel("activation")}
    members = [by_name[n] for n in ("relu", "gelu", "silu", "mish", "elu", "zero", "identity")]
    seeds = [0, 1]
    one = _panel_results(members, "one-pass", config, seeds)
    full = _panel_results(members, "full", config, seeds)
    refs = lambda res, names_: {n: res[n] for n in names_}  # noqa: E731
    base, sota = ["relu"], ["gelu", "silu", "mish", "elu"]
    for weak in ("zero", "identity"):
        cheap = {n: screen_score(one[n], refs(one, base), refs(one, sota), 1e-3) for n in ("gelu", weak)}
        truth = {n: statistic("b_wr", full[n], [full[b] for b in base], [full[s] for s in sota], seeds, 1e-3)
                 for n in ("gelu", weak)}
        assert truth["gelu"] > truth[weak]
        assert cheap["gelu"] > cheap[weak], (weak, cheap)


def test_default_suite_is_the_tuned_preset_and_the_classic_one_stays_by_name():
    tuned, classic = Config().suite, config_from_dict({"suite": {"preset": "classic"}}).suite
    assert tuned.task_list() == SUITES["tuned"] and len(tuned.task_list()) >= 6
    assert tuned.by_task and not classic.by_task
    assert [t.dataset for t in classic.task_list()] == list(CLASSIC_DATASETS)
    # every tuned task's dataset loads, with enough test rows that one example does not decide
    suite = load_suite(tuned)
    assert min(len(d.y_test) for d in suite) >= 250
    assert {d.family for d in suite} == {"mlp", "cnn", "attention"}


def test_a_config_recorded_before_the_presets_reads_as_the_suite_it_ran(tmp_path):
    """An old run's config.json names its datasets and no preset: loading it (as an audit does)
    gives exactly those datasets on the MLP, cached under the keys they always had."""
    old = Config().to_dict()
    old["suite"] = {k: v for k, v in old["suite"].items() if k != "preset"}
    old["suite"]["datasets"], old["suite"]["tasks"] = list(CLASSIC_DATASETS), []
    old["confirm"] = {k: v for k, v in old["confirm"].items() if k != "holdout_tasks"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    from mlr_mlflow.config import load_config

    suite = load_config(path).suite
    assert [t.dataset for t in suite.task_list()] == list(CLASSIC_DATASETS)
    assert all(t.model == "mlp" for t in suite.task_list()) and not suite.by_task


def test_held_out_tasks_that_the_suite_holds_are_refused_before_any_work(tmp_path, tracking_uri, capsys):
    (tmp_path / "c.toml").write_text(
        '[suite]\ndatasets = ["iris", "moons"]\n'
        '[[confirm.holdout_tasks]]\nname = "moons-again"\ndataset = "moons"\n')
    code = main(["discover", "--kind", "activation", "--n", "2", "--config", str(tmp_path / "c.toml"),
                 "--tracking-uri", tracking_uri])
    err = capsys.readouterr().err
    assert code == 2 and "holdout_tasks" in err and "moons-again" in err
    assert not (tmp_path / "mlflow.db").exists() or not MlflowClient(tracking_uri).search_runs(
        [e.experiment_id for e in MlflowClient(tracking_uri).search_experiments()])


@pytest.mark.slow
def test_selected_hypotheses_are_tested_on_held_out_tasks_for_a_separate_verdict(tracking_uri):
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import connect

    from .test_confirm import Fixed, runs_of

    config = config_from_dict({
        "suite": {"datasets": ["iris", "xor"]},
        "discover": {"screen": "one-pass", "parents": 0, "dedup": False},
        "confirm": {"seeds": 2, "holdout_tasks": [{"name": "moons-held", "dataset": "moons"}]}})
    client = connect(tracking_uri)
    zero = "def activation(x):\n    return x * 0\n"
    summary = Round(client, config, "activation", generator=Fixed([SWISH, zero])).run(
        n=2, top_k=2, seeds=1, seed=0)
    held = runs_of(client, summary.round_run_id, "transfer")
    full = [r for r in runs_of(client, summary.round_run_id, "full") if r.info.status == "FINISHED"]
    assert {r.data.tags[names.HYPOTHESIS_SHA256] for r in held} == \
        {r.data.tags[names.HYPOTHESIS_SHA256] for r in full}
    for run in held:
        assert run.data.tags[names.TASKS] == "moons-held"
        assert run.data.tags[names.TRANSFERS] in ("true", "false")
        assert names.B_WR_Q_VALUE in run.data.metrics
        assert int(run.data.params["first_seed"]) == 1000
    zero_runs = [r for r in held if r.data.metrics["b_wr"] < 0.2]
    assert zero_runs and all(r.data.tags[names.TRANSFERS] == "false" for r in zero_runs)
    round_run = client.get_run(summary.round_run_id)
    assert round_run.data.metrics["transfers"] == summary.transfers
    assert round_run.data.tags[names.TRANSFER_TASKS] == "moons-held"
    assert all("transfers" in row for row in summary.leaderboard)


def test_the_shipped_measurement_is_of_the_default_suite_as_it_is_now():
    """A changed default suite (a dataset, a split, a family, the model) must be measured again:
    the package's shipped figures name the digest of the suite they measured."""
    from mlr_mlflow.suite_check.known import _shipped
    from mlr_mlflow.suite_check.record import suite_digest

    for kind in ("activation", "preprocessing", "regularizer"):
        config = for_kind(Config(), kind)  # preprocessing: the preset's MLP tasks only
        shipped = _shipped(kind)
        assert shipped is not None and shipped["suite_digest"] == suite_digest(load_suite(config.suite), config)
        assert -1.0 <= shipped["full_noise_ceiling"] <= 1.0 and shipped["cheap_vs_full"] is not None


def test_a_round_on_a_suite_with_a_suite_check_states_that_check(tracking_uri):
    """The newest suite check of exactly this suite is what a round states (here a planted one)."""
    from mlr_mlflow.suite_check.known import reliability, sentence
    from mlr_mlflow.suite_check.record import suite_digest
    from mlr_mlflow.tracking import connect, create_run, experiment_id, finish, log

    client = connect(tracking_uri)
    config = with_overrides(Config(), suite={"datasets": ("iris", "moons")})
    suite = load_suite(config.suite)
    assert reliability(client, config, "activation", suite)["full_noise_ceiling"] is None
    exp = experiment_id(client, names.instrument_experiment(config.experiment_prefix, "activation"))
    run_id = create_run(client, exp, "suite check", {names.ROLE: names.SUITE_CHECK_ROLE, names.KIND: "activation",
                                                      names.SUITE_DIGEST: suite_digest(suite, config)})
    log(client, run_id, metrics={names.FULL_NOISE_CEILING: 0.42, names.CHEAP_VS_FULL: 0.3})
    finish(client, run_id, status_tag="evaluated")
    found = reliability(client, config, "activation", suite)
    assert found["full_noise_ceiling"] == 0.42 and found["run_id"] == run_id
    assert "Spearman 0.42" in sentence(found) and run_id in sentence(found)
    other = with_overrides(config, suite={"datasets": ("iris", "xor")})  # another suite: not this check
    assert reliability(client, other, "activation", load_suite(other.suite))["run_id"] is None


def test_a_round_on_other_seeds_than_the_check_states_what_its_own_seeds_repeat_at(tracking_uri):
    """A check measures between sets of N seeds; a round on k seeds repeats at the Spearman-Brown
    figure for k / N as many (measured to hold on the default suite: bench/ceiling_by_seeds.py). The
    round says both, and logs the second; on the check's own number of seeds it adds nothing."""
    from mlr_mlflow.round import Round
    from mlr_mlflow.stats import spearman_brown
    from mlr_mlflow.suite_check.known import at_round_seeds, reliability, sentence, _shipped
    from mlr_mlflow.suite_check.record import suite_digest
    from mlr_mlflow.tracking import connect, create_run, experiment_id, finish, log

    from .test_confirm import Fixed

    assert spearman_brown(0.8, 2) == pytest.approx(1.6 / 1.8) and spearman_brown(0.8, 1) == pytest.approx(0.8)
    assert all(_shipped(k)["seeds_per_set"] == 3 for k in ("activation", "preprocessing", "regularizer"))
    client = connect(tracking_uri)
    config = for_kind(config_from_dict({"suite": {"datasets": ["iris", "xor"]}, "confirm": {"enabled": False},
                                        "discover": {"screen": "one-pass", "parents": 0, "dedup": False}}),
                      "activation")  # as the round resolves it: the digest names the one-pass rate
    suite = load_suite(config.suite)
    exp = experiment_id(client, names.instrument_experiment(config.experiment_prefix, "activation"))
    run_id = create_run(client, exp, "suite check", {names.ROLE: names.SUITE_CHECK_ROLE, names.KIND: "activation",
                                                      names.SUITE_DIGEST: suite_digest(suite, config)})
    log(client, run_id, metrics={names.FULL_NOISE_CEILING: 0.8, names.CHEAP_VS_FULL: 0.7}, params={"seeds": 3})
    finish(client, run_id, status_tag="evaluated")
    found = reliability(client, config, "activation", suite)
    assert found["seeds_per_set"] == 3
    same = at_round_seeds(found, 3)
    assert same["full_noise_ceiling_at_round_seeds"] is None and "this round" not in sentence(same)
    assert "between disjoint sets of 3 seeds" in sentence(same)

    summary = Round(client, config, "activation", generator=Fixed([SWISH])).run(n=1, top_k=1, seeds=1, seed=0)
    expected = spearman_brown(0.8, 1 / 3)  # 0.57
    assert summary.instrument["full_noise_ceiling_at_round_seeds"] == pytest.approx(expected, abs=1e-4)
    round_run = client.get_run(summary.round_run_id)
    assert round_run.data.metrics["instrument.full_noise_ceiling"] == pytest.approx(0.8)
    assert round_run.data.metrics["instrument.full_noise_ceiling_at_round_seeds"] == pytest.approx(expected, abs=1e-4)
    assert "this round trains on 1 seed, where about 0.57 is expected" in round_run.data.tags[names.NOTE]


@pytest.mark.slow
def test_a_run_recorded_before_the_presets_still_audits_as_reproduced(tmp_path, capsys):
    """An old run's config.json (no `preset`, no `holdout_tasks`) re-executes on exactly its own
    datasets, whatever the default suite is now."""
    from pathlib import Path
    from urllib.parse import urlparse

    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = with_overrides(Config(), suite={"datasets": ("iris", "xor")})
    [ev] = Evaluator(connect(uri), config).evaluate([Hypothesis("activation", SWISH)], "one-pass", seeds=1)
    artifacts = Path(urlparse(MlflowClient(uri).get_run(ev.run_id).info.artifact_uri).path)
    recorded = json.loads((artifacts / names.CONFIG_ARTIFACT).read_text())
    recorded["suite"].pop("preset")
    recorded["confirm"].pop("holdout_tasks")
    (artifacts / names.CONFIG_ARTIFACT).write_text(json.dumps(recorded))  # as the code before wrote it
    code = main(["audit", ev.run_id, "--tracking-uri", uri, "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["verdict"] == "reproduced" and out["max_abs_diff"] == 0.0, out
    rerun = MlflowClient(uri).get_run(out["rerun_run_id"])
    assert rerun.data.params["datasets"] == "iris,xor"


@pytest.mark.slow
def test_one_pass_trains_at_the_kinds_rate_and_runs_recorded_before_it_still_audit_as_reproduced(tmp_path, capsys):
    """Activations screen one-pass at their measured rate (`[model] one_pass_lr`, resolved per kind
    and recorded); full training keeps `lr`. A run recorded before the key existed trained one-pass
    at its `lr`, and its audit re-runs it so: reproduced, not drift."""
    from pathlib import Path
    from urllib.parse import urlparse

    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    base = with_overrides(Config(), suite={"datasets": ("iris", "xor")})
    new_config = for_kind(base, "activation")
    old_config = with_overrides(new_config, model={"one_pass_lr": base.model.lr})  # what one-pass was
    assert new_config.model.one_pass_lr != base.model.lr
    client = connect(uri)
    [new] = Evaluator(client, new_config).evaluate([Hypothesis("activation", SWISH)], "one-pass", seeds=2)
    [old] = Evaluator(client, old_config).evaluate([Hypothesis("activation", SWISH)], "one-pass", seeds=2)
    assert new.per_seed != old.per_seed  # the rate mattered
    full = [Evaluator(client, c).evaluate([Hypothesis("activation", SWISH)], "full", seeds=1)[0]
            for c in (new_config, old_config)]
    assert full[0].per_seed == full[1].per_seed  # full training does not depend on it

    def recorded(ev):
        artifacts = Path(urlparse(MlflowClient(uri).get_run(ev.run_id).info.artifact_uri).path)
        return artifacts / names.CONFIG_ARTIFACT, json.loads((artifacts / names.CONFIG_ARTIFACT).read_text())

    path, data = recorded(new)
    assert data["model"]["one_pass_lr"] == new_config.model.one_pass_lr
    path, data = recorded(old)
    assert data["model"].pop("one_pass_lr") == base.model.lr
    path.write_text(json.dumps(data))  # as the code before wrote it
    for ev in (old, new):
        code = main(["audit", ev.run_id, "--tracking-uri", uri, "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0 and out["verdict"] == "reproduced" and out["max_abs_diff"] == 0.0, (ev.run_id, out)


STRONG_L2 = "def regularizer(params):\n    return 5e-3 * sum(p.pow(2).sum() for p in params)\n"


@pytest.mark.slow
def test_a_run_judged_by_the_loss_names_its_rule_and_old_runs_still_audit_by_accuracy(tmp_path, capsys):
    """`[compare] metric = "loss"` decides win rates by the test loss, and the run says so; a run
    recorded before the key existed (its config.json without `metric`) was judged by accuracy, and
    its audit re-runs it so: reproduced, not drift."""
    from pathlib import Path
    from urllib.parse import urlparse

    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = with_overrides(Config(), suite={"datasets": ("iris", "xor")})
    by_loss = with_overrides(config, compare={"metric": "loss"})
    client = connect(uri)
    [new] = Evaluator(client, by_loss).evaluate([Hypothesis("regularizer", STRONG_L2)], "one-pass", seeds=2)
    [old] = Evaluator(client, config).evaluate([Hypothesis("regularizer", STRONG_L2)], "one-pass", seeds=2)
    assert new.valid and old.valid and new.metric == "loss" and old.metric == "accuracy"
    assert new.per_seed == old.per_seed and (new.b_wr, new.val_b_wr) != (old.b_wr, old.val_b_wr)  # the rule mattered
    run = MlflowClient(uri).get_run(new.run_id)
    assert run.data.tags[names.WIN_METRIC] == "loss" and "decided by the test loss" in run.data.tags[names.NOTE]
    artifacts = Path(urlparse(MlflowClient(uri).get_run(old.run_id).info.artifact_uri).path)
    recorded = json.loads((artifacts / names.CONFIG_ARTIFACT).read_text())
    assert recorded["compare"].pop("metric") == "accuracy"
    (artifacts / names.CONFIG_ARTIFACT).write_text(json.dumps(recorded))  # as the code before wrote it
    MlflowClient(uri).delete_tag(old.run_id, names.WIN_METRIC)
    for ev in (old, new):
        code = main(["audit", ev.run_id, "--tracking-uri", uri, "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0 and out["verdict"] == "reproduced" and out["max_abs_diff"] == 0.0, out


def test_a_regularizer_round_states_the_ceiling_of_what_it_is_ranked_by(tracking_uri):
    """The shipped regularizer measurement names its verdict statistic: a round states that its
    B-WR barely repeats and that the log-loss ratio it is ranked by does."""
    from mlr_mlflow.config import for_kind
    from mlr_mlflow.suite_check.known import reliability, sentence
    from mlr_mlflow.tracking import connect

    config = for_kind(Config(), "regularizer")
    found = reliability(connect(tracking_uri), config, "regularizer", load_suite(config.suite))
    assert found["verdict_statistic"] == "log_loss_ratio" and found["run_id"] is None
    assert found["verdict_noise_ceiling"] > found["full_noise_ceiling"]  # measured: 0.76 against 0.30
    text = sentence(found)
    assert "test log-loss ratio this kind is ranked and confirmed by repeats at" in text
    activation = reliability(connect(tracking_uri), for_kind(Config(), "activation"), "activation",
                             load_suite(for_kind(Config(), "activation").suite))
    assert activation["verdict_statistic"] is None and "log-loss" not in sentence(activation)
