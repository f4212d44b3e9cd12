"""The team server of docs/deploy.md, for real: `mlflow server` on PostgreSQL (runs and the users of
basic auth), artifacts proxied by the server, the scheduler's job store on the same PostgreSQL.
Clients need only the server's URL and a login; without one they are refused, and nothing is written.
"""
from pathlib import Path

import pytest

from mlr_mlflow.cli import main
from mlr_mlflow.tracking import TrackingError, connect

from .team import server  # noqa: F401  (the session's team server)

pytestmark = pytest.mark.slow


def _login(monkeypatch, credentials: dict) -> None:
    for key, value in credentials.items():
        monkeypatch.setenv(key, value)


def test_a_client_without_credentials_is_refused_and_writes_nothing(server, monkeypatch, tmp_path,
                                                                    capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    with pytest.raises(TrackingError, match="401|nauthori"):
        connect(server.url)
    (tmp_path / "refused.toml").write_text('experiment_prefix = "refused-"\n')
    code = main(["discover", "--tracking-uri", server.url, "--n", "1", "--seeds", "1",
                 "--config", str(tmp_path / "refused.toml"), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and "authenticat" in " ".join(line.strip() for line in captured.err.strip().splitlines())
    _login(monkeypatch, {**server.worker, "MLFLOW_TRACKING_PASSWORD": "wrong"})
    with pytest.raises(TrackingError, match="401|nauthori"):
        connect(server.url)
    _login(monkeypatch, server.admin)
    assert connect(server.url).get_experiment_by_name("refused-activation") is None


def test_a_worker_logs_runs_and_artifacts_with_only_the_url_and_its_login(server, monkeypatch):
    _login(monkeypatch, server.worker)
    client = connect(server.url)
    exp = client.create_experiment(f"team-worker-{id(client)}")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "b_wr", 0.75)
    client.log_text(run.info.run_id, "def activation(x):\n    return x\n", "hypothesis.py")
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied: no store secret needed
    stored = list(Path(server.where, "artifacts").rglob("hypothesis.py"))
    assert [p.read_text() for p in stored] == ["def activation(x):\n    return x\n"]
    _login(monkeypatch, server.admin)
    assert connect(server.url).get_run(run.info.run_id).data.metrics["b_wr"] == 0.75


def test_artifacts_written_where_a_run_was_created_go_to_the_client_s_server(server, monkeypatch, tmp_path):
    """tracking.bulk writes a run's artifacts straight to the URI it was created with: a proxied
    mlflow-artifacts: URI resolves against the client's server, not the process's default store."""
    from mlr_mlflow.tracking import log_artifact_files, log_json

    _login(monkeypatch, server.worker)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere.db")
    client = connect(server.url)
    run = client.create_run(client.create_experiment(f"team-direct-{id(client)}"))
    log_artifact_files(client, run.info.run_id, {"hypothesis.py": "# direct\n"}, run.info.artifact_uri)
    log_json(client, run.info.run_id, {"iris": {"0": 0.5}}, "results.json", run.info.artifact_uri)
    root = Path(server.where, "artifacts")
    assert [p.read_text() for p in root.rglob(f"{run.info.run_id}/artifacts/hypothesis.py")] == ["# direct\n"]
    assert [p.name for p in root.rglob(f"{run.info.run_id}/artifacts/results.json")] == ["results.json"]
    assert not (tmp_path / "elsewhere.db").exists()


def test_the_scheduler_keeps_its_jobs_in_the_team_postgresql(server, monkeypatch):
    from mlr_mlflow.scheduling.schedule import JobSpec, Schedule
    from mlr_mlflow.scheduling.scheduler import build, status

    _login(monkeypatch, server.admin)
    kwargs = {"kind": "activation", "executor": "ray", "ray_address": "ray-head.example:6380"}
    schedule = Schedule(jobs=(JobSpec("nightly-activation", "discover", "0 2 * * *", kwargs),),
                        store=server.jobs_store)
    scheduler = build(schedule, server.url, resume_first=False)
    scheduler.shutdown(wait=False)
    seen = status(schedule, server.url)
    assert seen["store"].startswith("postgresql")
    assert [(j["id"], j["in_store"], j["next_run"] is not None) for j in seen["jobs"]] == [
        ("nightly-activation", True, True)]
