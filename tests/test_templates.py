"""Prompts in MLflow's Prompt Registry (generate/templates.py, tracking/prompts.py): shipped templates
registered on first use, a named prompt@alias, the version each hypothesis records, and an alias
moved by a user reaching the next round. Real sqlite stores, real HTTP (a scripted server)."""
import dataclasses

import pytest
from mlflow import MlflowClient

from mlr_mlflow.config import LLMConfig
from mlr_mlflow.generate import Context
from mlr_mlflow.generate.llm import LLMGenerator
from mlr_mlflow.generate.prompts import PromptError, render
from mlr_mlflow.generate.templates import round_templates
from mlr_mlflow.tracking import names
from mlr_mlflow.tracking import prompts as registry

from .openai_servers import API_KEY, MODEL, ScriptedServer, chat_body

GOOD = "```python\nimport torch\n\ndef activation(x):\n    return x * torch.sigmoid(1.3 * x)\n```"


@pytest.fixture
def server():
    s = ScriptedServer([(200, chat_body(GOOD))])
    yield s
    s.close()


def generator(server, monkeypatch, tracking_uri, **settings) -> LLMGenerator:
    monkeypatch.setenv("MLR_TEST_KEY", API_KEY)
    gen = LLMGenerator(LLMConfig(base_url=server.url, model=MODEL, api_key_env="MLR_TEST_KEY",
                                 trace=False, grammar="off", **settings))
    gen.enable_tracing(tracking_uri, "0")  # what the round does before generating
    return gen


def first(gen, kind="activation"):
    return next(gen.propose(Context(kind)))


def test_shipped_templates_are_registered_on_first_use_with_the_production_alias(tracking_uri):
    templates = round_templates(LLMConfig(prompt="mixed"), "activation", tracking_uri)
    assert [(t.name, t.version, t.style) for t in templates] == [
        ("mlr-activation-incremental", "1", "incremental"), ("mlr-activation-novelty", "1", "novelty")]
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    assert client.get_prompt_version_by_alias("mlr-activation-novelty", names.PROMPT_ALIAS).version == 1
    # used again: not registered twice
    round_templates(LLMConfig(prompt="mixed"), "activation", tracking_uri)
    assert len(list(client.search_prompt_versions("mlr-activation-novelty"))) == 1


def test_the_registered_template_renders_exactly_like_the_shipped_file(tracking_uri):
    gen = LLMGenerator(LLMConfig(prompt="incremental"))
    gen.tracking_uri = tracking_uri
    (template,) = gen.templates("regularizer")
    import random

    assert gen.prompt(template, Context("regularizer"), random.Random(0)) == \
        render("incremental", Context("regularizer"))


def test_each_hypothesis_records_the_prompt_name_and_version(server, monkeypatch, tracking_uri):
    tags = first(generator(server, monkeypatch, tracking_uri, prompt="novelty")).origin["tags"]
    assert tags[names.PROMPT_NAME] == "mlr-activation-novelty"
    assert tags[names.PROMPT_VERSION] == "1"
    assert tags[names.LLM_GRAMMAR] == "off"


def test_a_moved_alias_reaches_the_next_round(server, monkeypatch, tracking_uri):
    gen = generator(server, monkeypatch, tracking_uri, prompt="incremental")
    assert first(gen).origin["tags"][names.PROMPT_VERSION] == "1"
    # the user edits the prompt (as in the MLflow UI: a new version) and moves the alias to it
    name = "mlr-activation-incremental"
    text = "Write {{signature}}. {{contract}} EDITED BY A PERSON.\n{{examples}}\n"
    registry.register(tracking_uri, name, text, alias=names.PROMPT_ALIAS)
    proposal = first(gen)  # the next round, same generator
    assert proposal.origin["tags"][names.PROMPT_VERSION] == "2"
    assert "EDITED BY A PERSON" in proposal.origin["artifacts"]["llm/prompt.txt"]
    assert "EDITED BY A PERSON" in server.requests[-1]["messages"][0]["content"]


def test_a_named_prompt_and_alias_is_used_with_its_style(server, monkeypatch, tracking_uri):
    registry.register(tracking_uri, "my-activations", "Invent {{component}} unlike:\n{{examples}}",
                      alias="staging", tags={names.PROMPT_STYLE_TAG: "novelty"})
    registry.register(tracking_uri, "my-activations", "unused version 2")
    proposal = first(generator(server, monkeypatch, tracking_uri, prompt="my-activations@staging"))
    tags = proposal.origin["tags"]
    assert (tags[names.PROMPT_NAME], tags[names.PROMPT_VERSION]) == ("my-activations", "1")
    assert tags["mlr.llm.prompt_style"] == "novelty"
    assert "built-in relu" in proposal.origin["artifacts"]["llm/prompt.txt"]  # novelty's examples


def test_an_unknown_prompt_or_placeholder_is_a_clear_usage_error(server, monkeypatch, tracking_uri):
    with pytest.raises(PromptError, match="not in the Prompt Registry"):
        first(generator(server, monkeypatch, tracking_uri, prompt="nothing@production"))
    registry.register(tracking_uri, "typo", "{{exampels}}", alias="production")
    with pytest.raises(PromptError, match="bad placeholder 'exampels'"):
        first(generator(server, monkeypatch, tracking_uri, prompt="typo@production"))


def test_prompt_dir_files_bypass_the_registry_and_are_versioned_by_content(tmp_path, tracking_uri):
    (tmp_path / "incremental.txt").write_text("Write $signature.\n$examples\n")
    (template,) = round_templates(LLMConfig(prompt="incremental", prompt_dir=str(tmp_path)),
                                  "activation", tracking_uri)
    assert template.name.endswith("incremental.txt") and len(template.version) == 12
    edited = dataclasses.replace(LLMConfig(prompt="incremental"), prompt_dir=str(tmp_path))
    (tmp_path / "incremental.txt").write_text("Write $signature now.\n$examples\n")
    assert round_templates(edited, "activation", tracking_uri)[0].version != template.version


def test_the_config_takes_a_registered_prompt_and_refuses_anything_else():
    from mlr_mlflow.config import ConfigError

    assert LLMConfig(prompt="my-prompt@production").prompt == "my-prompt@production"
    with pytest.raises(ConfigError, match=r"\[llm\] prompt"):
        LLMConfig(prompt="my prompt")
    with pytest.raises(ConfigError, match=r"\[llm\] grammar"):
        LLMConfig(grammar="regex")


def test_the_bandit_chooses_among_versions_of_a_registered_prompt(monkeypatch, tracking_uri):
    """`[llm] prompts` names two aliases of one registered prompt: each version is an arm, every
    hypothesis records its version, and the share moves to the version whose replies are valid. The
    endpoint answers by the prompt it is sent (the property under test is the bandit's, not a model's)."""
    from mlr_mlflow.generate.portfolio import Portfolio
    from mlr_mlflow.round.proposals import collect
    from mlr_mlflow.round.summary import RoundSummary

    name = "team-activations"
    registry.register(tracking_uri, name, "Write {{signature}}. {{contract}}\n{{examples}}\n", alias="production")
    registry.register(tracking_uri, name, "CANDIDATE: write {{signature}}. {{contract}}\n{{examples}}\n",
                      alias="candidate")
    answer = lambda request: (200, chat_body(GOOD if "CANDIDATE" in request["messages"][0]["content"]  # noqa: E731
                                             else "I would rather not write code today."))
    server = ScriptedServer([], respond=answer)
    try:
        monkeypatch.setenv("MLR_TEST_KEY", API_KEY)
        config = LLMConfig(base_url=server.url, model=MODEL, api_key_env="MLR_TEST_KEY", trace=False,
                           grammar="off", prompts=(f"{name}@production", f"{name}@candidate"))
        generator = Portfolio(config)
        generator.enable_tracing(tracking_uri, "0")
        summary = RoundSummary(round_run_id="", round_id="r")
        hypotheses, records, _ = collect(generator, Context("activation", seed=1), "activation", 3, {},
                                         12, summary)
    finally:
        server.close()
    metrics = generator.metrics()
    production, candidate = (f"llm.arm.{MODEL}.{name}-{alias}." for alias in ("production", "candidate"))
    assert metrics[production + "proposals"] >= 1 and metrics[production + "accepted"] == 0
    assert metrics[candidate + "accepted"] >= 1
    assert metrics[candidate + "share"] > metrics[production + "share"]
    versions = {r["tags"][names.LLM_ARM]: r["tags"][names.PROMPT_VERSION] for r in records}
    assert versions == {f"{MODEL}.{name}-production": "1", f"{MODEL}.{name}-candidate": "2"}
    assert hypotheses and all(h.origin["tags"][names.PROMPT_VERSION] == "2" for h in hypotheses)
