"""`suite check`: the instrument's reliability numbers (on planted results), the command end to end
on a tiny suite (MLflow run, artifacts, suite digest and its query), and its usage errors."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from mlr_mlflow import cli, commands
from mlr_mlflow.config import UsageError, for_kind, load_config
from mlr_mlflow.evaluate.datasets import load_suite
from mlr_mlflow.evaluate.screen import SCREEN_STATISTIC
from mlr_mlflow.kinds.panels import PanelMember
from mlr_mlflow.suite_check import find_check, report, seed_sets, suite_digest
from mlr_mlflow.suite_check.measure import measure, order_check, statistics
from mlr_mlflow.tracking import connect, names

TASKS = ("t1", "t2")
A, B = [0, 1, 2], [3, 4, 5]
MEMBERS = [PanelMember("zero", "0.0 * x", "degenerate", "degenerate"),
           PanelMember("identity", "x", "degenerate", "degenerate")] + \
          [PanelMember(f"m{q}", "x", "planted", "relu_like" if q % 2 else "standard") for q in range(3, 8)]
QUALITY = {"zero": 0, "identity": 1, **{f"m{q}": q for q in range(3, 8)}}


def planted(quality: float, saturated: str | None = None) -> dict:
    """Results whose every task and seed orders members by `quality` (seed noise far below the gaps);
    on the `saturated` task every non-degenerate member classifies the same count correctly."""
    out = {}
    for t in TASKS:
        for s in A + B:
            acc = 0.9 if (t == saturated and quality >= 3) else 0.1 + 0.1 * quality
            loss = 2.0 - 0.2 * quality + 0.001 * (s % 3)
            out.setdefault(t, {})[s] = {"test_acc": acc, "test_loss": loss, "n_test": 100,
                                        "val_acc": acc, "val_loss": loss, "n_val": 50}
    return out


def refs(offset: float = 0.0):
    return ([planted(5.5 + offset)], [planted(3.5 + offset), planted(6.5 + offset)])


def run_measure(one_pass_quality: dict) -> dict:
    full = {m.name: planted(QUALITY[m.name], saturated="t2") for m in MEMBERS}
    cheap = {m.name: planted(one_pass_quality[m.name]) for m in MEMBERS}
    return measure({"one-pass": cheap, "full": full}, {"one-pass": refs(), "full": refs()}, MEMBERS,
                   A, B, 1e-3, SCREEN_STATISTIC)


def test_a_panel_that_orders_itself_the_same_way_twice_has_ceilings_of_one_and_no_inversion():
    out = run_measure(QUALITY)
    assert out["full_noise_ceiling"] == pytest.approx(1.0)
    assert out["cheap_agreement"]["b_wr"]["b_wr"]["non_degenerate"] == pytest.approx(1.0)
    assert out["cheap_vs_full"] > 0.8  # full B-WR has ties (one baseline) that a loss statistic does not
    assert set(out["noise_ceilings"]) == {"one-pass", "full"}
    for rung in out["noise_ceilings"].values():
        assert {round(v, 6) for by_group in rung.values() for v in by_group.values()} == {1.0}
    assert set(out["groups"]) == {"all", "non_degenerate", "relu_like"}
    assert out["order_check"]["ok"] and out["order_check"]["pairs_checked"] > 0
    assert out["order_check"]["strongest"] == "m7"
    assert {"snr", "snr_accuracy", "saturation", "split_half"} <= set(out["tasks"]["t1"])
    assert out["tasks"]["t2"]["saturation"] == 1.0 and out["tasks"]["t1"]["saturation"] == pytest.approx(0.2)
    assert out["tasks"]["t1"]["split_half"] == pytest.approx(1.0)


def test_a_cheap_rung_that_reverses_the_real_members_is_reported_with_its_inversions():
    reversed_ = {**QUALITY, **{f"m{q}": 10 - q for q in range(3, 8)}}
    out = run_measure(reversed_)
    assert out["cheap_agreement"]["b_wr"]["b_wr"]["non_degenerate"] < -0.5
    assert out["cheap_vs_full"] < -0.5
    inverted = {(i["higher"], i["lower"]) for i in out["order_check"]["inversions"]}
    assert ("m7", "m3") in inverted and not out["order_check"]["ok"]
    assert not any(i["degenerate"] for i in out["order_check"]["inversions"])


def test_a_degenerate_member_screened_above_the_strongest_is_an_inversion():
    out = run_measure({**QUALITY, "zero": 6, "m7": 4})
    inverted = {(i["higher"], i["lower"]): i for i in out["order_check"]["inversions"]}
    assert inverted[("m7", "zero")]["degenerate"] and not out["order_check"]["ok"]
    lines = report.verdicts({**out, "errors": {}})
    assert "task t2 is saturated: 100 % of the panel within one test example of the best" in lines
    assert any(line.startswith("INVERSION: full training (bsota_wr) puts m7 above zero") for line in lines)


def test_an_inversion_says_whether_the_screen_shows_it_on_each_seed_set_alone():
    from mlr_mlflow.suite_check.measure import ORDER_BY, order_check

    members = [PanelMember("zero", "0.0 * x", "degenerate", "degenerate")] + \
        [PanelMember(n, "x", "planted", "standard") for n in ("a", "b", "c")]
    full = {ORDER_BY: {"zero": 0.1, "a": 0.3, "b": 0.5, "c": 0.9}}
    screen = SCREEN_STATISTIC
    # c above a at full; the screen puts a above c over all seeds, but on set B alone c is above a
    # (noise); b above zero at full, and the screen puts zero above b on each set (systematic)
    set_a = {screen: {"zero": 0.5, "a": 0.7, "b": 0.3, "c": 0.4}}
    set_b = {screen: {"zero": 0.4, "a": 0.5, "b": 0.3, "c": 0.6}}
    pooled = {screen: {m: (set_a[screen][m] + set_b[screen][m]) / 2 for m in set_a[screen]}}
    out = order_check(full, full, pooled, members, screen, (set_a, set_b))
    inverted = {(i["higher"], i["lower"]): i for i in out["inversions"]}
    assert set(inverted) == {("c", "a"), ("b", "zero")} and not out["ok"]
    assert inverted[("b", "zero")]["on_both_sets"] and not inverted[("c", "a")]["on_both_sets"]
    assert inverted[("c", "a")]["screen_by_set"] == [[0.4, 0.7], [0.6, 0.5]]
    assert out["inversions_on_both_sets"] == 1
    whole = {**run_measure(QUALITY), "order_check": out, "errors": {}, "seeds": {"per_set": 3, "a": A, "b": B}}
    lines = "\n".join(report.verdicts(whole))
    page = report.render(whole, "activation")
    assert "| c | a | 0.90 vs 0.30 | 0.50 vs 0.60 | 0.40 vs 0.70 | 0.60 vs 0.50 |" in page
    assert "1 of the 2 inversion(s) hold on each seed set alone" in page
    assert "puts b above zero (0.50 vs 0.10), the one-pass" in lines
    assert "does so on each seed set alone" in lines and "within the screen's own seed noise" in lines


def test_a_finer_margin_checks_more_pairs_and_catches_a_reversal_the_coarse_one_does_not_check():
    # six references one quality apart: adjacent members differ by 1/6 BSOTA-WR, under the default margin
    fine_refs = ([planted(5.5)], [planted(q) for q in (3.5, 4.5, 6.5, 7.5, 8.5)])
    full = {m.name: planted(QUALITY[m.name]) for m in MEMBERS}
    cheap = {m.name: planted({"m4": 3.2, "m3": 4}.get(m.name, QUALITY[m.name])) for m in MEMBERS}  # m3, m4 swapped
    full_a, full_b = (statistics(full, fine_refs, seeds, 1e-3) for seeds in (A, B))
    halves = tuple(statistics(cheap, fine_refs, seeds, 1e-3) for seeds in (A, B))
    pooled = statistics(cheap, fine_refs, A + B, 1e-3)
    coarse = order_check(full_a, full_b, pooled, MEMBERS, SCREEN_STATISTIC, halves)
    fine = order_check(full_a, full_b, pooled, MEMBERS, SCREEN_STATISTIC, halves, margin=0.0)
    assert full_a["bsota_wr"]["m4"] - full_a["bsota_wr"]["m3"] == pytest.approx(1 / 6)
    assert coarse["ok"] and coarse["margin"] == 0.25
    assert fine["pairs_checked"] > coarse["pairs_checked"] and fine["margin"] == 0.0
    assert [(i["higher"], i["lower"], i["on_both_sets"]) for i in fine["inversions"]] == [("m4", "m3", True)]


def test_under_the_loss_rule_the_win_rates_follow_the_loss_and_acc_ones_the_accuracy():
    # accuracy runs against quality, loss with it: the kind's rule decides what b_wr ranks
    def crossed(quality: float) -> dict:
        return {t: {s: {"test_acc": 0.9 - 0.1 * quality, "test_loss": 2.0 - 0.2 * quality + 0.001 * s,
                        "n_test": 100, "val_acc": 0.9 - 0.1 * quality, "val_loss": 2.0 - 0.2 * quality,
                        "n_val": 50} for s in A + B} for t in TASKS}

    panel = {m.name: crossed(QUALITY[m.name]) for m in MEMBERS}
    references = ([crossed(5.5)], [crossed(6.5)])
    out = measure({"one-pass": panel, "full": panel}, {"one-pass": references, "full": references}, MEMBERS,
                  A, B, 1e-3, SCREEN_STATISTIC, metric="loss")
    assert out["metric"] == "loss"
    full = out["members"]
    assert full["m7"]["full_all"]["b_wr"] == 1.0 and full["m3"]["full_all"]["b_wr"] == 0.0
    assert out["cheap_agreement"]["b_wr"]["acc_b_wr"]["non_degenerate"] == pytest.approx(-1.0)
    assert out["cheap_agreement"]["b_wr"]["loss_b_wr"]["non_degenerate"] == pytest.approx(1.0)
    assert out["order_check"]["ok"] and out["order_check"]["strongest"] == "m7"
    assert out["verdict_statistic"] == "b_wr" and out["verdict_noise_ceiling"] == out["noise_ceilings"]["full"]["b_wr"]["non_degenerate"]
    ranked = measure({"one-pass": panel, "full": panel}, {"one-pass": references, "full": references}, MEMBERS,
                     A, B, 1e-3, SCREEN_STATISTIC, verdict="log_loss_ratio")
    assert ranked["verdict_noise_ceiling"] == pytest.approx(1.0)  # the loss orders the members on both sets
    assert ranked["cheap_vs_verdict"] == ranked["cheap_agreement"]["log_loss_ratio"][SCREEN_STATISTIC]["non_degenerate"]
    assert any("ranked and confirmed by log_loss_ratio" in line
               for line in report.verdicts({**ranked, "errors": {}}))
    assert "decided by the loss alone" in report.render({**out, "kind": "regularizer", "errors": {},
                                                         "seeds": {"a": A, "b": B}}, "regularizer")


def test_seed_sets_are_disjoint_and_start_at_the_suites_first_seed(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[suite]\nfirst_seed = 10\n")
    assert seed_sets(load_config(str(path)), 3) == ([10, 11, 12], [13, 14, 15])
    with pytest.raises(UsageError, match="at least 2"):
        seed_sets(load_config(str(path)), 1)


TINY = """
[[suite.tasks]]
name = "iris"
dataset = "iris"
model = "mlp"

[[suite.tasks]]
name = "moons"
dataset = "moons"
model = "mlp"

[kinds.activation]
baselines = ["relu"]
sota = ["gelu"]
"""


@pytest.mark.slow  # about a minute: 6 components x 4 seeds x 2 tasks, one-pass and full
def test_suite_check_on_a_tiny_suite_records_a_findable_run_with_report_and_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a sqlite store's artifacts live beside it
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = commands.suite_check("activation", 2, uri, str(config), members=["zero", "relu", "tanh", "sine"])
    assert {"full_noise_ceiling", "cheap_vs_full", "tasks", "run_id", "kind", "seeds", "noise_ceilings",
            "cheap_agreement", "tasks_one_pass", "order_check", "verdicts"} <= set(out)
    assert set(out["tasks"]) == {"iris", "moons"}
    assert all({"snr", "saturation", "split_half"} <= set(r) for r in out["tasks"].values())
    assert out["seeds"] == {"per_set": 2, "a": [0, 1], "b": [2, 3]} and out["kind"] == "activation"
    json.dumps(out, allow_nan=False)  # JSON-safe: no NaN or infinity

    client = connect(uri)
    run = client.get_run(out["run_id"])
    assert run.info.status == "FINISHED"
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "mlr-activation-instrument"
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags[names.ROLE] == "suite-check" and tags[names.KIND] == "activation"
    assert tags[names.SCREEN_STATISTIC] == SCREEN_STATISTIC and tags[names.TASKS] == "iris,moons"
    assert params["seeds"] == "2" and params["tasks"] == "iris,moons" and params["kind"] == "activation"
    assert "iris.saturation" in metrics and "moons.one_pass.saturation" in metrics
    for task, values in out["tasks"].items():  # every finite number of a task is a metric
        assert {f"{task}.{k}" for k, v in values.items() if v is not None} <= set(metrics)
    assert names.CHEAP_VS_FULL in metrics or out["cheap_vs_full"] is None
    assert names.ceiling_metric("full", "b_wr", "all") in metrics
    assert metrics["order_inversions"] == len(out["order_check"]["inversions"])
    assert metrics["order_inversions_on_both_sets"] == out["order_check"]["inversions_on_both_sets"]
    listed = {a.path for a in client.list_artifacts(out["run_id"])}
    assert {"suite_check.json", "suite_check.md", "suite_check.png", "suite_check_results.json"} <= listed
    local = client.download_artifacts(out["run_id"], "", str(tmp_path / "art"))
    assert json.loads((tmp_path / "art" / "suite_check.json").read_text())["run_id"] == out["run_id"]
    assert "## Noise ceilings" in (tmp_path / "art" / "suite_check.md").read_text()
    assert (tmp_path / "art" / "suite_check.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", local

    config_obj = for_kind(load_config(str(config)), "activation")  # as the command resolves it
    suite = load_suite(config_obj.suite)
    assert tags[names.SUITE_DIGEST] == suite_digest(suite, config_obj) == out["suite_digest"]
    assert find_check(client, config_obj, "activation", suite).info.run_id == out["run_id"]
    assert find_check(client, config_obj, "activation", suite[:1]) is None  # another suite: none
    assert find_check(client, config_obj, "regularizer", suite) is None

    # measured again from the results it kept, training nothing: the same numbers, a new run
    again = commands.suite_check("activation", 2, uri, str(config), from_run=out["run_id"])
    assert again["run_id"] != out["run_id"]
    for key in ("noise_ceilings", "cheap_agreement", "tasks", "tasks_one_pass", "full_noise_ceiling",
                "cheap_vs_full", "members", "suite_digest"):
        assert again[key] == out[key], key
    assert find_check(client, config_obj, "activation", suite).info.run_id == again["run_id"]
    with pytest.raises(UsageError, match="measured another suite"):
        commands.suite_check("activation", 2, uri, None, from_run=out["run_id"])
    with pytest.raises(UsageError, match="not a suite check of kind regularizer"):
        commands.suite_check("regularizer", 2, uri, str(config), from_run=out["run_id"])
    with pytest.raises(UsageError, match="no run"):
        commands.suite_check("activation", 2, uri, str(config), from_run="0" * 32)
    code = cli.main(["suite", "check", "--from", "0" * 32, "--config", str(config), "--tracking-uri", uri])
    assert code == 2 and "no run" in capsys.readouterr().err

    # bench/screen_rungs.py trains cheap rungs again and measures them against the full training the
    # check kept: its `one-pass` rung is the check's own one-pass (same seeds, same code), number for number
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import screen_rungs

    assert screen_rungs.main(["--from", out["run_id"], "--tracking-uri", uri, "--config", str(config),
                              "--rungs", "one-pass,epochs=2:lr=0.02", "--out", str(tmp_path / "rungs")]) == 0
    rungs = json.loads((tmp_path / "rungs" / "screen_rungs.json").read_text())["rungs"]
    assert set(rungs) == {"one-pass", "epochs=2:lr=0.02"}
    assert rungs["epochs=2:lr=0.02"]["model"] == {"max_epochs": 2, "patience": 2, "lr": 0.02}
    same = rungs["one-pass"]["statistics"][SCREEN_STATISTIC]
    for m, values in out["members"].items():
        assert same["by_member"][m] == pytest.approx(values["one_pass_all"][SCREEN_STATISTIC], abs=1e-4), m
    for group, value in out["cheap_agreement"]["b_wr"][SCREEN_STATISTIC].items():
        ours = same["agreement"]["b_wr"][group]
        assert math.isnan(ours) if value is None else ours == pytest.approx(value, abs=1e-4), group
    assert same["orders"]["0.25"]["pairs"] == out["order_check"]["pairs_checked"]
    assert same["orders"]["0.25"]["inversions"] == len(out["order_check"]["inversions"])


def test_the_digest_follows_the_datasets_and_the_model(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    base = load_config(str(config))
    config.write_text(TINY + "\n[model]\nhidden = [32]\n")
    wider = load_config(str(config))
    suite = load_suite(base.suite)
    assert suite_digest(suite, base) == suite_digest(load_suite(base.suite), base)
    assert suite_digest(suite, base) != suite_digest(suite, wider)
    assert suite_digest(suite, base) != suite_digest(suite[::-1][:1], base)
    # the win rule: a check by the loss is not one by accuracy; checks from before the rule existed
    # (accuracy) keep their digest
    config.write_text(TINY + '\n[compare]\nmetric = "accuracy"\n')
    assert suite_digest(suite, load_config(str(config))) == suite_digest(suite, base)
    config.write_text(TINY + '\n[compare]\nmetric = "loss"\n')
    assert suite_digest(suite, load_config(str(config))) != suite_digest(suite, base)


@pytest.mark.parametrize("argv, says", [
    (["--seeds", "1"], "--seeds must be at least 2"),
    (["--kind", "preprocessing", "--config", "{cnn}"], "does not apply to task(s) digits-cnn"),
    (["--config", "{unknown}"], "unknown dataset"),
])
def test_bad_input_is_exit_2_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cnn.toml").write_text('[[suite.tasks]]\nname = "digits-cnn"\ndataset = "digits"\nmodel = "cnn"\n')
    (tmp_path / "unknown.toml").write_text('[suite]\ndatasets = ["iris", "nope"]\n')
    argv = [a.format(cnn=tmp_path / "cnn.toml", unknown=tmp_path / "unknown.toml") for a in argv]
    code = cli.main(["suite", "check", *argv, "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--json"])
    captured = capsys.readouterr()
    first, *more = captured.err.strip().splitlines()  # one error; a long one goes on indented
    assert code == 2 and all(line.startswith("  ") and len(line) < 200 for line in more)
    assert says in " ".join(line.strip() for line in [first, *more])
    assert "error" in json.loads(captured.out.splitlines()[-1])
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_an_unknown_kind_or_panel_member_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown kind"):
        commands.suite_check("nope", 2)
    with pytest.raises(UsageError, match="unknown panel member"):
        commands.suite_check("activation", 2, members=["relu", "tanh", "nope"])
    with pytest.raises(UsageError, match="at least 2 non-degenerate"):
        commands.suite_check("activation", 2, members=["zero", "relu"])


def test_a_report_too_long_for_a_tag_describes_the_run_by_its_head():
    from mlr_mlflow.suite_check.record import NOTE_LIMIT, _note

    long = "# Suite check\n\n## Verdict\n\n- task a is saturated\n\n## Noise ceilings\n\n" + "| x |\n" * 3000
    note = _note(long)
    assert len(note) <= NOTE_LIMIT and "task a is saturated" in note and "suite_check.md" in note
    assert _note("# short report\n") == "# short report\n"
