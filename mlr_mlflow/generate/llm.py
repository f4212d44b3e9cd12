"""The `llm` generator: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp).

Each request shows a prompt (incremental or novelty, alternating under "mixed") and turns the reply
into zero or more candidate sources (`parse.extract`). A reply with no usable code is a recorded
failure, not a crash. The openai client retries rate limits, timeouts, 5xx and connection errors
with exponential backoff (`max_retries`); what still fails after that, and what can never succeed
(a refused key, an unknown model), stops generation with a clear reason and the round keeps what it
has. Tokens are counted per hypothesis and per round; a token budget and a cost cap stop cleanly.
The prompt and the reply travel with each hypothesis as the artifacts llm/prompt.txt, llm/reply.txt.
"""
from __future__ import annotations

import os
import random
from typing import Iterator

from ..config import LLMConfig
from . import Context, GenerationStopped, Generator, Proposal
from . import grammar
from .parse import extract
from .repair import repair
from .passages import inspiration
from ..tracking import names
from .prompt_extras import extras
from .prompts import SHOWN, feedback_section, fill, values
from .templates import PromptTemplate, round_templates

OPENAI_URL = "https://api.openai.com/v1"
MAX_BAD_REQUESTS = 3


class LLMGenerator(Generator):
    name = "llm"

    def __init__(self, config: LLMConfig, client=None):
        self.config = config
        self._client = client
        self.tracking_uri: str | None = None  # the store whose Prompt Registry holds the templates
        self._grammar: str | None = None  # the constrained decoding in use, once resolved
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.trace_ids: list[str] = []
        self.tracing = False

    def enable_tracing(self, tracking_uri: str, experiment_id: str) -> str | None:
        """Trace every call in MLflow (mlflow.openai.autolog); None when it works, else why not (the
        round goes on untraced). Traces go to MLflow's fluent tracking URI and experiment: the
        caller generates inside `tracking.fluent.fluent_store(tracking_uri, experiment_id)`.
        The round calls this before generating: the store's Prompt Registry then holds the prompts."""
        self.tracking_uri = tracking_uri
        if not self.config.trace:
            return None
        try:
            import mlflow.openai

            mlflow.openai.autolog(log_traces=True, silent=True)
        except Exception as exc:  # an openai version MLflow does not support, say
            return f"{type(exc).__name__}: {exc}"
        self.tracing = True
        return None

    @property
    def base_url(self) -> str:
        return self.config.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL

    def client(self):
        if self._client is None:
            from openai import OpenAI

            key = os.environ.get(self.config.api_key_env)
            if not key:
                if self.base_url == OPENAI_URL:
                    raise GenerationStopped(f"no API key: set ${self.config.api_key_env} (or point "
                                            "--base-url at a local OpenAI-compatible server)")
                key = "unused"  # local servers (Ollama, llama.cpp, vLLM) accept anything by default
            self._client = OpenAI(base_url=self.base_url, api_key=key, timeout=self.config.timeout_s,
                                  max_retries=self.config.max_retries)
        return self._client

    @property
    def cost_usd(self) -> float:
        c = self.config
        return (self.prompt_tokens * c.price_prompt_per_1k
                + self.completion_tokens * c.price_completion_per_1k) / 1000

    def _check_budget(self) -> None:
        spent = self.prompt_tokens + self.completion_tokens
        if spent >= self.config.token_budget:
            raise GenerationStopped(f"token budget spent: {spent} of {self.config.token_budget} tokens")
        if self.config.cost_cap_usd and self.cost_usd >= self.config.cost_cap_usd:
            raise GenerationStopped(f"cost cap reached: ${self.cost_usd:.4f} of "
                                    f"${self.config.cost_cap_usd:.4f}")

    def templates(self, kind: str) -> list[PromptTemplate]:
        """The templates this round alternates between, at their current registry versions."""
        return round_templates(self.config, kind, self.tracking_uri)

    @staticmethod
    def prompt(template: PromptTemplate, context: Context, rng: random.Random) -> str:
        """The text one request sends (`prompt show` prints the first one)."""
        text = fill(template.text, values(template.style, context, rng=rng),
                    f"{template.name} version {template.version}")
        if "{{extras}}" not in template.text.replace(" ", ""):  # a prompt of one's own: at its end
            text += extras(context)  # why recent proposals were rejected; passages of papers
        return text + feedback_section(context.reviews)  # what reviewers said (issue 30)

    def grammar_mode(self) -> str:
        """The constrained decoding this endpoint gets: [llm] grammar, with "auto" resolved."""
        if self._grammar is None:
            mode = self.config.grammar
            if mode == "auto":
                mode = "off" if self.base_url == OPENAI_URL else grammar.detect(
                    self.base_url, os.environ.get(self.config.api_key_env, ""))
            self._grammar = mode
        return self._grammar

    def propose(self, context: Context) -> Iterator[Proposal]:
        rng = random.Random(context.seed)
        templates = self.templates(context.kind)  # once per round: a moved alias counts next round
        bad_requests = 0
        request = 0
        while True:
            self._check_budget()
            template = templates[request % len(templates)]
            style = template.style
            request += 1
            prompt = self.prompt(template, context, rng)
            try:
                reply, used = self._complete(prompt, context.kind)
            except _BadRequest as exc:
                bad_requests += 1
                if bad_requests >= MAX_BAD_REQUESTS:
                    raise GenerationStopped(f"the endpoint rejected {bad_requests} requests: {exc}")
                yield Proposal(None, error=f"request rejected: {exc}",
                               origin={"artifacts": {names.LLM_PROMPT_ARTIFACT: prompt}})
                continue
            parents = [k.sha256 for k in context.known[:SHOWN]] if style == "incremental" else []
            yield from self._proposals(context.kind, template, prompt, reply, used, parents,
                                       context.passages)

    def _proposals(self, kind, template, prompt, reply, used, parents=(),
                   passages=()) -> Iterator[Proposal]:
        mode = self.grammar_mode()
        sources = extract(grammar.unwrap(reply, mode), kind)
        inspired = inspiration(passages)  # the papers' passages the prompt showed
        origin = {"tags": {names.LLM_MODEL: self.config.model, names.LLM_PROMPT_STYLE: template.style,
                           names.PROMPT_NAME: template.name, names.PROMPT_VERSION: template.version,
                           names.LLM_GRAMMAR: mode, **inspired.get("tags", {})},
                  "artifacts": {names.LLM_PROMPT_ARTIFACT: prompt, names.LLM_REPLY_ARTIFACT: reply,
                                **inspired.get("artifacts", {})}}
        if parents:  # lineage: an incremental prompt builds on the hypotheses it shows
            origin["tags"][names.PARENTS] = ",".join(parents)
        if not sources:
            yield Proposal(None, error="no usable code in the reply",
                           origin={**origin, "metrics": used})
            return
        for i, source in enumerate(sources):  # tokens split over candidates, whole ones summing to the reply's
            share = {k: float(int(v) // len(sources) + (i < int(v) % len(sources))) for k, v in used.items()}
            fixed, notes = repair(source, kind)
            tags = {**origin["tags"], names.LLM_REPAIRED: "; ".join(notes)} if notes else origin["tags"]
            yield Proposal(fixed, origin={**origin, "tags": tags, "metrics": share})

    def _complete(self, prompt: str, kind: str) -> tuple[str, dict]:
        import openai

        try:
            response = self.client().chat.completions.create(
                model=self.config.model, messages=[{"role": "user", "content": prompt}],
                temperature=self.config.temperature, max_tokens=self.config.max_tokens,
                **grammar.request_fields(self.grammar_mode(), kind))
        except openai.AuthenticationError as exc:
            raise GenerationStopped(f"the endpoint {self.base_url} refused the API key "
                                    f"(${self.config.api_key_env}): {_message(exc)}") from None
        except openai.PermissionDeniedError as exc:
            raise GenerationStopped(f"permission denied by {self.base_url}: {_message(exc)}") from None
        except openai.NotFoundError as exc:
            raise GenerationStopped(f"model {self.config.model!r} not found at {self.base_url}: "
                                    f"{_message(exc)}") from None
        except openai.RateLimitError as exc:
            raise GenerationStopped(f"still rate limited after {self.config.max_retries} retries: "
                                    f"{_message(exc)}") from None
        except openai.APITimeoutError:
            raise GenerationStopped(f"{self.base_url} timed out ({self.config.timeout_s:g} s) "
                                    f"{self.config.max_retries + 1} times") from None
        except openai.APIConnectionError as exc:
            raise GenerationStopped(f"cannot reach {self.base_url} after {self.config.max_retries} "
                                    f"retries: {exc.__cause__ or exc}") from None
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            raise _BadRequest(_message(exc)) from None
        except openai.APIStatusError as exc:
            raise GenerationStopped(f"{self.base_url} answered HTTP {exc.status_code} after "
                                    f"{self.config.max_retries} retries: {_message(exc)}") from None
        except (openai.APIError, ValueError) as exc:  # a malformed body (JSON that does not parse)
            raise _BadRequest(f"unusable response: {type(exc).__name__}: {exc}") from None
        if self.tracing:
            import mlflow

            trace_id = mlflow.get_last_active_trace_id(thread_local=True)
            if trace_id:
                self.trace_ids.append(trace_id)
        try:
            reply = response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            reply = ""
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None) or len(prompt) // 4  # estimate if absent
        completion_tokens = getattr(usage, "completion_tokens", None) or len(reply) // 4
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        return reply, {names.LLM_PROMPT_TOKENS: float(prompt_tokens),
                       names.LLM_COMPLETION_TOKENS: float(completion_tokens)}


class _BadRequest(Exception):
    """This request failed; another may not."""


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(exc)[:300]
