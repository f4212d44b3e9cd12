"""The decoding grammar (generate/grammar.py): every file it admits is one function of the kind's
contract made of allow-listed calls, so a small model constrained by it writes code the validator
accepts. Sentences are drawn from the GBNF text itself by a small sampler, then judged by the real
validator in the real sandbox."""
import json
import random
import re

import pytest

from mlr_mlflow.config import SandboxConfig
from mlr_mlflow.generate import grammar
from mlr_mlflow.hypothesis import Hypothesis
from mlr_mlflow.sandbox import open_sandbox
from mlr_mlflow.validate import validate_many

KINDS = ("activation", "preprocessing", "regularizer")
TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[A-Za-z][\w-]*|[()|?])')


def parse_gbnf(text: str) -> dict[str, list]:
    """rule name -> its body as tokens (the subset the builder writes: literals, rule names,
    character classes, groups, `|` and `?`)."""
    rules = {}
    for line in text.strip().splitlines():
        name, _, body = line.partition(" ::= ")
        rules[name.strip()] = TOKEN.findall(body)
    return rules


def sample(rules: dict, name: str, rng: random.Random) -> str:
    def alternatives(tokens):
        alts, depth, current = [], 0, []
        for tok in tokens:
            depth += tok == "("
            depth -= tok == ")"
            if tok == "|" and depth == 0:
                alts.append(current)
                current = []
            else:
                current.append(tok)
        return [*alts, current]

    def expand(tokens) -> str:
        out, i = [], 0
        while i < len(tokens):
            tok = tokens[i]
            if tok == "(":
                depth, j = 1, i + 1
                while depth:
                    depth += {"(": 1, ")": -1}.get(tokens[j], 0)
                    j += 1
                inner, i = tokens[i + 1:j - 1], j
            else:
                inner, i = [tok], i + 1
            if i < len(tokens) and tokens[i] == "?":
                i += 1
                if rng.random() < 0.5:
                    continue
            out.append(one(inner))
        return "".join(out)

    def one(tokens) -> str:
        if len(tokens) == 1:
            tok = tokens[0]
            if tok.startswith('"'):
                return json.loads(tok)
            if tok.startswith("["):
                lo, hi = tok[1], tok[3]
                return chr(rng.randint(ord(lo), ord(hi)))
            return expand_rule(tok)
        return expand(rng.choice(alternatives(tokens)))

    def expand_rule(rule: str) -> str:
        return expand(rng.choice(alternatives(rules[rule])))

    return expand_rule(name)


@pytest.mark.parametrize("kind", KINDS)
def test_every_call_in_the_grammar_is_on_the_validators_allow_list(kind):
    called = set(re.findall(r"\b((?:torch|F|np)\.\w+)\(", grammar.gbnf(kind)))
    assert called and all(grammar.allowed(c) for c in called), sorted(c for c in called
                                                                      if not grammar.allowed(c))


@pytest.mark.parametrize("kind", KINDS)
def test_files_the_grammar_admits_pass_static_and_dynamic_validation(kind):
    rules = parse_gbnf(grammar.gbnf(kind))
    rng = random.Random(0)
    sources = sorted({sample(rules, "root", rng) for _ in range(24)})
    assert len(sources) > 15  # the grammar leaves room for many different hypotheses
    sandbox = open_sandbox(SandboxConfig())
    try:
        results = validate_many([Hypothesis(kind, s) for s in sources], sandbox)
    finally:
        sandbox.close()
    invalid = [(s, r.reasons) for s, r in zip(sources, results) if not r.valid]
    # a few sentences may still overflow or divide badly: the goal is >= 90 % valid
    assert len(invalid) <= 0.1 * len(sources), invalid[:3]


def test_json_schema_replies_are_unwrapped_to_their_code():
    code = "def activation(x):\n    return x\n"
    assert grammar.unwrap(json.dumps({"code": code}), "json_schema") == code
    assert grammar.unwrap("not json", "json_schema") == "not json"
    assert grammar.unwrap(json.dumps({"code": code}), "gbnf") == json.dumps({"code": code})


def test_request_fields_name_the_servers_fields():
    assert "grammar" in grammar.request_fields("gbnf", "activation")["extra_body"]
    assert grammar.request_fields("json_schema", "activation")["response_format"]["type"] == "json_schema"
    assert grammar.request_fields("off", "activation") == {}


def test_detection_says_off_for_a_server_that_is_not_llama_cpp():
    from tests.openai_servers import ScriptedServer, chat_body

    server = ScriptedServer([(200, chat_body("hi"))])  # answers no GET: not llama.cpp
    try:
        assert grammar.detect(server.url) == "off"
    finally:
        server.close()
    assert grammar.detect("http://127.0.0.1:9/v1", timeout_s=0.5) == "off"  # nothing listens


from tests.test_llm import llama  # noqa: E402,F401  the real llama.cpp server, one per module


@pytest.mark.slow
def test_auto_detects_the_real_llama_cpp_server(llama):
    from tests.openai_servers import API_KEY

    assert grammar.detect(llama, API_KEY) == "gbnf"


@pytest.mark.slow
def test_a_grammar_constrained_round_beats_the_same_round_without_it(llama, tmp_path, monkeypatch):
    """The real Gemma 3 270M: the same round (prompts, seed, budget) with and without the grammar;
    the share of proposals that validate is higher with it."""
    import dataclasses

    from mlr_mlflow.config import Config, LLMConfig, with_overrides
    from mlr_mlflow.generate.llm import LLMGenerator
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import connect
    from tests.openai_servers import API_KEY, MODEL

    monkeypatch.setenv("MLR_TEST_KEY", API_KEY)
    shares = {}
    for mode in ("off", "gbnf"):
        llm = LLMConfig(base_url=llama, model=MODEL, api_key_env="MLR_TEST_KEY", max_tokens=128,
                        temperature=0.8, trace=False, grammar=mode, token_budget=40_000)
        config = dataclasses.replace(
            # at most 2 proposals per hypothesis asked for: a round of 2 without the grammar, whose
            # proposals all fail, stops after 4 calls of the model instead of 10 (on a 2-CPU machine
            # each unconstrained call runs to max_tokens: the test's cost is these calls)
            with_overrides(Config(), suite={"datasets": ("iris",)},
                           discover={"parents": 2, "max_attempts_factor": 2},
                           confirm={"enabled": False}), llm=llm)
        client = connect(f"sqlite:///{tmp_path}/{mode}.db")
        summary = Round(client, config, "activation", generator=LLMGenerator(llm)).run(
            n=2, top_k=1, seeds=1, seed=0)
        proposals = summary.generated + summary.duplicates + summary.rediscoveries + \
            summary.generation_failures
        shares[mode] = summary.valid / max(proposals, 1)
    assert shares["gbnf"] > shares["off"], shares
