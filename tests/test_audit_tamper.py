"""An audit re-executes what a run recorded: a record someone tampered with is refused, never run.

Each attack writes a canary file if its code runs; the canary must never appear. The runs are made
as an attacker with write access to a shared tracking server would make them: real MLflow runs with
the tags and artifacts of an evaluated hypothesis run, then one of them changed.
"""
import json
import os
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlr_mlflow import resources
from mlr_mlflow.audit.compare import NOT_REPRODUCED
from mlr_mlflow.cli import main
from mlr_mlflow.config import Config, with_overrides
from mlr_mlflow.evaluate.baselines import project_tags
from mlr_mlflow.hypothesis import Hypothesis
from mlr_mlflow.tracking import names

from .conftest import SWISH

SUITE = ("iris", "xor")
PROJECT = "evil-project"


def canary_code(canary: Path) -> str:
    return f"import pathlib;pathlib.Path({str(canary)!r}).write_text('ran')"


def recorded_run(uri: str, tmp_path: Path, **tampered) -> str:
    """An evaluated one-pass hypothesis run as this package records it, with `tampered` tags over."""
    client = MlflowClient(uri)
    config = with_overrides(Config(), suite={"datasets": SUITE})
    exp = client.get_experiment_by_name(config.experiment_name("activation"))
    exp_id = exp.experiment_id if exp else client.create_experiment(config.experiment_name("activation"))
    tags = {names.ROLE: "hypothesis", names.STATUS: "evaluated", names.KIND: "activation",
            names.VARIANT: "one-pass", names.HYPOTHESIS_SHA256: Hypothesis("activation", SWISH).sha256,
            **project_tags("one-pass", "activation", 1, list(SUITE))}
    tags.update(tampered)
    run_id = client.create_run(exp_id, tags=tags).info.run_id
    client.log_text(run_id, SWISH, names.HYPOTHESIS_ARTIFACT)
    client.log_text(run_id, json.dumps({"iris": {"0": {"test_acc": 0.9}}}), names.RESULTS_ARTIFACT)
    client.log_text(run_id, json.dumps(config.to_dict(), default=str), names.CONFIG_ARTIFACT)
    client.log_metric(run_id, names.B_WR, 0.5)
    client.set_terminated(run_id)
    return run_id


def foreign_project(tmp_path: Path, canary: Path, where: str = PROJECT) -> Path:
    """A host directory holding an MLproject whose entry points write the canary."""
    project = tmp_path / where
    project.mkdir(parents=True)
    command = f"{sys.executable} -c \"{canary_code(canary)}\""
    project.joinpath("MLproject").write_text(
        "name: evil\nentry_points:\n" + "".join(
            f"  {e}:\n    parameters: {{hypothesis: string, kind: string, seeds: string, config: string, "
            f"datasets: string}}\n    command: '{command}'\n" for e in ("one_pass", "full")))
    return project


def params(**changed) -> str:
    base = json.loads(project_tags("one-pass", "activation", 1, list(SUITE))[names.PROJECT_PARAMS])
    return json.dumps({**base, **changed})


def attacks(tmp_path: Path, canary: Path) -> dict[str, dict]:
    code = canary_code(canary)
    return {
        # MLflow runs an unknown `*.py` entry point as `python '<name>'`: `-c...` is Python's -c
        "entry point -c": {names.PROJECT_ENTRY_POINT: f"-c{code};#.py"},
        "entry point script": {names.PROJECT_ENTRY_POINT: f"{tmp_path}/evil.py"},
        "entry point of another variant": {names.PROJECT_ENTRY_POINT: "full"},
        # a host directory with an MLproject of its own (even one named like the shipped Project)
        "foreign project": {names.PROJECT_URI: str(tmp_path / PROJECT)},
        "package-relative escape": {names.PROJECT_URI: f"mlr-mlflow:{'../' * 16}{tmp_path}/{PROJECT}"},
        # MLflow appends undeclared parameters as `--KEY VALUE` to a bash command, KEY unquoted
        "parameter key": {names.PROJECT_PARAMS: params(**{f"x $({sys.executable} -c \"{code}\")": "1"})},
        "seeds": {names.PROJECT_PARAMS: params(seeds="1 --config /etc/passwd")},
        "hypothesis path": {names.PROJECT_PARAMS: params(hypothesis="/etc/passwd")},
        "config path": {names.PROJECT_PARAMS: params(config="../../config.json")},
        "kind": {names.PROJECT_PARAMS: params(kind="regularizer")},
        "datasets": {names.PROJECT_PARAMS: params(datasets="csv:/etc/passwd")},
        "params not an object": {names.PROJECT_PARAMS: "[1, 2]"},
        "version": {names.PROJECT_VERSION: "0.1; rm -rf /"},
    }


@pytest.mark.parametrize("attack", list(attacks(Path("/x"), Path("/y"))))
def test_tampered_record_is_refused_and_nothing_runs(attack, tmp_path, tracking_uri, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    canary = tmp_path / "canary"
    foreign_project(tmp_path, canary)
    run_id = recorded_run(tracking_uri, tmp_path, **attacks(tmp_path, canary)[attack])
    code = main(["audit", run_id, "--tracking-uri", tracking_uri, "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not canary.exists(), f"the {attack} attack ran"
    assert code == 1 and out["verdict"] == NOT_REPRODUCED and out["rerun_run_id"] is None
    [diff] = out["differences"]
    assert diff["what"] == "tamper" and not diff["within_tolerance"]
    client = MlflowClient(tracking_uri)
    audit_run = client.get_run(out["audit_run_id"])
    assert audit_run.info.status == "FAILED" and audit_run.data.tags["mlr.audit.verdict"] == NOT_REPRODUCED
    assert client.get_run(run_id).data.tags["mlr.audit.verdict"] == NOT_REPRODUCED
    report = Path(client.download_artifacts(out["audit_run_id"], "audit.md", str(tmp_path))).read_text()
    assert "the record was refused" in report
    assert len(client.search_runs([audit_run.info.experiment_id])) == 1  # no re-execution run


@pytest.mark.slow
def test_an_old_path_record_runs_the_shipped_project_never_the_path(tmp_path, tracking_uri, capsys,
                                                                     monkeypatch):
    """Runs recorded before Projects were named by package hold a host path: one ending in
    projects/evaluate is read as the shipped Project's name; what lies at that path never runs."""
    monkeypatch.chdir(tmp_path)
    canary = tmp_path / "canary"
    lookalike = foreign_project(tmp_path, canary, "old-checkout/projects/evaluate")
    run_id = recorded_run(tracking_uri, tmp_path, **{names.PROJECT_URI: str(lookalike),
                                                     names.PROJECT_VERSION: "0.0.1"})
    main(["audit", run_id, "--tracking-uri", tracking_uri, "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not canary.exists()
    assert out["rerun_run_id"]  # re-executed, with the shipped Project
    project = {d["key"]: d for d in out["differences"] if d["what"] == "project"}
    assert project[names.PROJECT_URI]["rerun"] == resources.PROJECT_URI
    assert project[names.PROJECT_VERSION]["original"] == "0.0.1" and project[names.PROJECT_URI]["within_tolerance"]


def test_tampered_artifacts_are_refused(tmp_path, tracking_uri, capsys):
    """results.json / config.json that are not what the package writes: refused before anything runs."""
    client = MlflowClient(tracking_uri)
    for name, text in [(names.RESULTS_ARTIFACT, "[1]"), (names.RESULTS_ARTIFACT, '{"iris": 3}'),
                       (names.CONFIG_ARTIFACT, '{"suite": {"datasets": ["iris"], "extra": 1}}'),
                       (names.CONFIG_ARTIFACT, "not json")]:
        run_id = recorded_run(tracking_uri, tmp_path)
        client.log_text(run_id, text, name)
        code = main(["audit", run_id, "--tracking-uri", tracking_uri, "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 1 and out["rerun_run_id"] is None, (name, text)
        assert [d["key"] for d in out["differences"]] == [name]


def test_scheduled_audit_sample_reports_a_tampered_run_and_runs_nothing(tmp_path, tracking_uri, capsys,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    canary = tmp_path / "canary"
    run_id = recorded_run(tracking_uri, tmp_path,
                          **{names.PROJECT_ENTRY_POINT: f"-c{canary_code(canary)};#.py"})
    schedule = tmp_path / "s.toml"
    schedule.write_text(f'store = "sqlite:///{tmp_path}/jobs.db"\n[[job]]\nid = "weekly-audit"\n'
                        'run = "audit-sample"\ncron = "0 6 * * 0"\nkwargs = { n = 5 }\n')
    code = main(["scheduler", "run-now", "weekly-audit", "--schedule", str(schedule),
                 "--tracking-uri", tracking_uri, "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not canary.exists()
    assert code == 1 and not out["ok"] and "1 of 1 audited run(s) not reproduced" in out["error"]
    [audit] = out["result"]["audits"]
    assert audit["run_id"] == run_id and audit["verdict"] == NOT_REPRODUCED
    assert audit["differences"][0]["key"] == names.PROJECT_ENTRY_POINT
    client = MlflowClient(tracking_uri)
    job_run = client.get_run(out["run_id"])
    assert job_run.info.status == "FAILED" and job_run.data.metrics["pass_rate"] == 0.0


def _artifacts(tmp_path: Path, config: Config) -> Path:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    (folder / names.HYPOTHESIS_ARTIFACT).write_text(SWISH)
    (folder / names.CONFIG_ARTIFACT).write_text(json.dumps(config.to_dict(), default=str))
    return folder


def test_checked_call_keeps_a_genuine_record_and_the_auditors_sandbox(tmp_path):
    from mlr_mlflow.audit.recorded import checked_call, entry_points

    recorded = with_overrides(Config(), suite={"datasets": SUITE},
                              sandbox={"backend": "subprocess", "env_allow": ("AWS_SECRET_ACCESS_KEY",)})
    auditor = with_overrides(Config(), sandbox={"backend": "bwrap"})
    tags = {names.KIND: "activation", names.VARIANT: "full",
            **project_tags("full", "activation", 2, list(SUITE))}
    call = checked_call(tags, _artifacts(tmp_path, recorded), tmp_path / "input", auditor)
    assert call.project == resources.project_dir() and call.entry_point == "full" and call.drift == []
    assert call.params["seeds"] == "2" and call.params["datasets"] == "iris,xor"
    used = json.loads(Path(call.params["config"]).read_text())
    assert used["sandbox"]["backend"] == "bwrap" and used["sandbox"]["env_allow"] == []
    assert used["suite"]["datasets"] == list(SUITE)  # everything else as recorded
    assert set(entry_points()) == {"one_pass", "full"}


def test_another_version_or_an_old_path_record_is_drift_never_a_path(tmp_path):
    from mlr_mlflow.audit.recorded import TamperedRecord, checked_call

    config = with_overrides(Config(), suite={"datasets": SUITE})
    tags = {names.KIND: "activation", names.VARIANT: "one-pass",
            **project_tags("one-pass", "activation", 1, list(SUITE))}
    old = {**tags, names.PROJECT_VERSION: "0.0.9", names.PROJECT_URI: "/home/ann/mlr/projects/evaluate"}
    call = checked_call(old, _artifacts(tmp_path, config), tmp_path / "input", config)
    assert call.project == resources.project_dir()  # the shipped Project, not the recorded path
    assert [d[0] for d in call.drift] == [names.PROJECT_URI, names.PROJECT_VERSION]
    for uri in ("/home/ann/evil", "/x/../projects/evaluate", "relative/projects/evaluate",
                "mlr-mlflow:projects/../../x"):
        with pytest.raises(TamperedRecord):
            checked_call({**tags, names.PROJECT_URI: uri}, tmp_path / "artifacts", tmp_path / "i", config)


def test_resolve_project_names_only_the_shipped_project(tmp_path):
    assert resources.resolve_project(resources.PROJECT_URI) == resources.project_dir()
    (tmp_path / "MLproject").write_text("name: x\n")
    for uri in (str(tmp_path), f"mlr-mlflow:../../{os.path.relpath(tmp_path, '/')}"):
        with pytest.raises(resources.ResourceError):
            resources.resolve_project(uri)
