"""Answers before work (issue 31): a command that runs no hypothesis code probes no sandbox backend,
and the probes that do run are kept per interpreter and machine. Counted through the probe log
($MLR_MLFLOW_CACHE_DIR/probes.log: one line per self-test actually run), never timed."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from mlr_mlflow.sandbox.probe_cache import PROBE_LOG

ROOT = Path(__file__).resolve().parents[1]
# several commands through the CLI's main function in one fresh interpreter (no probe cached in it)
COMMANDS = textwrap.dedent("""
    import contextlib, io, json, sys
    from mlr_mlflow.cli import main
    answers = []
    for argv in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        answers.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    print(json.dumps(answers))
""")


def env_for(cache: Path, **extra) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]),
            "MLR_MLFLOW_CACHE_DIR": str(cache), **extra}


def run_commands(cache: Path, cwd: Path, *argvs: list[str]) -> list[dict]:
    done = subprocess.run([sys.executable, "-c", COMMANDS, json.dumps(list(argvs))], cwd=cwd,
                          env=env_for(cache), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def probes_run(cache: Path) -> list[str]:
    log = cache / PROBE_LOG
    return log.read_text().splitlines() if log.exists() else []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_commands_that_run_no_code_probe_no_sandbox(tmp_path):
    cache, uri = tmp_path / "cache", f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "broken.py").write_text("def activation(x:\n    return x\n")
    down = f"http://127.0.0.1:{closed_port()}"
    answers = run_commands(
        cache, tmp_path,
        ["evaluate", str(tmp_path / "missing.py"), "--kind", "activation", "--tracking-uri", uri],
        ["evaluate", str(tmp_path / "broken.py"), "--kind", "activation", "--tracking-uri", uri],
        ["discover", "--resume", "--tracking-uri", uri],
        ["scheduler", "status", "--tracking-uri", uri],
        ["discover", "--n", "2", "--tracking-uri", down])
    missing, broken, resume, status, unreachable = answers
    assert missing["code"] == 2 and "missing.py" in missing["stderr"]
    assert broken["code"] == 1 and "syntax error" in broken["stdout"]
    assert resume["code"] == 0 and "no unfinished activation round" in resume["stdout"]
    assert status["code"] == 0 and "scheduler: not running" in status["stdout"]
    assert unreachable["code"] == 2
    assert probes_run(cache) == []
    assert not any("sandbox:" in a["stderr"] for a in answers)  # nor is a backend announced


def test_an_unreachable_store_is_one_short_line_without_http_internals(tmp_path):
    (tmp_path / "h.py").write_text("import torch\n\ndef activation(x):\n    return torch.tanh(x)\n")
    [answer] = run_commands(tmp_path / "cache", tmp_path,
                            ["evaluate", str(tmp_path / "h.py"), "--kind", "activation",
                             "--tracking-uri", f"http://127.0.0.1:{closed_port()}"])
    lines = answer["stderr"].strip().splitlines()
    assert answer["code"] == 2 and len(lines) == 1 and len(lines[0]) < 200, lines
    assert "connection refused" in lines[0]
    assert not any(word in lines[0] for word in ("urllib3", "HTTPConnection", "Max retries", "api/2.0"))


def test_a_round_already_running_is_refused_without_a_probe(tmp_path):
    from mlr_mlflow.config import Config
    from mlr_mlflow.round.resume import round_lease
    from mlr_mlflow.tracking import connect, experiment_id

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = connect(uri)
    exp = experiment_id(client, Config().experiment_name("activation"))
    with round_lease(client, exp, "activation").acquire():
        [busy] = run_commands(tmp_path / "cache", tmp_path, ["discover", "--n", "2", "--tracking-uri", uri])
    assert busy["code"] == 2 and "still running" in busy["stderr"]
    assert probes_run(tmp_path / "cache") == []


def test_a_statically_invalid_file_is_recorded_without_a_sandbox(tmp_path):
    from mlr_mlflow.tracking import connect, names

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "broken.py").write_text("def activation(x:\n")
    [broken] = run_commands(tmp_path / "cache", tmp_path,
                            ["evaluate", str(tmp_path / "broken.py"), "--kind", "activation",
                             "--tracking-uri", uri, "--json"])
    run_id = json.loads(broken["stdout"].splitlines()[-1])["run_id"]
    run = connect(uri).get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags[names.SANDBOX] == "none"


RESOLVE = "from mlr_mlflow.sandbox import resolve_backend\nprint(resolve_backend('auto'))\n"


def resolve_in_fresh_process(cache: Path, **env) -> str:
    done = subprocess.run([sys.executable, "-c", RESOLVE], env=env_for(cache, **env), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_probe_answers_are_kept_between_processes_of_one_interpreter_and_machine(tmp_path):
    cache = tmp_path / "cache"
    first = resolve_in_fresh_process(cache)
    probed = probes_run(cache)
    assert probed, "the first process on a machine probes"
    assert resolve_in_fresh_process(cache) == first
    assert probes_run(cache) == probed  # the second asked the cache, not the sandbox


def test_a_changed_key_probes_afresh(tmp_path):
    """PATH is part of the key (it decides which tools a probe finds), as are the interpreter,
    Python, host, user and package: any change starts from no answer."""
    cache = tmp_path / "cache"
    resolve_in_fresh_process(cache)
    before = len(probes_run(cache))
    resolve_in_fresh_process(cache, PATH=os.environ["PATH"] + os.pathsep + str(tmp_path))
    assert len(probes_run(cache)) > before


def test_an_unwritable_cache_is_no_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert resolve_in_fresh_process(blocker / "cache") in ("bwrap", "namespace", "docker", "subprocess")


def test_resume_with_nothing_to_resume_answers_without_importing_mlflow(tmp_path):
    """`discover --resume` with nothing to finish reads the store with SQLAlchemy alone
    (tracking/sql_read.py); with a round to finish it goes on through MLflow's client."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_commands(tmp_path / "cache", tmp_path, ["discover", "--resume", "--tracking-uri", uri])
    assert not (tmp_path / "mlflow.db").exists()  # a missing store is not created to say "nothing"
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.create_experiment("mlr-activation")
    client.set_terminated(client.create_run(exp, tags={"mlr.role": "round"}).info.run_id)
    probe = textwrap.dedent("""
        import contextlib, io, sys
        from mlr_mlflow.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(sys.argv[1:])
        print(code, "mlflow" in sys.modules, repr(out.getvalue()))
    """)
    done = subprocess.run([sys.executable, "-c", probe, "discover", "--resume", "--tracking-uri", uri],
                          cwd=tmp_path, env=env_for(tmp_path / "cache"), capture_output=True, text=True,
                          timeout=600)
    code, imported, said = done.stdout.split(" ", 2)
    assert (code, imported) == ("0", "False"), done.stderr[-2000:]
    assert "no unfinished activation round" in said
