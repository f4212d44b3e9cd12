"""The llm generator against a real llama.cpp server, and against scripted HTTP for what a local
server cannot show (unknown model, rate limits, malformed bodies)."""
import dataclasses
import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from mlr_mlflow.config import Config, LLMConfig, with_overrides
from mlr_mlflow.generate import Context, GenerationStopped
from mlr_mlflow.generate.llm import LLMGenerator
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import connect, names

from .openai_servers import API_KEY, MODEL, ScriptedServer, chat_body, llama_server

GOOD = "```python\nimport torch\n\ndef activation(x):\n    return x * torch.sigmoid(1.3 * x)\n```"


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    proc, url = llama_server(str(tmp_path_factory.mktemp("llama")))
    if proc is None:
        pytest.skip(url)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def scripted():
    servers = []

    def start(script):
        servers.append(ScriptedServer(script))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def generator(url, monkeypatch, key=API_KEY, **settings):
    monkeypatch.setenv("MLR_TEST_KEY", key)
    cfg = LLMConfig(base_url=url, model=MODEL, api_key_env="MLR_TEST_KEY", max_retries=2,
                    timeout_s=30, trace=False, **settings)
    return LLMGenerator(cfg)


def small_round_config(llm: LLMConfig) -> Config:
    config = with_overrides(Config(), suite={"datasets": ("iris",)}, discover={"parents": 2})
    return dataclasses.replace(config, llm=llm)


@pytest.mark.slow
def test_round_with_the_real_llama_cpp_server(llama, tracking_uri, monkeypatch):
    """A tiny base model (constrained by the grammar `auto` picks for llama.cpp, so its replies
    parse, and a quarter of them rediscover a reference). The round records every reply, counts
    tokens, traces the calls, stops at its token budget and never stays RUNNING."""
    monkeypatch.setenv("MLR_TEST_KEY", API_KEY)
    llm = LLMConfig(base_url=llama, model=MODEL, api_key_env="MLR_TEST_KEY", max_tokens=96,
                    token_budget=2000, temperature=0.7)
    config = small_round_config(llm)
    client = connect(tracking_uri)
    gen = LLMGenerator(llm)
    try:
        summary = Round(client, config, "activation", generator=gen).run(n=2, top_k=1, seeds=1)
    finally:
        mlflow.openai.autolog(disable=True)
    run = MlflowClient(tracking_uri).get_run(summary.round_run_id)
    assert run.info.status in ("FINISHED", "FAILED")
    if summary.generated == 0:
        assert run.info.status == "FAILED" and "no hypothesis was generated" in run.data.tags[names.REASONS]
    assert "token budget spent" in (summary.stop_reason or "") or summary.generated == 2
    assert run.data.metrics["llm.total_tokens"] > 0
    path = client.download_artifacts(summary.round_run_id, names.GENERATION_ARTIFACT,
                                     str(Path(tracking_uri[len("sqlite:///"):]).parent))
    records = json.loads(Path(path).read_text())
    assert records and all(r["status"] in ("accepted", "failed", "duplicate", "rediscovery")
                           for r in records), [r["status"] for r in records]
    assert all(r["error"] == "no usable code in the reply" for r in records if r["status"] == "failed")
    traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=summary.round_run_id,
                                  return_type="list")
    assert len(traces) == len(gen.trace_ids) > 0  # every call traced and linked to the round
    assert all(t.info.state == "OK" for t in traces)
    for row in summary.leaderboard:
        arts = {a.path for a in client.list_artifacts(row["one_pass_run_id"], "llm")}
        assert arts == {"llm/prompt.txt", "llm/reply.txt"}
        assert client.get_run(row["one_pass_run_id"]).data.metrics["llm.prompt_tokens"] > 0


def test_real_server_refuses_a_wrong_key(llama, monkeypatch):
    gen = generator(llama, monkeypatch, key="wrong")
    with pytest.raises(GenerationStopped, match="refused the API key"):
        next(gen.propose(Context("activation")))


def test_model_not_found(scripted, monkeypatch):
    server = scripted([(404, {"error": {"message": "The model `nope` does not exist",
                                        "code": "model_not_found"}})])
    with pytest.raises(GenerationStopped, match="model 'gemma3-270m' not found.*does not exist"):
        next(generator(server.url, monkeypatch).propose(Context("activation")))


def test_rate_limits_are_retried_with_backoff(scripted, monkeypatch):
    limited = (429, {"error": {"message": "Rate limit reached", "type": "rate_limit"}})
    server = scripted([limited, limited, (200, chat_body(GOOD))])
    proposal = next(generator(server.url, monkeypatch).propose(Context("activation")))
    assert proposal.source and "sigmoid(1.3 * x)" in proposal.source
    assert len(server.requests) == 3
    server = scripted([limited])
    with pytest.raises(GenerationStopped, match="still rate limited after 2 retries"):
        next(generator(server.url, monkeypatch).propose(Context("activation")))


def test_bad_replies_are_recorded_failures(scripted, monkeypatch):
    three = "\n".join(f"```python\ndef activation(x):\n    return x * {i}\n```" for i in (2, 3, 4))
    server = scripted([(200, chat_body("")), (200, chat_body("Just use ReLU.")),
                       (200, "{not json"), (200, chat_body(three, 60, 30))])
    gen = generator(server.url, monkeypatch)
    proposals = list(zip(range(6), gen.propose(Context("activation"))))
    errors = [p.error for _, p in proposals]
    assert errors[:3] == ["no usable code in the reply", "no usable code in the reply",
                          errors[2]] and "unusable response" in errors[2]
    sources = [p.source for _, p in proposals[3:6]]
    assert all(s and f"x * {i}" in s for s, i in zip(sources, (2, 3, 4)))
    assert proposals[3][1].origin["metrics"] == {"llm.prompt_tokens": 20.0, "llm.completion_tokens": 10.0}
    assert "llm/reply.txt" in proposals[3][1].origin["artifacts"]


def test_token_budget_and_cost_cap_stop_cleanly(scripted, monkeypatch):
    server = scripted([(200, chat_body(GOOD, 400, 100))])
    gen = generator(server.url, monkeypatch, token_budget=1000)
    got = []
    with pytest.raises(GenerationStopped, match="token budget spent: 1000 of 1000"):
        for p in gen.propose(Context("activation")):
            got.append(p)
    assert len(got) == 2
    gen = generator(server.url, monkeypatch, price_prompt_per_1k=1.0, cost_cap_usd=0.5)
    with pytest.raises(GenerationStopped, match="cost cap reached"):
        list(gen.propose(Context("activation")))


def test_an_llm_that_repeats_itself_ends_the_round(scripted, tracking_uri, monkeypatch):
    server = scripted([(200, chat_body(GOOD))])
    gen = generator(server.url, monkeypatch)
    config = with_overrides(small_round_config(gen.config), discover={"max_attempts_factor": 3})
    summary = Round(connect(tracking_uri), config, "activation", generator=gen).run(
        n=2, top_k=0, seeds=1)
    assert summary.generated == 1 and summary.duplicates == 5
    assert "repeated itself" in summary.stop_reason
    run = MlflowClient(tracking_uri).get_run(summary.round_run_id)
    assert run.info.status == "FINISHED" and "repeated itself" in run.data.tags[names.ROUND_STOP_REASON]


def test_a_replys_tokens_are_split_over_its_candidates_in_whole_tokens(scripted, monkeypatch):
    """Issue 31: 1061.9999999999998 tokens came of thirds summed back; whole shares sum exactly."""
    three = "\n".join(f"```python\ndef activation(x):\n    return x * {i}\n```" for i in (2, 3, 4))
    server = scripted([(200, chat_body(three, 61, 31))])
    proposals = [p for _, p in zip(range(3), generator(server.url, monkeypatch).propose(Context("activation")))]
    shares = [p.origin["metrics"] for p in proposals]
    assert all(float(v).is_integer() for s in shares for v in s.values())
    assert sum(s["llm.prompt_tokens"] for s in shares) == 61 and sum(s["llm.completion_tokens"] for s in shares) == 31
