"""What a round shows its generator (generate/context.py): parents from the archive or the top by
score, as configured, and why recent hypotheses were rejected."""
import json

from mlflow import MlflowClient

from mlr_mlflow import cli, commands
from mlr_mlflow.generate.context import build_archive, round_context
from mlr_mlflow.round.proposals import known_hypotheses
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import connect, names

from .resume_kit import small_config


def test_the_prompt_tells_the_llm_why_recent_hypotheses_were_rejected(tmp_path, tracking_uri, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\ndef activation(x):\n    return x\n")
    evaluation = commands.evaluate_file(bad, "activation", tracking_uri=tracking_uri)
    assert not evaluation.valid
    code = cli.main(["prompt", "show", "--kind", "activation", "--tracking-uri", tracking_uri, "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["feedback"] and evaluation.reasons[0] in out["feedback"][0]
    assert "were rejected" in out["prompt"] and evaluation.reasons[0] in out["prompt"]


def test_round_parents_come_from_the_archive_or_the_top_by_config(tracking_uri):
    config = small_config(parents=2, parents_from="archive")
    Round(connect(tracking_uri), config, "activation").run(6, 0, 1, seed=0)
    client = MlflowClient(tracking_uri)
    exp_id = client.get_experiment_by_name("mlr-activation").experiment_id
    _, top = known_hypotheses(client, exp_id, 2)
    from_archive, metrics = round_context(client, config, exp_id, "activation", 7, top)
    from_top, none = round_context(client, small_config(parents=2, parents_from="top"), exp_id,
                                   "activation", 7, top)
    assert [k.sha256 for k in from_top.known] == [k.sha256 for k in top] and none == {}
    elites = build_archive(client, exp_id, "activation").parents(2, 7)
    assert [k.sha256 for k in from_archive.known] == [e.key for e in elites]
    assert metrics[names.ARCHIVE_COVERAGE] > 0
    assert all(k.genome for k in from_archive.known)  # the symbolic generator can breed from them
