"""`mlr-mlflow prompt show --kind K`: exactly the prompt the next LLM round sends (its examples,
its registry version), checked against what a real round then sends to a (scripted) endpoint.
No model is needed."""
import json

from mlr_mlflow import cli
from mlr_mlflow.commands import prompt_show
from mlr_mlflow.config import load_config
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import connect, names
from mlr_mlflow.tracking import prompts as registry

from .openai_servers import API_KEY, MODEL, ScriptedServer, chat_body

GOOD = "```python\nimport torch\n\ndef activation(x):\n    return x * torch.sigmoid(1.3 * x)\n```"


def config_file(tmp_path, url="", prompt="mixed"):
    path = tmp_path / "config.toml"
    path.write_text(f'[suite]\ndatasets = ["iris"]\n\n[discover]\ngenerator = "llm"\nparents = 2\n\n'
                    f'[llm]\nbase_url = "{url}"\nmodel = "{MODEL}"\napi_key_env = "MLR_TEST_KEY"\n'
                    f'prompt = "{prompt}"\ntrace = false\ngrammar = "off"\n')
    return str(path)


def test_prompt_show_needs_no_model_and_names_the_registry_versions(tmp_path, tracking_uri, capsys):
    code = cli.main(["prompt", "show", "--kind", "regularizer", "--tracking-uri", tracking_uri,
                     "--json"])
    out = capsys.readouterr().out
    payload = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert [(p["prompt_name"], p["prompt_version"]) for p in payload["prompts"]] == [
        ("mlr-regularizer-incremental", "1"), ("mlr-regularizer-novelty", "1")]
    first = payload["prompts"][0]["prompt"]
    assert "def regularizer(params)" in first and "built-in" in first  # no known ones yet
    assert first in out  # the text form prints the prompt itself
    assert "version 1" in out and payload["grammar"] == "off"


def test_a_moved_alias_shows_in_the_next_prompt(tmp_path, tracking_uri):
    prompt_show("activation", tracking_uri, config_file(tmp_path, prompt="novelty"))
    registry.register(tracking_uri, "mlr-activation-novelty",
                      "Something else than:\n{{examples}}\nReply in code.", alias=names.PROMPT_ALIAS)
    (shown,) = prompt_show("activation", tracking_uri, config_file(tmp_path, prompt="novelty"))["prompts"]
    assert shown["prompt_version"] == "2" and shown["prompt"].startswith("Something else than:")


def test_the_shown_prompts_are_what_the_next_round_sends(tmp_path, tracking_uri, monkeypatch):
    """After one round the experiment knows a hypothesis: the next round's prompts show it as an
    example, and they are exactly the first requests of that round (same seed, same examples)."""
    monkeypatch.setenv("MLR_TEST_KEY", API_KEY)
    server = ScriptedServer([(200, chat_body(GOOD)),
                             (200, chat_body(GOOD.replace("1.3", "1.7")))])
    try:
        path = config_file(tmp_path, server.url)
        client = connect(tracking_uri)
        Round(client, load_config(path), "activation").run(n=1, top_k=1, seeds=1)
        shown = prompt_show("activation", tracking_uri, path)
        assert shown["examples_known"] == 1 and shown["seed"] == 1
        assert "x * torch.sigmoid(1.3 * x)" in shown["prompts"][0]["prompt"]
        sent_before = len(server.requests)
        Round(client, load_config(path), "activation").run(n=2, top_k=1, seeds=1)
        sent = [r["messages"][0]["content"] for r in server.requests[sent_before:]]
    finally:
        server.close()
    assert [p["prompt"] for p in shown["prompts"]] == sent[:2]
