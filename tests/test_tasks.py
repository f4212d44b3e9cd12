"""Tasks beyond the MLP: the CNN and attention families train batched like the MLP, a suite of
tasks (bundled, csv, parquet) is evaluated with per-task metrics, and bad tasks are usage errors
that leave the store untouched."""
import dataclasses
import json
import os

import pytest

from mlr_mlflow.config import Config, KindConfig, ModelConfig, SuiteConfig, TaskConfig, with_overrides
from mlr_mlflow.evaluate.baselines import components_for
from mlr_mlflow.evaluate.datasets import load_suite
from mlr_mlflow.evaluate.training.job import train
from mlr_mlflow.kinds import get_kind

from .conftest import SWISH, ZERO

ACT, REG = get_kind("activation").components, get_kind("regularizer").components
FAMILY_TASKS = {"cnn": TaskConfig("shapes-cnn", "shapes", "cnn"),
                "attention": TaskConfig("match-attention", "sequence_match", "attention")}


def payload(models, task, variant="one-pass", **model):
    [ds] = load_suite(SuiteConfig(tasks=(task,)))
    return {"datasets": [ds.payload()], "models": models, "variant": variant,
            "model": dataclasses.asdict(dataclasses.replace(ModelConfig(), **model))}


def model(key, seed, kind, source):
    return {"key": key, "seed": seed, "components": components_for(kind, source)}


@pytest.mark.parametrize("family", ["cnn", "attention"])
def test_each_family_ranks_a_known_good_activation_above_a_constant_one(family):
    task = TaskConfig("digits-cnn", "digits", "cnn") if family == "cnn" else FAMILY_TASKS[family]
    out = train(payload([model("relu:0", 0, "activation", ACT["relu"]),
                         model("zero:0", 0, "activation", ZERO)], task))
    assert out["errors"] == {}
    good, constant = out["results"]["relu:0"][task.name], out["results"]["zero:0"][task.name]
    assert good["test_acc"] > constant["test_acc"] + 0.1, (good, constant)


@pytest.mark.parametrize("family", ["cnn", "attention"])
def test_batched_equals_alone_for_each_family(family):
    task = FAMILY_TASKS[family]
    models = [model("relu:0", 0, "activation", ACT["relu"]), model("swish:1", 1, "activation", SWISH),
              model("l2:0", 0, "regularizer", REG["l2"])]
    together = train(payload(models, task))
    assert together["errors"] == {}
    for m in models:
        alone = train(payload([m], task))["results"][m["key"]][task.name]
        got = together["results"][m["key"]][task.name]
        assert got["test_acc"] == pytest.approx(alone["test_acc"], abs=1e-6), m["key"]
        assert got["test_loss"] == pytest.approx(alone["test_loss"], rel=1e-4, abs=1e-6)
        if family == "attention":  # bit for bit; the CNN's grouped convolution is not (its losses
            assert got == alone    # differ in the last bits: a plain convolution rounds otherwise)


def test_a_failing_hypothesis_fails_only_its_model_in_a_family():
    raising = "def activation(x):\n    raise ValueError('no')\n"
    out = train(payload([model("relu:0", 0, "activation", ACT["relu"]),
                         model("bad:0", 0, "activation", raising)], FAMILY_TASKS["cnn"]))
    assert "bad:0" in out["errors"] and "ValueError" in out["errors"]["bad:0"]
    assert "shapes-cnn" in out["results"]["relu:0"]


def _table(tmp_path):
    """A small two-class table with a named label column that is not the last one."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    frame = pd.DataFrame({"a": X[:, 0], "label": np.where(X[:, 0] * X[:, 1] > 0, "yes", "no"),
                          "b": X[:, 1], "c": X[:, 2]})
    frame.to_csv(tmp_path / "mine.csv", index=False)
    frame.to_parquet(tmp_path / "mine.parquet")
    return frame


def test_csv_and_parquet_give_the_same_task_and_digest(tmp_path):
    _table(tmp_path)
    tasks = (TaskConfig("c", f"csv:{tmp_path}/mine.csv", target="label"),
             TaskConfig("p", f"parquet:{tmp_path}/mine.parquet", target="label"))
    c, p = load_suite(SuiteConfig(tasks=tasks))
    assert c.digest == p.digest and c.X_train.shape[1] == 3 and c.n_classes == 2
    assert c.source.startswith("csv:/") and p.source.startswith("parquet:/")


@pytest.mark.slow  # two evaluations end to end, baselines included
def test_a_task_suite_logs_per_task_metrics_inputs_and_tags_and_caches_baselines_per_task(
        tmp_path, tracking_uri):
    from mlflow import MlflowClient

    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect

    _table(tmp_path)
    (tmp_path / "suite.toml").write_text(
        '[[suite.tasks]]\nname = "mine"\ndataset = "csv:mine.csv"\ntarget = "label"\n'
        '[[suite.tasks]]\nname = "match"\ndataset = "sequence_match"\nmodel = "attention"\n')
    from mlr_mlflow.config import load_config

    config = load_config(tmp_path / "suite.toml")
    config = dataclasses.replace(config, kinds={**config.kinds, "activation": KindConfig(("relu",), ("gelu",))})
    assert config.suite.tasks[0].dataset == f"csv:{tmp_path / 'mine.csv'}"  # absolute: audits find it
    client = connect(tracking_uri)
    [ev] = Evaluator(client, config).evaluate([Hypothesis("activation", SWISH)], seeds=1)
    assert ev.valid, ev.reasons
    run = MlflowClient(tracking_uri).get_run(ev.run_id)
    assert run.data.tags["mlr.tasks"] == "mine,match"
    assert run.data.tags["mlr.task.match"] == "sequence_match on attention"
    for task in ("mine", "match"):
        assert 0.0 <= run.data.metrics[f"{task}.b_wr"] <= 1.0
        assert f"{task}.test_acc" in run.data.metrics and f"{task}.bsota_wr" in run.data.metrics
    digests = {i.dataset.name: i.dataset.digest for i in run.inputs.dataset_inputs}
    assert digests == {ds.name: ds.digest for ds in load_suite(config.suite)}
    recorded = json.loads(client.download_artifacts(ev.run_id, "config.json", str(tmp_path)) and
                          (tmp_path / "config.json").read_text())
    assert [t["name"] for t in recorded["suite"]["tasks"]] == ["mine", "match"]

    def baseline_runs():
        return client.search_runs([client.get_experiment_by_name("mlr-activation-baselines").experiment_id])

    assert len(baseline_runs()) == 4  # relu and gelu, each task apart (trained in one job)
    one = with_overrides(config, suite={"tasks": config.suite.tasks[1:]})
    [again] = Evaluator(client, one).evaluate([Hypothesis("activation", ZERO)], seeds=1)
    assert again.valid and len(baseline_runs()) == 4  # the attention task's baselines came from the cache
    assert set(again.datasets) == {"match"}


BAD_TASKS = {
    "missing file": ('dataset = "csv:nowhere.csv"', "file not found"),
    "missing target": ('dataset = "csv:mine.csv"\ntarget = "nope"', "target column 'nope'"),
    "non-numeric": ('dataset = "csv:text.csv"\ntarget = "label"', "text.csv: column 'a', row 1 (line 2): '"),
    "infinite value": ('dataset = "csv:inf.csv"\ntarget = "label"',
                       "inf.csv: column 'b', row 7 (line 8): inf is not a finite number"),
    "NaN value": ('dataset = "csv:nan.csv"\ntarget = "label"', "nan.csv: column 'c', row 3 (line 4): is missing"),
    "beyond float32": ('dataset = "parquet:big.parquet"\ntarget = "label"',
                       "big.parquet: column 'a', row 2: 1e+39 is too large"),
    "a FIFO": ('dataset = "csv:fifo.csv"', "fifo.csv is not a regular file"),
    "a directory": ('dataset = "csv:."', "is a directory"),
    "a /proc file": ('dataset = "csv:/proc/self/environ"', "/environ is empty (or not a stored file"),
    "relative to the config": ('dataset = "csv:../x/nowhere.csv"', "file not found: {parent}/x/nowhere.csv"),
    "one class": ('dataset = "csv:single.csv"\ntarget = "label"', "only one class"),
    "family misfit": ('dataset = "iris"\nmodel = "cnn"', "needs image data"),
    "kind misfit": ('dataset = "digits"\nmodel = "cnn"', "does not apply"),
}


@pytest.mark.parametrize("case", sorted(BAD_TASKS))
def test_a_bad_task_exits_2_with_one_line_before_the_store_is_touched(case, tmp_path, capsys):
    from mlr_mlflow.cli import main

    frame = _table(tmp_path)
    frame.assign(a=frame["a"].astype(str) + "x").to_csv(tmp_path / "text.csv", index=False)
    frame.assign(label="yes").to_csv(tmp_path / "single.csv", index=False)
    frame.assign(b=[float("inf") if i == 6 else v for i, v in enumerate(frame["b"])]).to_csv(
        tmp_path / "inf.csv", index=False)
    frame.assign(c=[None if i == 2 else v for i, v in enumerate(frame["c"])]).to_csv(tmp_path / "nan.csv", index=False)
    frame.assign(a=[1e39 if i == 1 else v for i, v in enumerate(frame["a"])]).to_parquet(tmp_path / "big.parquet")
    os.mkfifo(tmp_path / "fifo.csv")
    spec, reason = BAD_TASKS[case]
    reason = reason.format(parent=tmp_path.parent)
    (tmp_path / "bad.toml").write_text(f'[[suite.tasks]]\nname = "t"\n{spec}\n')
    kind, source = ("preprocessing", get_kind("preprocessing").components["standardize"]) \
        if case == "kind misfit" else ("activation", SWISH)
    (tmp_path / "h.py").write_text(source)
    store = tmp_path / "store.db"
    code = main(["evaluate", str(tmp_path / "h.py"), "--kind", kind, "--seeds", "1",
                 "--config", str(tmp_path / "bad.toml"), "--tracking-uri", f"sqlite:///{store}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and reason in err[0], err
    assert not store.exists()


def test_a_task_suite_round_trips_through_the_recorded_config(tmp_path):
    """An audit re-runs from config.json: the tasks come back as they ran, file paths absolute."""
    from mlr_mlflow.config import ConfigError, config_from_dict, load_config

    (tmp_path / "t.toml").write_text('[[suite.tasks]]\nname = "mine"\ndataset = "parquet:data/x.parquet"\n'
                                     '[[suite.tasks]]\nname = "img"\ndataset = "digits"\nmodel = "cnn"\n')
    config = load_config(tmp_path / "t.toml")
    assert config.suite.tasks[0].dataset == f"parquet:{tmp_path / 'data' / 'x.parquet'}"
    assert config_from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert Config().suite.tasks == () and Config().suite.task_list()[0] == TaskConfig("hastie", "hastie")
    with pytest.raises(ConfigError, match="unknown model"):
        config_from_dict({"suite": {"tasks": [{"name": "x", "dataset": "iris", "model": "rnn"}]}})
    with pytest.raises(ConfigError, match="unique"):
        config_from_dict({"suite": {"tasks": [{"name": "x", "dataset": "iris"}] * 2}})
