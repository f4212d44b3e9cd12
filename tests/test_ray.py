"""The Ray executor on a real cluster (a head and a second node, separate `ray start` processes,
token auth on) logging to a real team server (PostgreSQL, basic auth), both from tests/team.py.

Rounds are tiny (one dataset, one seed, four hypotheses in two batches of two, no full stage) and
share one experiment, so the baselines are trained once; what is checked is where each evaluation
ran, that each ran exactly once, and that the numbers are the local executor's.
"""
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mlr_mlflow.config import load_config
from mlr_mlflow.tracking import connect, names

from .team import SMALL_TOML, cluster, server  # noqa: F401  (session fixtures)

SEED = 7


def _config_file(where, prefix: str, **executor) -> str:
    path = where / f"{prefix}.toml"
    table = "".join(f"{k} = {json.dumps(v)}\n" for k, v in {"batch_size": 2, **executor}.items())
    path.write_text(f'experiment_prefix = "{prefix}-"\n{SMALL_TOML}[executor]\n{table}')
    return str(path)


def _one_pass_runs(client, prefix: str, round_id: str) -> list:
    exp = client.get_experiment_by_name(f"{prefix}-activation").experiment_id
    return [r for r in client.search_runs([exp], f"tags.`{names.ROUND_ID}` = '{round_id}'")
            if r.data.tags.get(names.ROLE) == "hypothesis"
            and r.data.tags.get(names.VARIANT) == "one-pass"]


def _assert_each_once_and_finished(runs, generated: int) -> None:
    shas = [r.data.tags[names.HYPOTHESIS_SHA256] for r in runs]
    assert len(shas) == len(set(shas)) == generated
    assert all(r.info.status in ("FINISHED", "FAILED") for r in runs)
    assert all(r.data.tags.get(names.STATUS) in ("evaluated", "invalid") for r in runs)


@pytest.fixture(scope="module")
def login(server):
    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.admin.items():
            mp.setenv(key, value)
        yield connect(server.url)


@pytest.fixture(scope="module")
def ray_round(server, cluster, login, tmp_path_factory) -> dict:
    """A round run as a scheduled job with the job option `executor = "ray"`."""
    from mlr_mlflow.scheduling.jobs import execute

    config = _config_file(tmp_path_factory.mktemp("ray-round"), "ray")
    outcome = execute("nightly-ray", "discover", {
        "kind": "activation", "n": 4, "top_k": 0, "seeds": 1, "seed": SEED, "wait_hours": 0,
        "executor": "ray", "ray_address": cluster.address}, server.url, config)
    assert outcome["ok"], outcome
    return outcome["result"]


@pytest.mark.slow
def test_a_scheduled_ray_round_spreads_over_both_nodes_and_evaluates_each_hypothesis_once(
        cluster, login, ray_round):
    import ray

    runs = _one_pass_runs(login, "ray", ray_round["round_id"])
    _assert_each_once_and_finished(runs, ray_round["generated"])
    nodes = cluster.node_ids(ray)
    assert {r.data.tags[names.EXECUTOR_NODE] for r in runs} == {nodes["mlr_head"], nodes["mlr_second"]}


@pytest.mark.slow
def test_the_ray_rounds_numbers_equal_the_local_executors_on_the_same_seed(login, ray_round,
                                                                          tmp_path):
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis

    runs = _one_pass_runs(login, "ray", ray_round["round_id"])
    sources = [Path(login.download_artifacts(r.info.run_id, "hypothesis.py",
                                             str(tmp_path / r.info.run_id))).read_text() for r in runs]
    hypotheses = [Hypothesis("activation", source) for source in sources]
    config = load_config(_config_file(tmp_path, "ray", kind="local"))
    local = Evaluator(login, config).evaluate(hypotheses, "one-pass", 1)
    keys = (names.B_WR, names.BSOTA_WR, names.VAL_B_WR, "iris.test_acc")
    on_ray = {r.data.tags[names.HYPOTHESIS_SHA256]: [r.data.metrics.get(k) for k in keys] for r in runs}
    here = {ev.hypothesis.sha256: [login.get_run(ev.run_id).data.metrics.get(k) for k in keys]
            for ev in local}
    assert here == on_ray and len(here) == ray_round["generated"]


@pytest.mark.slow
def test_a_node_killed_mid_round_loses_and_repeats_nothing(server, cluster, login, tmp_path):
    """The round asks for `mlr_kill`, which only the second node and a doomed third one have; the
    doomed node is SIGKILLed as soon as it has started a hypothesis."""
    import ray

    cluster.start_node("doomed", {"mlr_kill": 1, "mlr_doomed": 1})
    doomed = cluster.wait_for(ray, "mlr_doomed")
    config = _config_file(tmp_path, "ray", sandbox_resource="mlr_kill")  # baselines cached
    env = {**cluster.env, **server.admin}
    driver = subprocess.Popen(
        [sys.executable, "-m", "mlr_mlflow", "discover", "--kind", "activation", "--n", "4",
         "--top-k", "0", "--seeds", "1", "--seed", str(SEED), "--executor", "ray", "--ray-address",
         cluster.address, "--tracking-uri", server.url, "--config", config, "--json"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = {}

    def kill_when_busy():
        while driver.poll() is None and not killed:
            exp = login.get_experiment_by_name("ray-activation")
            if exp is not None:
                for run in login.search_runs([exp.experiment_id],
                                             f"tags.`{names.EXECUTOR_NODE}` = '{doomed}'"):
                    if run.info.status == "RUNNING":
                        cluster.kill("doomed")
                        killed["run_id"] = run.info.run_id
                        return
            time.sleep(0.2)

    watcher = threading.Thread(target=kill_when_busy, daemon=True)
    watcher.start()
    out, err = driver.communicate(timeout=600)
    watcher.join(timeout=30)
    assert driver.returncode == 0, err[-3000:]
    assert killed, "the doomed node never started a hypothesis"
    summary = json.loads(out.strip().splitlines()[-1])
    runs = _one_pass_runs(login, "ray", summary["round_id"])
    _assert_each_once_and_finished(runs, summary["generated"])
    redone = login.get_run(killed["run_id"])
    assert redone.info.status in ("FINISHED", "FAILED")
    assert redone.data.tags[names.EXECUTOR_NODE] == cluster.node_ids(ray)["mlr_second"]


@pytest.mark.slow
def test_a_driver_with_a_wrong_ray_token_is_refused_before_any_round(server, cluster, login,
                                                                         tmp_path):
    env = {**cluster.env, **server.admin, "RAY_AUTH_TOKEN": "not-the-token"}
    done = subprocess.run(
        [sys.executable, "-m", "mlr_mlflow", "discover", "--n", "1", "--seeds", "1",
         "--executor", "ray", "--ray-address", cluster.address, "--tracking-uri",
         server.url, "--config", _config_file(tmp_path, "wrong-token"), "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Ray cluster" in done.stderr.strip().splitlines()[-1]
    assert login.get_experiment_by_name("wrong-token-activation") is None


def test_the_local_executor_is_the_default_and_never_imports_ray(tmp_path):
    code = ("import sys\nfrom mlr_mlflow import cli, round\nfrom mlr_mlflow.config import Config\n"
            "from mlr_mlflow.executors import make_executor\n"
            "from mlr_mlflow.evaluate.evaluator import Evaluator\n"
            "assert isinstance(make_executor(None, Config()), Evaluator)\n"
            "print('ray' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def test_executor_choices_come_from_the_config_the_command_line_and_jobs(tmp_path):
    from mlr_mlflow.config import ConfigError
    from mlr_mlflow.executors import with_executor

    config = load_config(_config_file(tmp_path, "x", kind="ray", address="head:6380"))
    assert (config.executor.kind, config.executor.address, config.executor.batch_size) == (
        "ray", "head:6380", 2)
    assert with_executor(config, "local", None).executor.kind == "local"
    assert with_executor(config, None, "other:1").executor.address == "other:1"
    assert with_executor(config).executor == config.executor
    with pytest.raises(ConfigError, match="executor"):
        with_executor(config, "dask")
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(_config_file(tmp_path, "y", batch_size=0))
