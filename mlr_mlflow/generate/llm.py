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

from ..config import LLMConfig, UsageError
from . import Context, GenerationStopped, Proposal
from .parse import extract
from .passages import inspiration
from ..tracking import names
from .prompts import SHOWN, STYLES, render

OPENAI_URL = "https://api.openai.com/v1"
MAX_BAD_REQUESTS = 3


class LLMGenerator:
    name = "llm"

    def __init__(self, config: LLMConfig, client=None):
        if config.prompt not in (*STYLES, "mixed"):
            raise UsageError(f"unknown prompt style {config.prompt!r} (incremental, novelty or mixed)")
        self.config = config
        self._client = client
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.trace_ids: list[str] = []
        self._tracing = False

    def enable_tracing(self, tracking_uri: str, experiment_id: str) -> str | None:
        """Trace every call in MLflow (mlflow.openai.autolog); None when it works, else why not (the
        round goes on untraced). Traces go to MLflow's fluent tracking URI and experiment: the
        caller generates inside `tracking.fluent.fluent_store(tracking_uri, experiment_id)`."""
        if not self.config.trace:
            return None
        try:
            import mlflow.openai

            mlflow.openai.autolog(log_traces=True, silent=True)
        except Exception as exc:  # an openai version MLflow does not support, say
            return f"{type(exc).__name__}: {exc}"
        self._tracing = True
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

    def propose(self, context: Context) -> Iterator[Proposal]:
        rng = random.Random(context.seed)
        bad_requests = 0
        request = 0
        while True:
            self._check_budget()
            style = self.config.prompt if self.config.prompt != "mixed" else STYLES[request % 2]
            request += 1
            prompt = render(style, context, self.config.prompt_dir, rng=rng)
            try:
                reply, used = self._complete(prompt)
            except _BadRequest as exc:
                bad_requests += 1
                if bad_requests >= MAX_BAD_REQUESTS:
                    raise GenerationStopped(f"the endpoint rejected {bad_requests} requests: {exc}")
                yield Proposal(None, error=f"request rejected: {exc}",
                               origin={"artifacts": {"llm/prompt.txt": prompt}})
                continue
            parents = [k.sha256 for k in context.known[:SHOWN]] if style == "incremental" else []
            yield from self._proposals(context.kind, style, prompt, reply, used, parents,
                                       context.passages)

    def _proposals(self, kind, style, prompt, reply, used, parents=(), passages=()) -> Iterator[Proposal]:
        sources = extract(reply, kind)
        inspired = inspiration(passages)  # the papers' passages the prompt showed
        origin = {"tags": {"mlr.llm.model": self.config.model, "mlr.llm.prompt_style": style,
                           **inspired.get("tags", {})},
                  "artifacts": {"llm/prompt.txt": prompt, "llm/reply.txt": reply,
                                **inspired.get("artifacts", {})}}
        if parents:  # lineage: an incremental prompt builds on the hypotheses it shows
            origin["tags"][names.PARENTS] = ",".join(parents)
        if not sources:
            yield Proposal(None, error="no usable code in the reply",
                           origin={**origin, "metrics": used})
            return
        share = {k: v / len(sources) for k, v in used.items()}  # tokens split over candidates
        for source in sources:
            yield Proposal(source, origin={**origin, "metrics": share})

    def _complete(self, prompt: str) -> tuple[str, dict]:
        import openai

        try:
            response = self.client().chat.completions.create(
                model=self.config.model, messages=[{"role": "user", "content": prompt}],
                temperature=self.config.temperature, max_tokens=self.config.max_tokens)
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
        if self._tracing:
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
        return reply, {"llm.prompt_tokens": float(prompt_tokens),
                       "llm.completion_tokens": float(completion_tokens)}


class _BadRequest(Exception):
    """This request failed; another may not."""


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(exc)[:300]
