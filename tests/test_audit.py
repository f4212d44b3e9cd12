"""`mlr-mlflow audit`: runs re-executed from their own MLflow record, compared, and judged."""
import json

import pytest
from mlflow import MlflowClient

from mlr_mlflow.audit.compare import (DRIFT, NOT_REPRODUCED, REPRODUCED, RunRecord, Tolerances,
                                      compare)
from mlr_mlflow.cli import main
from mlr_mlflow.config import with_overrides
from mlr_mlflow.tracking import names

from .conftest import SWISH, write

SMALL = '[suite]\ndatasets = ["iris", "xor"]\n[discover]\nparents = 0\n'


def record(results, metrics=None, config=None, env=None, datasets=None, **tags) -> RunRecord:
    return RunRecord("r", tags, {}, metrics or {}, results, config, env, datasets or {})


def test_compare_rules_for_numbers_integrity_and_drift():
    tol = Tolerances()
    base = {"iris": {"0": {"test_acc": 0.9, "test_loss": 0.30}}}
    same = compare(record(base, {"b_wr": 0.5}), record(base, {"b_wr": 0.5}), tol, None)
    assert (same.verdict, same.max_abs_diff) == (REPRODUCED, 0.0)
    close = {"iris": {"0": {"test_acc": 0.9, "test_loss": 0.30 * (1 + 1e-6)}}}
    assert compare(record(base), record(close), tol, None).verdict == DRIFT  # within tolerance, listed
    far = {"iris": {"0": {"test_acc": 0.8, "test_loss": 0.30}}}
    result = compare(record(base), record(far), tol, None)
    assert result.verdict == NOT_REPRODUCED and result.max_abs_diff == pytest.approx(0.1)
    changed = compare(record(base, {"b_wr": 0.9}), record(base, {"b_wr": 0.5}), tol, None)
    assert changed.verdict == NOT_REPRODUCED
    drift = compare(record(base, env={"versions": {"torch": "1"}}),
                    record(base, env={"versions": {"torch": "2"}}), tol, None)
    assert drift.verdict == DRIFT and drift.differences[0]["key"] == "versions.torch"
    tampered = compare(record(base, **{names.HYPOTHESIS_SHA256: "abc"}), record(base), tol, "def")
    assert tampered.verdict == NOT_REPRODUCED and tampered.differences[0]["what"] == "tamper"
    sandbox_only = compare(record(base, config={"sandbox": {"backend": "bwrap"}}),
                           record(base, config={"sandbox": {"backend": "docker"}}), tol, None)
    assert sandbox_only.verdict == REPRODUCED  # how code is sandboxed cannot change a number


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A store with one one-pass and one full evaluation of Swish (and the baselines they used)."""
    from mlr_mlflow.config import Config
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect

    uri = f"sqlite:///{tmp_path_factory.mktemp('audit')}/mlflow.db"
    config = with_overrides(Config(), suite={"datasets": ("iris", "xor")})
    evaluator = Evaluator(connect(uri), config)
    [one_pass] = evaluator.evaluate([Hypothesis("activation", SWISH)], "one-pass", seeds=1)
    [full] = evaluator.evaluate([Hypothesis("activation", SWISH)], "full", seeds=1)
    return uri, one_pass.run_id, full.run_id


def audit(capsys, uri, *args):
    code = main(["audit", *args, "--tracking-uri", uri, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["one-pass", "full"])
def test_run_reproduces_from_its_own_record(evaluated, capsys, variant, tmp_path, monkeypatch):
    uri, one_pass, full = evaluated
    run_id = one_pass if variant == "one-pass" else full
    monkeypatch.chdir(tmp_path)  # nothing is read from the working tree
    code, out, captured = audit(capsys, uri, run_id)
    assert code == 0, captured.err
    assert out["verdict"] == REPRODUCED and out["reproduced"] and out["max_abs_diff"] == 0.0
    assert out["run_id"] == run_id and out["differences"] == []
    client = MlflowClient(uri)
    audit_run = client.get_run(out["audit_run_id"])
    assert audit_run.info.status == "FINISHED"
    assert client.get_experiment(audit_run.info.experiment_id).name == "mlr-audits"
    assert audit_run.data.tags["mlr.role"] == "audit" and audit_run.data.tags["mlr.audit.of"] == run_id
    artifacts = {a.path for a in client.list_artifacts(out["audit_run_id"])}
    assert {"audit.json", "audit.md"} <= artifacts
    original = client.get_run(run_id).data.tags
    assert original["mlr.audit.verdict"] == REPRODUCED and original["mlr.audited_by"] == out["audit_run_id"]
    rerun = client.get_run(out["rerun_run_id"])
    assert rerun.data.tags[names.PARENT_RUN_ID] == out["audit_run_id"]
    assert rerun.data.tags["mlr.role"] == "audit-rerun"
    # the re-execution took every parameter from the run's record
    recorded = json.loads(original[names.PROJECT_PARAMS])
    assert recorded["datasets"] == "iris,xor" and recorded["config"] == names.CONFIG_ARTIFACT
    assert rerun.data.params["datasets"] == "iris,xor" and rerun.data.params["seeds"] == "1"
    assert rerun.data.params["config"].endswith("/input/config.json")  # with the auditor's [sandbox]
    assert original[names.PROJECT_URI] == "mlr-mlflow:projects/evaluate"


@pytest.mark.slow
def test_metric_changed_afterwards_is_not_reproduced(evaluated, capsys):
    uri, one_pass, _ = evaluated
    client = MlflowClient(uri)
    true_value = client.get_run(one_pass).data.metrics[names.B_WR]
    client.log_metric(one_pass, names.B_WR, true_value + 0.25)
    try:
        code, out, _ = audit(capsys, uri, one_pass)
    finally:
        client.log_metric(one_pass, names.B_WR, true_value)
    assert code == 1
    assert out["verdict"] == NOT_REPRODUCED and not out["reproduced"]
    [diff] = [d for d in out["differences"] if d["key"] == names.B_WR]
    assert diff["abs_diff"] == pytest.approx(0.25) and not diff["within_tolerance"]
    assert client.get_run(out["audit_run_id"]).info.status == "FAILED"


@pytest.mark.slow
def test_replaced_hypothesis_source_is_caught(evaluated, capsys):
    uri, _, full = evaluated
    client = MlflowClient(uri)
    client.log_text(full, "import torch\n\ndef activation(x):\n    return torch.relu(x)\n",
                    names.HYPOTHESIS_ARTIFACT)
    try:
        code, out, _ = audit(capsys, uri, full)
    finally:
        client.log_text(full, SWISH, names.HYPOTHESIS_ARTIFACT)
    assert code == 1 and out["verdict"] == NOT_REPRODUCED
    assert any(d["what"] == "tamper" and d["key"] == "hypothesis.py" for d in out["differences"])


@pytest.mark.slow
def test_baseline_run_reproduces(evaluated, capsys):
    uri, *_ = evaluated
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("mlr-activation-baselines").experiment_id
    [relu] = client.search_runs([exp], f"tags.`{names.ROLE}` = 'baseline' and "
                                       f"tags.`{names.BASELINE_COMPONENT}` = 'relu' and "
                                       f"tags.`{names.VARIANT}` = 'one-pass'")
    code, out, captured = audit(capsys, uri, relu.info.run_id)
    assert code == 0, captured.err
    assert out["verdict"] == REPRODUCED


def test_bad_input_is_one_line_and_leaves_no_audit(evaluated, capsys, tmp_path):
    uri, one_pass, _ = evaluated
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("mlr-activation-baselines").experiment_id
    [baseline, *_] = client.search_runs([exp], f"tags.`{names.ROLE}` = 'baseline'")
    client.set_tag(baseline.info.run_id, names.ROLE, "round")  # not a hypothesis or baseline run
    gone = client.create_run(exp, tags={names.ROLE: "hypothesis", names.STATUS: "evaluated"}).info.run_id
    client.set_terminated(gone)  # a hypothesis run whose artifacts are gone
    audits = client.get_experiment_by_name("mlr-audits")
    before = len(client.search_runs([audits.experiment_id])) if audits else 0
    try:
        for args, words in [(["0" * 32], "no run"), ([baseline.info.run_id], "not a hypothesis"),
                            ([gone], "is gone"), (["--round", one_pass], "not a round run"),
                            ([one_pass, "--sample", "2"], "exactly one")]:
            code = main(["audit", *args, "--tracking-uri", uri])
            err = capsys.readouterr().err.strip()
            assert code == 2, args
            assert len(err.splitlines()) == 1 and words in err, err
        code = main(["audit", one_pass, "--tracking-uri", f"sqlite:///{tmp_path}/nowhere/x.db"])
        assert code == 2 and "does not exist" in capsys.readouterr().err
    finally:
        client.set_tag(baseline.info.run_id, names.ROLE, "baseline")
    audits = client.get_experiment_by_name("mlr-audits")
    after = client.search_runs([audits.experiment_id]) if audits else []
    assert len(after) == before and all(r.info.status != "RUNNING" for r in after)


@pytest.mark.slow
def test_round_leaderboard_and_scheduled_sample(tmp_path, tracking_uri, capsys):
    config = write(tmp_path, "c.toml", SMALL)
    assert main(["discover", "--tracking-uri", tracking_uri, "--config", str(config), "--seeds", "1",
                 "--n", "3", "--top-k", "1", "--seed", "3", "--json"]) == 0
    round_id = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["round_run_id"]
    code, out, captured = audit(capsys, tracking_uri, "--round", round_id, "--config", str(config))
    assert code == 0, captured.err
    [one] = out["audits"]  # the round's one full-trained hypothesis
    client = MlflowClient(tracking_uri)
    assert client.get_run(one["run_id"]).data.tags[names.VARIANT] == "full" and one["reproduced"]

    schedule = write(tmp_path, "s.toml", f'store = "sqlite:///{tmp_path}/jobs.db"\n[[job]]\n'
                     'id = "weekly-audit"\nrun = "audit-sample"\ncron = "0 6 * * 0"\n'
                     'kwargs = { n = 0 }\n')
    code = main(["scheduler", "run-now", "weekly-audit", "--schedule", str(schedule),
                 "--tracking-uri", tracking_uri, "--config", str(config), "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["ok"]
    assert out["result"]["audited"] == 1  # n = 0: only the current best
    job_run = client.get_run(out["run_id"])
    assert job_run.data.metrics["pass_rate"] == 1.0 and job_run.data.metrics["audits"] == 1


def docker_usable() -> bool:
    from mlr_mlflow.sandbox.docker_backend import docker_available

    return docker_available()


@pytest.mark.slow
@pytest.mark.skipif(not docker_usable(), reason="no Docker daemon is usable here")
def test_docker_audit_reproduces_with_environment_drift_reported(evaluated, capsys):
    uri, one_pass, _ = evaluated
    code, out, captured = audit(capsys, uri, one_pass, "--env", "docker")
    assert code == 0, captured.err
    assert out["verdict"] in (REPRODUCED, DRIFT) and out["max_abs_diff"] == 0.0
    # inside the container, hypothesis code runs in the subprocess backend: said, not hidden
    assert all(d["within_tolerance"] for d in out["differences"])
    assert any(d["key"] == "sandbox" for d in out["differences"])
