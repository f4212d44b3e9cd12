"""Several LLMs in one round: the bandit that shares proposals among `[[llm.models]]`, its prior
from earlier rounds, and two real llama.cpp servers with different settings."""
import math

import pytest

from mlr_mlflow.config import ConfigError, LLMConfig, LLMModelConfig, config_from_dict
from mlr_mlflow.generate import Context, make_generator
from mlr_mlflow.generate.portfolio import ArmStats, Portfolio, value
from mlr_mlflow.round.proposals import collect
from mlr_mlflow.round.summary import RoundSummary
from mlr_mlflow.tracking import connect, create_run, experiment_id, log, names
from mlr_mlflow.tracking.queries import arm_history

from .openai_servers import API_KEY, llama_server


def portfolio(*models, prompt="incremental", **llm) -> Portfolio:
    return Portfolio(LLMConfig(prompt=prompt, models=tuple(models), **llm))


def test_the_config_reads_a_portfolio_and_refuses_bad_entries():
    config = config_from_dict({"llm": {"models": [
        {"model": "small", "base_url": "http://127.0.0.1:1/v1", "max_share": 0.5},
        {"model": "big", "price_prompt_per_1k": 0.01}]}})
    assert [m.label for m in config.llm.models] == ["small", "big"]
    assert config.llm.models[0].max_share == 0.5
    assert isinstance(make_generator("llm", config), Portfolio)
    for bad in ({"model": "a", "max_share": 0}, {"model": "a", "max_share": 1.5},
                {"model": "a", "name": "has space"}, {"model": "a", "price_prompt_per_1k": -1}):
        with pytest.raises(ConfigError, match=r"llm\.models"):
            config_from_dict({"llm": {"models": [bad]}})
    with pytest.raises(ConfigError, match="share a name"):
        config_from_dict({"llm": {"models": [{"model": "a"}, {"model": "a"}]}})


def test_mixed_prompts_make_the_grid_of_models_and_styles():
    p = portfolio(LLMModelConfig("a"), LLMModelConfig("b"), prompt="mixed")
    assert [a.label for a in p.arms] == ["a.incremental", "a.novelty", "b.incremental", "b.novelty"]
    assert {a.generator.config.prompt for a in p.arms} == {"incremental", "novelty"}
    assert all(a.generator.config.models == () for a in p.arms)


def test_every_arm_is_tried_once_then_the_bandit_prefers_what_yields_more():
    p = portfolio(LLMModelConfig("a"), LLMModelConfig("b"))
    assert p.choose().label == "a.incremental"
    p.remember({"a.incremental": ArmStats(20, 2), "b.incremental": ArmStats(20, 14)})
    picks = [p.choose().label for _ in range(5)]
    assert picks == ["b.incremental"] * 5  # choose() alone does not count a pull


def test_cost_divides_the_yield_when_models_have_prices():
    cheap, dear = ArmStats(10, 5, cost_usd=0.01), ArmStats(10, 6, cost_usd=1.0)
    assert value(cheap, paid=True) > value(dear, paid=True)
    assert value(cheap, paid=False) < value(dear, paid=False)
    assert value(ArmStats(10, 5, screen_score=0.9), False) > value(ArmStats(10, 5, screen_score=0.1), False)
    assert value(ArmStats(), False) == 0.0


def test_max_share_holds_an_arm_back_while_another_can_go():
    p = portfolio(LLMModelConfig("a", max_share=0.25), LLMModelConfig("b"))
    p.remember({"a.incremental": ArmStats(50, 50), "b.incremental": ArmStats(50, 1)})
    for arm in p.arms:  # as if the round had already made 8 proposals, 4 of them a's
        arm.now.proposals = 4
    p.pulls = ["x"] * 8
    assert p.choose().label == "b.incremental"


def test_arm_history_sums_earlier_rounds_and_averages_screen_scores(tmp_path):
    client = connect(f"sqlite:///{tmp_path}/mlflow.db")
    exp = experiment_id(client, "mlr-activation")
    for r, (props, acc) in enumerate([(8, 2), (6, 5)], 1):
        run = create_run(client, exp, f"round {r}", {names.ROLE: "round"})
        log(client, run, metrics={"llm.arm.a.incremental.proposals": props,
                                  "llm.arm.a.incremental.accepted": acc,
                                  "llm.arm.a.incremental.cost_usd": 0.5}, step=r)
    for score in (0.2, 0.6):
        run = create_run(client, exp, "h", {names.ROLE: "hypothesis", names.LLM_ARM: "a.incremental"})
        log(client, run, metrics={names.SCREEN_SCORE: score})
    history = arm_history(client, exp)
    assert history["a.incremental"]["proposals"] == 14 and history["a.incremental"]["accepted"] == 7
    assert history["a.incremental"]["cost_usd"] == 1.0
    assert math.isclose(history["a.incremental"]["screen_score"], 0.4)


@pytest.fixture(scope="module")
def two_llamas(tmp_path_factory):
    started = []
    for i in range(2):
        try:
            proc, url = llama_server(str(tmp_path_factory.mktemp(f"llama{i}")))
        except BaseException:  # installed but broken: the tests fail, and no server is left behind
            for p, _ in started:
                p.kill()
            raise
        if proc is None:
            for p, _ in started:
                p.kill()
            pytest.skip(url)
        started.append((proc, url))
    yield [url for _, url in started]
    for proc, _ in started:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_the_share_moves_to_the_model_that_yields_more(two_llamas, monkeypatch):
    """Two real llama.cpp servers: one cut to 4 tokens a reply (never a whole function), one with
    room to write code. After the first try of each, most proposals go to the second."""
    monkeypatch.setenv("MLR_TEST_KEY", API_KEY)
    cut, room = two_llamas
    config = LLMConfig(prompt="incremental", api_key_env="MLR_TEST_KEY", temperature=0.7,
                       trace=False, models=(LLMModelConfig("gemma3-270m", cut, name="cut", max_tokens=4),
                                            LLMModelConfig("gemma3-270m", room, name="room",
                                                           max_tokens=256)))
    generator = Portfolio(config)
    summary = RoundSummary(round_run_id="", round_id="r")
    hypotheses, records, _ = collect(generator, Context("activation", seed=3), "activation", 4, {},
                                     24, summary)
    metrics = generator.metrics()
    assert metrics["llm.arm.cut.incremental.accepted"] == 0
    assert metrics["llm.arm.room.incremental.accepted"] >= 1
    assert metrics["llm.arm.room.incremental.share"] > metrics["llm.arm.cut.incremental.share"]
    assert {r["tags"][names.LLM_ARM] for r in records} == {"cut.incremental", "room.incremental"}
    assert all(h.origin["tags"][names.LLM_ARM] == "room.incremental" for h in hypotheses)


def test_the_dashboard_shows_each_arms_yield_and_cost(tmp_path):
    from mlr_mlflow.dashboard import data
    from mlr_mlflow.dashboard.page import Page
    from mlr_mlflow.tracking.dashboard_queries import Snapshot

    rounds = [{"role": "round", "kind": "activation", "metrics": {
        "llm.arm.small.novelty.proposals": p, "llm.arm.small.novelty.accepted": a,
        "llm.arm.small.novelty.cost_usd": 0.25, "llm.prompt_tokens": 10.0}, "run_id": f"r{p}",
        "experiment_id": "1", "round_id": f"x{p}", "start_time": p} for p, a in ((8, 2), (4, 4))]
    snap = Snapshot(tracking_uri="", runs=rounds)
    rows = data.portfolio(snap)
    assert rows == [{"kind": "activation", "arm": "small.novelty", "proposals": 12.0, "accepted": 6.0,
                     "cost_usd": 0.5, "yield": 0.5, "mean_screen_score": None}]
    html = Page(snap, "http://127.0.0.1:5000").llm()
    assert "Models of the portfolio" in html and "small.novelty" in html and "0.500" in html
