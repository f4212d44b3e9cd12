"""Readable winners (issue 31): every hypothesis has a one-line expression beside its hash, wherever
the hash is shown: the CLI summary, `discover --json`'s best, the round's description, its
leaderboard.json, the dashboard, and the hypothesis run's own description, which also compares it
with the baselines (with intervals) and states the suite's measured reliability."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlr_mlflow.hypothesis import Hypothesis, expression

ROOT = Path(__file__).resolve().parents[1]


def test_the_return_expression_with_simple_assignments_collapsed():
    source = ("import torch\n\ndef activation(x):\n    \"\"\"softsign, squashed\"\"\"\n"
              "    d = 1 + torch.abs(x)\n    y = x / d\n    return torch.tanh(y)\n")
    assert expression(source, "activation") == "torch.tanh(x / (1 + torch.abs(x)))"


def test_augmented_assignments_and_repeated_names_read_as_written():
    source = "import torch\ndef activation(x):\n    y = x * 2\n    y += 1\n    return y * torch.sigmoid(y)\n"
    assert expression(source, "activation") == "(x * 2 + 1) * torch.sigmoid(x * 2 + 1)"


def test_a_body_with_branches_falls_back_to_its_first_meaningful_line():
    source = ("import torch\n# a comment\ndef activation(x):\n    '''doc'''\n\n"
              "    if x.mean() > 0:\n        return x\n    return -x\n")
    assert expression(source, "activation") == "if x.mean() > 0:"


def test_long_expressions_are_cut_and_broken_sources_never_raise():
    long = "import torch\ndef activation(x):\n    return " + " + ".join(["torch.sin(x)"] * 20) + "\n"
    cut = expression(long, "activation")
    assert len(cut) == 80 and cut.endswith("…")
    assert expression("def activation(x:\n", "activation") == "def activation(x:"
    assert expression("", "activation") == ""


def test_a_hypothesis_names_its_own_kinds_function():
    source = "import torch\ndef helper(x):\n    return x\ndef activation(x):\n    return torch.relu(x) * 0.5\n"
    assert Hypothesis("activation", source).expression == "torch.relu(x) * 0.5"


@pytest.fixture(scope="module")
def one_round(tmp_path_factory) -> dict:
    """One real, small round through the CLI: its text, its JSON and its store."""
    where = tmp_path_factory.mktemp("readable")
    (where / "small.toml").write_text('[suite]\ndatasets = ["iris", "moons"]\n')
    uri = f"sqlite:///{where}/mlflow.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "mlr_mlflow", "discover", "--kind", "activation", "--n", "3",
                           "--top-k", "1", "--seeds", "1", "--config", "small.toml", "--tracking-uri", uri,
                           "--json"], cwd=where, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return {"dir": where, "uri": uri, "text": "\n".join(lines[:-1]), "json": json.loads(lines[-1])}


def test_the_best_and_the_cli_summary_carry_the_expression(one_round):
    best = one_round["json"]["best"]
    assert best["expression"] and best["expression"] in one_round["text"]
    assert best["sha256"][:10] in one_round["text"]


def test_the_round_description_and_leaderboard_carry_every_expression(one_round):
    from mlr_mlflow.tracking import connect, names

    client = connect(one_round["uri"])
    round_run = client.get_run(one_round["json"]["round_run_id"])
    assert one_round["json"]["best"]["expression"] in round_run.data.tags[names.NOTE]
    path = client.download_artifacts(round_run.info.run_id, names.LEADERBOARD_ARTIFACT,
                                     str(one_round["dir"] / "lb"))
    table = json.loads(Path(path).read_text())
    columns = dict(zip(table["columns"], zip(*table["data"])))
    assert all(columns["expression"]) and len(columns["expression"]) == len(columns["sha256"])


def test_every_hypothesis_run_is_described_with_its_expression_and_its_comparison(one_round):
    from mlr_mlflow.tracking import connect, names

    client = connect(one_round["uri"])
    exp = client.get_experiment_by_name("mlr-activation")
    runs = client.search_runs([exp.experiment_id], f"tags.{names.ROLE} = 'hypothesis'")
    assert runs
    for run in runs:
        tags = run.data.tags
        assert tags[names.EXPRESSION] and tags[names.EXPRESSION] in tags[names.NOTE]
    best = client.get_run(one_round["json"]["best"]["run_id"]).data.tags[names.NOTE]
    assert "B-WR" in best and "[" in best and "baselines" in best
    assert "Instrument:" in best  # the suite's measured reliability, or that it was never measured


def test_the_dashboard_shows_the_expression_beside_the_hash(one_round, tmp_path):
    from mlr_mlflow import commands

    out = commands.dashboard(str(tmp_path / "board"), one_round["uri"])
    page = Path(out["path"]).read_text()
    import html

    assert html.escape(one_round["json"]["best"]["expression"]) in page


def test_evaluate_json_and_the_run_of_an_invalid_file_name_the_expression(tmp_path):
    from mlr_mlflow.tracking import connect, names

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "h.py").write_text("import torch\n\ndef activation(x):\n    return torch.tanh(x) * undefined\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "mlr_mlflow", "evaluate", str(tmp_path / "h.py"), "--kind",
                           "activation", "--tracking-uri", uri, "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 1 and out["expression"] == "torch.tanh(x) * undefined"
    note = connect(uri).get_run(out["run_id"]).data.tags[names.NOTE]
    assert "torch.tanh(x) * undefined" in note and "Rejected" in note
