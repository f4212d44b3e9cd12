"""A round killed with SIGKILL in the middle of its work is finished by `discover --resume`:
nothing lost, nothing evaluated twice, never two processes on one round."""
import json
import signal
import subprocess
import sys
import time
import uuid

import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import TrackingError, connect, names

from .conftest import write
from .faults import Flaky, refused
from .resume_kit import dead_round, small_config, terminal_runs_by_sha

CONFIG = '[suite]\ndatasets = ["iris", "xor"]\n[discover]\nscreen = "one-pass"\n[confirm]\nseeds = 1\n'


def start_round(uri: str, args: list[str], cwd) -> subprocess.Popen:
    """`discover` in a process of its own, its stderr kept in cwd/discover.err. The store's tables
    are created first: two processes creating a fresh sqlite store at once can fail one of them."""
    MlflowClient(uri).search_experiments()
    return subprocess.Popen([sys.executable, "-m", "mlr_mlflow", "discover", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=open(cwd / "discover.err", "w"))


def wait_until(proc, cwd, found, what: str, timeout: float = 300):
    """found() polled until it answers (returned) while `proc` lives; a process that ended first
    or a timeout fails with the tail of its stderr."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        answer = found()
        if answer:
            return answer
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = (cwd / "discover.err").read_text()[-3000:]
    raise AssertionError(f"the round never reached {what} (exit {proc.poll()}):\n{tail}")


def wait_for_full_runs(client, proc, cwd):
    def found():
        exp = client.get_experiment_by_name("mlr-activation")
        if exp and client.search_runs([exp.experiment_id], f"tags.`{names.VARIANT}` = 'full'"):
            return exp.experiment_id
        return None

    return wait_until(proc, cwd, found, "full training")


def test_killed_round_is_resumed_without_loss_or_repeat(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = write(tmp_path, "c.toml", CONFIG)
    args = ["--tracking-uri", uri, "--config", str(config), "--seeds", "1"]
    proc = start_round(uri, [*args, "--n", "6", "--top-k", "2", "--seed", "3"], tmp_path)
    client = MlflowClient(uri)
    try:
        exp = wait_for_full_runs(client, proc, tmp_path)
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
    for r in interrupted:  # each leads to the run that evaluated its hypothesis again, and back
        rerun = client.get_run(r.data.tags[names.RERUN])
        assert rerun.data.tags[names.HYPOTHESIS_SHA256] == r.data.tags[names.HYPOTHESIS_SHA256]
        assert rerun.data.tags[names.VARIANT] == r.data.tags[names.VARIANT]
        assert r.info.run_id in rerun.data.tags[names.RERUN_OF].split(",")
    # nothing left to resume
    assert main(["discover", "--resume", *args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["round_run_id"] is None


class CountingSymbolic:
    """The symbolic generator, counting how often it is asked for proposals."""
    name = "symbolic"

    def __init__(self, config):
        from mlr_mlflow.generate import make_generator

        self.inner, self.asked = make_generator("symbolic", config), 0

    def propose(self, context):
        self.asked += 1
        return self.inner.propose(context)


@pytest.mark.slow
def test_two_resumers_started_together_on_a_dead_round_exactly_one_works(any_store, tmp_path):
    config_file = write(tmp_path, "c.toml", CONFIG)
    args = ["--tracking-uri", any_store, "--config", str(config_file), "--seeds", "1"]
    proc = start_round(any_store, [*args, "--n", "3", "--top-k", "1", "--seed", "2"], tmp_path)
    client = MlflowClient(any_store)

    def generation_recorded():
        exp = client.get_experiment_by_name("mlr-activation")
        rounds = client.search_runs([exp.experiment_id], f"tags.`{names.ROLE}` = 'round'") if exp else []
        return exp if rounds and any(a.path == names.GENERATION_ARTIFACT
                                     for a in client.list_artifacts(rounds[0].info.run_id)) else None

    try:  # killed once its generation is recorded
        exp = wait_until(proc, tmp_path, generation_recorded, "its recorded generation", timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    [dead] = client.search_runs([exp.experiment_id], f"tags.`{names.ROLE}` = 'round'")
    assert dead.info.status == "RUNNING"
    resumers = [subprocess.Popen([sys.executable, "-m", "mlr_mlflow", "discover", "--resume", *args,
                                  "--json"], cwd=tmp_path, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for p in resumers:
        out, err = p.communicate(timeout=600)
        results.append((p.returncode, json.loads(out.strip().splitlines()[-1]), err))
    worked = [r for r in results if r[0] == 0 and r[1]["round_run_id"] == dead.info.run_id]
    assert len(worked) == 1, results
    [(code, out, err)] = [r for r in results if r not in worked]
    assert (code == 2 and "is still running" in out["error"]) or out["round_run_id"] is None, err
    assert client.get_run(dead.info.run_id).info.status == "FINISHED"
    for variant, expected in (("one-pass", 3), ("full", 1)):  # nothing done twice, nothing lost
        done = [r for runs in terminal_runs_by_sha(client, dead.info.run_id).values() for r in runs
                if r.data.tags[names.VARIANT] == variant]
        assert len(done) == expected == len({r.data.tags[names.HYPOTHESIS_SHA256] for r in done})


def test_a_store_failing_on_generation_json_never_regenerates_the_round(tracking_uri):
    config = small_config()
    round_id = dead_round(tracking_uri, config, n=2)
    client = MlflowClient(tracking_uri)
    recorded = client.download_artifacts(round_id, names.GENERATION_ARTIFACT)
    before = open(recorded).read()

    def always(run_id, path, *args, **kwargs):
        return refused("read timed out") if path == names.GENERATION_ARTIFACT else None

    generator = CountingSymbolic(config)
    with pytest.raises(TrackingError, match="recorded but could not be read"):
        Round(Flaky(connect(tracking_uri), download_artifacts=always), config, "activation",
              generator=generator).resume()
    run = client.get_run(round_id)
    assert run.info.status == "FAILED" and run.data.tags[names.STATUS] == "error"  # still resumable
    assert generator.asked == 0

    failures = []

    def once(run_id, path, *args, **kwargs):
        if path == names.GENERATION_ARTIFACT and not failures:
            failures.append(path)
            return refused("read timed out")
        return None

    summary = Round(Flaky(connect(tracking_uri), download_artifacts=once), config, "activation",
                    generator=generator).resume()
    assert failures and generator.asked == 0  # read again, not generated again
    assert summary.round_run_id == round_id and summary.generated == 2
    assert open(client.download_artifacts(round_id, names.GENERATION_ARTIFACT)).read() == before
    assert client.get_run(round_id).info.status == "FINISHED"
    accepted = {r["sha256"] for r in json.loads(before) if r["status"] == "accepted"}
    assert set(terminal_runs_by_sha(client, round_id)) == accepted


def test_a_round_whose_lease_was_taken_over_stops_and_leaves_the_run_to_the_new_holder(
        tracking_uri, monkeypatch):
    from sqlalchemy import update

    from mlr_mlflow.round import resume
    from mlr_mlflow.tracking.lease import LeaseLost, SqlLeases

    monkeypatch.setattr(resume, "HEARTBEAT_EVERY_S", 0.1)
    config = small_config()
    client = connect(tracking_uri)
    leases = SqlLeases(tracking_uri)

    class TakenOverWhileGenerating(CountingSymbolic):
        def propose(self, context):
            t = leases.table  # another host judged us stale and took the kind's lease (its CAS)
            with leases.engine.begin() as conn:
                conn.execute(update(t).where(t.c.name.like("rounds/%")).values(
                    owner="elsewhere|b|pid:[1]|1|1|x", token=t.c.token + 1, heartbeat=time.time()))
            time.sleep(1.0)  # our next renewals find it gone
            return super().propose(context)

    with pytest.raises(LeaseLost, match="taken over"):
        Round(client, config, "activation", generator=TakenOverWhileGenerating(config)).run(2, 0, 1)
    [run] = MlflowClient(tracking_uri).search_runs(
        [client.get_experiment_by_name("mlr-activation").experiment_id])
    assert run.info.status == "RUNNING"  # not ended by the loser: it is the new holder's
    assert not [a for a in client.list_artifacts(run.info.run_id)
                if a.path == names.GENERATION_ARTIFACT]  # and nothing recorded after the loss


# --- issue 26, item 10: a resumer whose heartbeat is starved, taken over at the exact steps --------
def _taken_over_when(leases, predicate):
    """A Flaky fault that, the first time `predicate(args)` holds, has another host take the kind's
    lease (its compare-and-set, as it runs there) and lets the call itself go through."""
    from sqlalchemy import update

    done = []

    def fault(*args, **kwargs):
        if not done and predicate(*args, **kwargs):
            done.append(True)
            t = leases.table
            with leases.engine.begin() as conn:
                conn.execute(update(t).where(t.c.name.like("rounds/%")).values(
                    owner="elsewhere|b|pid:[1]|1|1|x", token=t.c.token + 1, heartbeat=time.time()))
        return None
    return fault, done


@pytest.mark.parametrize("step", ["reopening", "finishing"])
def test_a_starved_resumer_taken_over_never_reports_the_round_finished(tracking_uri, monkeypatch, step):
    """The heartbeat thread never runs (starved by load), and another host takes the lease over
    right as this resumer reopens the round, or right as it writes FINISHED. It must not return a
    summary (exit 0 with a round_run_id) as if it had finished the round: LeaseLost (exit 2)
    names who holds it now. (It used to trust its starved heartbeat: it trained on and reported
    the round finished while another process held it.)"""
    from mlr_mlflow.round import resume
    from mlr_mlflow.tracking.lease import LeaseLost, SqlLeases

    monkeypatch.setattr(resume, "HEARTBEAT_EVERY_S", 3600.0)
    config = small_config()
    round_id = dead_round(tracking_uri, config, n=2)
    leases = SqlLeases(tracking_uri)
    if step == "reopening":
        fault, done = _taken_over_when(leases, lambda run_id, status=None, **kw: status == "RUNNING")
        client = Flaky(connect(tracking_uri), update_run=fault)
    else:
        fault, done = _taken_over_when(leases, lambda run_id, status="FINISHED", **kw:
                                       run_id == round_id and status == "FINISHED")
        client = Flaky(connect(tracking_uri), set_terminated=fault)
    with pytest.raises(LeaseLost, match="now held by pid 1 on elsewhere"):
        Round(client, config, "activation").resume()
    assert done
    if step == "reopening":  # nothing trained, nothing ended: the round is the new holder's
        assert MlflowClient(tracking_uri).get_run(round_id).info.status == "RUNNING"
        assert not terminal_runs_by_sha(MlflowClient(tracking_uri), round_id)
