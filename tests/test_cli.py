"""The command line's error contract: our own usage errors are one line and exit 2; a bug (any
other exception) is exit 2 and one line too, labelled internal, with its traceback shown only
under MLR_MLFLOW_DEBUG=1."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a bug: validate_file raising a plain ValueError, as a mistake deep in the code would
BUGGY = ("import sys, mlr_mlflow.commands as commands\n"
         "def validate_file(*args, **kwargs):\n"
         "    raise ValueError('an unexpected value deep inside')\n"
         "commands.validate_file = validate_file\n"
         "from mlr_mlflow.cli import main\n"
         "sys.exit(main(sys.argv[1:]))\n")


def run(args, debug=None, code=BUGGY):
    env = {k: v for k, v in os.environ.items() if k != "MLR_MLFLOW_DEBUG"}
    if debug is not None:
        env["MLR_MLFLOW_DEBUG"] = debug
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_an_internal_error_is_one_line_and_its_traceback_shows_with_debug(tmp_path):
    args = ["validate", str(tmp_path / "h.py"), "--kind", "activation", "--json"]
    plain = run(args)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == [
        "mlr-mlflow validate: internal error: ValueError: an unexpected value deep inside "
        "(MLR_MLFLOW_DEBUG=1 shows the traceback)"]
    assert json.loads(plain.stdout.splitlines()[-1])["error"].startswith("internal error: ValueError")
    debug = run(args, debug="1")
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert "in validate_file" in debug.stderr  # the frame where the bug is


def test_our_own_errors_are_usage_errors_not_internal(tmp_path):
    missing = run(["validate", str(tmp_path / "nope.py"), "--kind", "activation"],
                  code="import sys\nfrom mlr_mlflow.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    assert missing.returncode == 2 and "internal error" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
    from mlr_mlflow.config import UsageError
    from mlr_mlflow.round.resume import RoundBusy
    from mlr_mlflow.scheduling.lock import SchedulerBusy
    from mlr_mlflow.tracking import TrackingError

    assert all(issubclass(cls, UsageError) for cls in (RoundBusy, SchedulerBusy, TrackingError))


# --- evaluate: several files, or a directory, in one batch -------------------------------------
CLI = "import sys\nfrom mlr_mlflow.cli import main\nsys.exit(main(sys.argv[1:]))\n"
TINY = ["--kind", "activation", "--datasets", "iris", "--seeds", "1", "--json"]


@pytest.mark.slow
def test_evaluate_takes_a_directory_and_reports_each_file_in_order(tmp_path):
    ideas = tmp_path / "ideas"
    ideas.mkdir()
    (ideas / "a_tanh.py").write_text("import torch\n\ndef activation(x):\n    return torch.tanh(x)\n")
    (ideas / "b_broken.py").write_text("def activation(x):\n    return 3\n")
    (ideas / "c_swish.py").write_text("import torch\n\ndef activation(x):\n    return x * torch.sigmoid(x)\n")
    (ideas / "notes.txt").write_text("not a hypothesis")
    store = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    batch = run(["evaluate", str(ideas), *TINY, *store], code=CLI)
    assert batch.returncode == 1, batch.stderr  # one file is invalid
    results = json.loads(batch.stdout.splitlines()[-1])["results"]
    assert [r["valid"] for r in results] == [True, False, True]
    assert len({r["run_id"] for r in results}) == 3
    assert all(0 <= r["b_wr"] <= 1 for r in (results[0], results[2])) and results[1]["reasons"]
    files = run(["evaluate", str(ideas / "c_swish.py"), str(ideas / "a_tanh.py"), *TINY, *store], code=CLI)
    assert files.returncode == 0, files.stderr
    again = json.loads(files.stdout.splitlines()[-1])["results"]
    assert [r["sha256"] for r in again] == [results[2]["sha256"], results[0]["sha256"]]


def test_evaluate_with_a_missing_file_is_one_line_exit_2_and_writes_nothing(tmp_path):
    good = tmp_path / "good.py"
    good.write_text("import torch\n\ndef activation(x):\n    return torch.tanh(x)\n")
    out = run(["evaluate", str(good), str(tmp_path / "missing.py"), *TINY,
               "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"], code=CLI)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "missing.py" in out.stderr and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_processes_opening_a_fresh_sqlite_store_together_all_get_it(tmp_path):
    """MLflow creates a new sqlite store's tables on first use, and two processes doing it at once
    fail ("table already exists"): a scheduler and a user's discover on a fresh mlflow.db. Ours
    take turns; four released at the same moment all connect."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = ("import sys, time, pathlib\n"
            "from mlr_mlflow.tracking import connect\n"
            "import mlflow.store.tracking.sqlalchemy_store\n"  # imported before the start line
            "d = pathlib.Path(sys.argv[2]); (d / f'ready-{sys.argv[3]}').touch()\n"
            "while not (d / 'go').exists(): time.sleep(0.01)\n"
            "connect(sys.argv[1]).search_experiments()\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, uri, str(tmp_path), str(i)],
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    while len(list(tmp_path.glob("ready-*"))) < 4 and all(p.poll() is None for p in procs):
        time.sleep(0.05)
    (tmp_path / "go").touch()
    results = [(p.wait(timeout=300), p.stderr.read()[-2000:]) for p in procs]
    assert all(rc == 0 for rc, _ in results), results


# --- what a user-named hypothesis file may be (issue 26: `evaluate DIR` followed a link out) -----
SWISH = "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(x)\n"
SECRET = "root:$6$canary-hash-0123456789:19000:0:99999:7:::\n"


def _refused(tmp_path, *paths, verb="evaluate"):
    args = TINY if verb == "evaluate" else ["--kind", "activation", "--json"]
    out = run([verb, *map(str, paths), *args, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
              code=CLI)
    lines = out.stderr.strip().splitlines()
    # one error; one with long paths goes on over indented lines, each under 200 characters (issue 31)
    assert out.returncode == 2 and all(line.startswith("  ") for line in lines[1:]), out.stderr
    assert all(len(line) < 200 for line in lines), out.stderr
    assert "canary-hash" not in out.stdout + out.stderr and "internal error" not in out.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    return " ".join(line.strip() for line in lines)


def test_evaluate_dir_refuses_a_link_out_of_the_directory_and_reads_nothing(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(SECRET)
    ideas = tmp_path / "ideas"
    ideas.mkdir()
    (ideas / "a.py").symlink_to(secret)
    (ideas / "b.py").write_text(SWISH)
    line = _refused(tmp_path, ideas)
    assert "a.py" in line and "symbolic link out of" in line


def test_evaluate_and_validate_refuse_a_named_file_that_links_out_of_its_directory(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(SECRET)
    (tmp_path / "ideas").mkdir()
    link = tmp_path / "ideas" / "idea.py"
    link.symlink_to(secret)
    assert "symbolic link out of" in _refused(tmp_path, link)
    assert "symbolic link out of" in _refused(tmp_path, link, verb="validate")


def test_evaluate_dir_refuses_a_fifo_without_hanging_and_a_file_over_the_size_limit(tmp_path):
    ideas = tmp_path / "ideas"
    ideas.mkdir()
    os.mkfifo(ideas / "a.py")
    assert "not a regular file" in _refused(tmp_path, ideas)
    os.unlink(ideas / "a.py")
    (ideas / "big.py").write_text(SWISH + "#" * (256 * 1024))
    assert "larger than 256 KiB" in _refused(tmp_path, ideas)


def test_a_link_that_stays_inside_its_directory_is_read(tmp_path):
    from mlr_mlflow.hypothesis import Hypothesis

    (tmp_path / "real.py").write_text(SWISH.replace("\n", "\r\n"))
    (tmp_path / "alias.py").symlink_to("real.py")
    assert Hypothesis.from_file(tmp_path / "alias.py", "activation").source == SWISH


# --- configuration values: checked on load, before anything is written --------------------------
@pytest.mark.parametrize("text, flags, message", [
    ('[model]\nlr = "fast"\n', [], '[model] lr: expected a number > 0, got "fast"'),
    ('[discover]\nn = "32"\n', [], '[discover] n: expected a whole number >= 1, got "32"'),
    ("", ["--top-k", "-4"], "--top-k: expected a whole number >= 0, got -4"),
])
def test_discover_with_a_bad_value_exits_2_with_one_line_and_writes_nothing(tmp_path, text, flags, message):
    (tmp_path / "config.toml").write_text(text)
    out = run(["discover", "--kind", "activation", "--n", "2", *flags, "--config",
               str(tmp_path / "config.toml"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
              code=CLI)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].endswith(message), out.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
