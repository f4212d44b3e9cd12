"""Clean output (issue 31): `--help` in users' words, error lines under 200 characters, nothing of
the libraries underneath (MLflow's coloured log lines, Python warnings) unless --verbose, and token
counts that are whole numbers."""
import os
import subprocess
import sys
from pathlib import Path

from mlr_mlflow.generate import Proposal
from mlr_mlflow.round.proposals import collect
from mlr_mlflow.round.summary import RoundSummary

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("MLFLOW_LOGGING_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "mlr_mlflow", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_help_speaks_to_users_not_to_maintainers():
    done = cli("--help")
    assert done.returncode == 0
    assert "CONTRACT" not in done.stdout and "commands`" not in done.stdout
    assert "mlr-mlflow discover --kind activation" in done.stdout and "exit status" in done.stdout


def test_a_long_error_goes_on_over_lines_each_under_200_characters(tmp_path):
    deep = tmp_path / ("a" * 120) / ("b" * 120)
    done = cli("validate", str(deep / "missing.py"), "--kind", "activation")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[0].startswith("mlr-mlflow validate: error: hypothesis file not found")
    assert len(lines) > 1 and all(len(line) < 200 for line in lines)
    assert "".join(line.strip() for line in lines).endswith("missing.py")  # nothing cut


def test_library_log_lines_show_only_with_verbose(tmp_path):
    """A fresh sqlite store makes MLflow log its table creation (INFO, coloured on a terminal)."""
    quiet = cli("scheduler", "status", "--tracking-uri", f"sqlite:///{tmp_path}/quiet.db", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "mlflow.store" not in quiet.stderr and "INFO" not in quiet.stderr, quiet.stderr
    assert "\x1b[" not in quiet.stderr, quiet.stderr
    loud = cli("scheduler", "status", "--verbose", "--tracking-uri", f"sqlite:///{tmp_path}/loud.db",
               cwd=tmp_path)
    assert loud.returncode == 0 and "mlflow.store.db.utils" in loud.stderr, loud.stderr


class ThirdsOfAReply:
    """A generator whose every reply (1000 tokens) held three candidates: a third each."""

    name = "thirds"

    def propose(self, context):
        for i in range(6):
            yield Proposal(f"import torch\n\ndef activation(x):\n    return x * {i + 2}\n",
                           origin={"metrics": {"llm.prompt_tokens": 1000 / 3, "llm.completion_tokens": 100 / 3}})


def test_a_rounds_token_counts_are_whole_numbers():
    summary = RoundSummary(round_run_id="r", round_id="r")
    _, _, metrics = collect(ThirdsOfAReply(), None, "activation", 6, {}, 12, summary)
    assert metrics["llm.prompt_tokens"] == 2000 and metrics["llm.completion_tokens"] == 200
    assert all(float(metrics[k]).is_integer()
               for k in ("llm.prompt_tokens", "llm.completion_tokens", "llm.total_tokens"))
