"""The `llm` generator's configuration (`[llm]` and its portfolio `[[llm.models]]`)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .checks import FieldError, above, at_least, checked, one_of
from .errors import ConfigError


@dataclass(frozen=True)
@checked("[[llm.models]]", max_share=above(0), price_prompt_per_1k=at_least(0),
         price_completion_per_1k=at_least(0))
class LLMModelConfig:
    """One model of a portfolio (`[[llm.models]]`): the bandit shares a round's proposals among them.

    Attributes:
        model: the model name its endpoint serves.
        base_url: its endpoint; empty means [llm] base_url.
        name: a label for metrics and the dashboard (letters, digits, `_`, `-`, `.`); empty: `model`.
        api_key_env: the variable holding its key; empty means [llm] api_key_env.
        price_prompt_per_1k, price_completion_per_1k: its prices (the bandit's cost).
        max_share: the largest share of a round's proposals it may get (0 < max_share <= 1).
        temperature, max_tokens: its own settings; negative (the default) means [llm]'s.
    """

    model: str
    base_url: str = ""
    name: str = ""
    api_key_env: str = ""
    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0
    max_share: float = 1.0
    temperature: float = -1.0
    max_tokens: int = -1

    def __post_init__(self):
        label = self.label
        if not label or not all(c.isalnum() or c in "_-." for c in label):
            raise ConfigError(f"[[llm.models]] name {label!r}: use letters, digits, '_', '-' and '.'")
        if self.max_share > 1:
            raise ConfigError(f"[[llm.models]] {label}: max_share must be at most 1, got {self.max_share}")

    @property
    def label(self) -> str:
        return self.name or self.model


@dataclass(frozen=True)
@checked("llm", grammar=one_of("auto", "gbnf", "json_schema", "off"), temperature=at_least(0),
         max_tokens=at_least(1), timeout_s=above(0), max_retries=at_least(0), token_budget=at_least(1),
         bandit_c=at_least(0),
         cost_cap_usd=at_least(0), price_prompt_per_1k=at_least(0), price_completion_per_1k=at_least(0))
class LLMConfig:
    """The `llm` generator: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp).

    Attributes:
        base_url: the endpoint; empty means $OPENAI_BASE_URL, else OpenAI's.
        model: the model name the endpoint serves.
        api_key_env: the environment variable holding the key (never stored in config or runs).
        prompt: "incremental" (improve the best known), "novelty" (unlike the known) or "mixed"
            (the shipped templates, kept in MLflow's Prompt Registry as mlr-<kind>-<style>), or
            "NAME@ALIAS": a prompt registered in the Prompt Registry, at the version its alias names
            when each round starts.
        prompt_dir: a directory with your own incremental.txt / novelty.txt templates (used instead
            of the registry).
        grammar: constrained decoding: "gbnf" (llama.cpp's `grammar` field), "json_schema", "off",
            or "auto" (gbnf when the endpoint is a llama.cpp server, else off).
        temperature, max_tokens: per request.
        timeout_s, max_retries: per request; retries back off exponentially (rate limits, timeouts,
            5xx, connection errors).
        token_budget: prompt + completion tokens per round; generation stops cleanly when spent.
        cost_cap_usd: stop when the estimated cost reaches it (0: no cap); prices per 1k tokens.
        trace: trace the calls in MLflow with mlflow.openai.autolog.
        models: a portfolio (`[[llm.models]]`); empty: the one model above. With several, a
            cost-aware bandit shares each round's proposals among models (and prompt styles under
            "mixed") by what each yields per unit of cost; `bandit_c` is its exploration weight.
        context: a directory of papers (.txt, .md, .pdf) whose most relevant passages go into the
            prompt (`discover --context DIR`); empty: none.
        prompts: several prompts for the bandit to choose among, each as `prompt` takes it (a
            style or "NAME@ALIAS"; two aliases of one registered prompt are two of its versions);
            every model of the portfolio (or the one model above) gets one arm per prompt, and
            `prompt` is not used. Empty: `prompt` decides.
    """

    base_url: str = ""
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    prompt: str = "mixed"
    prompt_dir: str = ""
    temperature: float = 0.8
    max_tokens: int = 512
    timeout_s: float = 60.0
    max_retries: int = 3
    token_budget: int = 200_000
    cost_cap_usd: float = 0.0
    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0
    trace: bool = True
    models: tuple[LLMModelConfig, ...] = ()
    bandit_c: float = 0.5
    grammar: str = "auto"
    context: str = ""
    prompts: tuple[str, ...] = ()

    def __post_init__(self):
        if self.prompt not in ("incremental", "novelty", "mixed") and \
                not re.fullmatch(r"[\w.-]+@[\w.-]+", self.prompt):
            raise FieldError("llm", "prompt", 'expected one of "incremental", "novelty", "mixed" '
                             f'or "NAME@ALIAS" (a registered prompt), got {json.dumps(self.prompt)}')
        for one in self.prompts:
            if not isinstance(one, str) or (one not in ("incremental", "novelty")
                                            and not re.fullmatch(r"[\w.-]+@[\w.-]+", one)):
                raise FieldError("llm", "prompts", 'expected a list of "incremental", "novelty" or '
                                 f'"NAME@ALIAS" (a registered prompt), got {json.dumps(one)}')
        if len(set(self.prompts)) != len(self.prompts):
            raise FieldError("llm", "prompts", "a prompt is listed twice")
