"""A round killed with SIGKILL in the middle of its work is finished by `discover --resume`:
nothing lost, nothing evaluated twice, never two processes on one round."""
import json
import signal
import subprocess
import sys
import time

from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.tracking import names

from .conftest import write

CONFIG = '[suite]\ndatasets = ["iris", "xor"]\n[discover]\nscreen = "one-pass"\n[confirm]\nseeds = 1\n'


def wait_for_full_runs(client, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        exp = client.get_experiment_by_name("mlr-activation")
        if exp and client.search_runs([exp.experiment_id], f"tags.`{names.VARIANT}` = 'full'"):
            return exp.experiment_id
        time.sleep(0.2)
    raise AssertionError("the round never reached full training")


def test_killed_round_is_resumed_without_loss_or_repeat(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = write(tmp_path, "c.toml", CONFIG)
    args = ["--tracking-uri", uri, "--config", str(config), "--seeds", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "mlr_mlflow", "discover", *args, "--n", "6",
                             "--top-k", "2", "--seed", "3"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = MlflowClient(uri)
    try:
        exp = wait_for_full_runs(client)
        # while the round's process lives, nobody else may take it over
        assert main(["discover", "--resume", *args, "--json"]) == 2
        assert "still running" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    [round_run] = client.search_runs([exp], f"tags.`{names.ROLE}` = 'round'")
    assert round_run.info.status == "RUNNING"  # the dead process could not end it
    before = {r.info.run_id: r for r in client.search_runs([exp], f"tags.`{names.ROLE}` = 'hypothesis'")}
    finished_before = {rid for rid, r in before.items() if r.info.status != "RUNNING"}
    assert finished_before and len(finished_before) < len(before)  # killed half-way

    assert main(["discover", "--resume", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["round_run_id"] == round_run.info.run_id and out["generated"] == 6
    assert client.get_run(round_run.info.run_id).info.status == "FINISHED"
    after = client.search_runs([exp], f"tags.`{names.ROLE}` = 'hypothesis'", max_results=1000)
    assert all(r.info.status != "RUNNING" for r in after)
    for run_id in finished_before:  # finished work kept as it was
        assert client.get_run(run_id).info.status == before[run_id].info.status
    for variant, expected in (("one-pass", 6), ("full", 2)):
        done = [r for r in after if r.data.tags[names.VARIANT] == variant
                and r.data.tags.get(names.STATUS) in ("evaluated", "invalid")]
        shas = [r.data.tags[names.HYPOTHESIS_SHA256] for r in done]
        assert len(shas) == expected == len(set(shas)), variant  # none lost, none twice
    interrupted = [r for r in after if r.data.tags.get(names.STATUS) == "error"]
    assert interrupted and all("interrupted" in r.data.tags[names.REASONS] for r in interrupted)
    # nothing left to resume
    assert main(["discover", "--resume", *args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["round_run_id"] is None
