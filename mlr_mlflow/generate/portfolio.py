"""Several LLMs in one round: a cost-aware bandit shares the proposals among them.

Each arm is one model of `[[llm.models]]` (or [llm]'s one model) with one prompt: a style (both
under "mixed", so one round covers the seed paper's grid of models x prompt styles for a kind), or
each of `[llm] prompts`, which may name versions of one registered prompt by their aliases
(`mlr-activation-novelty@production`, `...@candidate`): the bandit then chooses among versions.
An arm's value is what it yields per unit of cost:

    yield = accepted proposals (valid: static check passed; novel: not a duplicate, semantic
            duplicate or rediscovery) per proposal, weighted by the mean `screen_score` of what it
            proposed in earlier rounds (screening happens after generation, so within a round the
            weight is the arm's history);
    cost  = dollars per proposal from its prices; with every price zero (local models), one
            proposal is the unit.

Arms are pulled by UCB (`value + c * sqrt(ln N / n)`, values normalised by the best) after each
arm was tried once; an arm at its `max_share` of the round's proposals waits while another can go.
Earlier rounds' counts (from the round runs' per-arm metrics) start the round as a prior, so the
share moves towards the model that yields more across rounds as well as within one. An arm whose
endpoint stops (unreachable, budget) is dropped; the round stops when every arm has.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Iterator

from ..config import LLMConfig, LLMModelConfig
from ..tracking.names import LLM_ARM as ARM_TAG, LLM_ARM_METRIC_PREFIX as ARM_METRIC_PREFIX
from . import Context, GenerationStopped, Generator, Proposal
from .llm import LLMGenerator
from .prompts import STYLES

ACCEPTED = "accepted"


@dataclass
class ArmStats:
    """What an arm did: proposals asked, accepted (valid and novel), dollars spent, and the mean
    screen_score of its evaluated hypotheses (None: none yet)."""

    proposals: float = 0.0
    accepted: float = 0.0
    cost_usd: float = 0.0
    screen_score: float | None = None

    def plus(self, other: "ArmStats") -> "ArmStats":
        return ArmStats(self.proposals + other.proposals, self.accepted + other.accepted,
                        self.cost_usd + other.cost_usd, other.screen_score
                        if other.screen_score is not None else self.screen_score)


def arm_label(model: LLMModelConfig, style: str) -> str:
    """`<model>.<style>`; a registered prompt `NAME@ALIAS` reads `NAME-ALIAS` (metric keys take no @)."""
    return f"{model.label}.{style.replace('@', '-')}"


def models_of(config: LLMConfig) -> tuple[LLMModelConfig, ...]:
    """The portfolio's models: `[[llm.models]]`, else [llm]'s one model (several `prompts`)."""
    return config.models or (LLMModelConfig(
        model=config.model, base_url=config.base_url, api_key_env=config.api_key_env,
        price_prompt_per_1k=config.price_prompt_per_1k,
        price_completion_per_1k=config.price_completion_per_1k),)


def model_config(base: LLMConfig, model: LLMModelConfig, style: str) -> LLMConfig:
    """The single-model LLMConfig of one arm: the portfolio entry's settings over [llm]'s."""
    return dataclasses.replace(
        base, models=(), prompts=(), prompt=style, model=model.model, base_url=model.base_url or base.base_url,
        api_key_env=model.api_key_env or base.api_key_env,
        price_prompt_per_1k=model.price_prompt_per_1k,
        price_completion_per_1k=model.price_completion_per_1k,
        temperature=base.temperature if model.temperature < 0 else model.temperature,
        max_tokens=base.max_tokens if model.max_tokens < 0 else model.max_tokens,
        cost_cap_usd=0.0)  # the portfolio checks the round's cap over all arms


class Arm:
    def __init__(self, model: LLMModelConfig, style: str, generator: LLMGenerator):
        self.model, self.style, self.generator = model, style, generator
        self.label = arm_label(model, style)
        self.now = ArmStats()
        self.prior = ArmStats()
        self.stopped: str | None = None
        self._proposals: Iterator[Proposal] | None = None

    def next(self, context: Context) -> Proposal:
        if self._proposals is None:
            self._proposals = iter(self.generator.propose(context))
        return next(self._proposals)


class Portfolio(Generator):
    """The `llm` generator over several models: `propose` like any generator, `observe` the
    verdict of each proposal (the round's collection calls it)."""

    name = "llm"

    def __init__(self, config: LLMConfig, clients: dict[str, object] | None = None):
        self.config = config
        styles = config.prompts or (STYLES if config.prompt == "mixed" else (config.prompt,))
        clients = clients or {}
        self.arms = [Arm(m, s, LLMGenerator(model_config(config, m, s), clients.get(m.label)))
                     for m in models_of(config) for s in styles]
        self._by_label = {a.label: a for a in self.arms}
        self.pulls: list[str] = []  # the arm of each proposal, in order

    # what the round reads from any llm generator
    @property
    def prompt_tokens(self) -> int:
        return sum(a.generator.prompt_tokens for a in self.arms)

    @property
    def completion_tokens(self) -> int:
        return sum(a.generator.completion_tokens for a in self.arms)

    @property
    def cost_usd(self) -> float:
        return sum(a.generator.cost_usd for a in self.arms)

    @property
    def trace_ids(self) -> list[str]:
        return [t for a in self.arms for t in a.generator.trace_ids]

    @property
    def tracing(self) -> bool:
        return any(a.generator.tracing for a in self.arms)

    def enable_tracing(self, tracking_uri: str, experiment_id: str) -> str | None:
        problems = {a.generator.enable_tracing(tracking_uri, experiment_id) for a in self.arms}
        return next((p for p in problems if p), None)

    def remember(self, history: dict[str, ArmStats]) -> None:
        """Start from earlier rounds' counts per arm label (see `tracking.queries.arm_history`)."""
        for label, stats in history.items():
            if label in self._by_label:
                self._by_label[label].prior = stats

    def propose(self, context: Context) -> Iterator[Proposal]:
        while True:
            if self.config.cost_cap_usd and self.cost_usd >= self.config.cost_cap_usd:
                raise GenerationStopped(f"cost cap reached: ${self.cost_usd:.4f} of "
                                        f"${self.config.cost_cap_usd:.4f}")
            arm = self.choose()
            if arm is None:
                reasons = "; ".join(f"{a.label}: {a.stopped}" for a in self.arms)
                raise GenerationStopped(f"every model of the portfolio stopped ({reasons})")
            spent = arm.generator.cost_usd
            try:
                proposal = arm.next(context)
            except (GenerationStopped, StopIteration) as exc:
                arm.stopped = str(exc) or "nothing more to propose"
                continue
            arm.now.proposals += 1
            arm.now.cost_usd += arm.generator.cost_usd - spent
            self.pulls.append(arm.label)
            tags = proposal.origin.setdefault("tags", {})
            tags[ARM_TAG] = arm.label
            yield proposal

    def observe(self, proposal: Proposal, status: str) -> None:
        """The round's verdict on a proposal this generator made (`accepted`, `duplicate`,
        `semantic_duplicate`, `rediscovery`, `failed`, `invalid`)."""
        arm = self._by_label.get((proposal.origin.get("tags") or {}).get(ARM_TAG, ""))
        if arm is not None and status == ACCEPTED:
            arm.now.accepted += 1

    def choose(self) -> Arm | None:
        live = [a for a in self.arms if a.stopped is None]
        if not live:
            return None
        untried = [a for a in live if a.prior.proposals + a.now.proposals == 0]
        if untried:
            return untried[0]
        total = len(self.pulls) + 1
        allowed = [a for a in live if a.now.proposals / total <= a.model.max_share] or live
        values = {a.label: value(a.prior.plus(a.now), self.paid) for a in allowed}
        best = max(values.values()) or 1.0
        n_all = sum(a.prior.proposals + a.now.proposals for a in allowed)

        def ucb(a: Arm) -> float:
            n = a.prior.proposals + a.now.proposals
            return values[a.label] / best + self.config.bandit_c * math.sqrt(math.log(n_all) / n)

        return max(allowed, key=lambda a: (ucb(a), -self.arms.index(a)))

    @property
    def paid(self) -> bool:
        return any(m.price_prompt_per_1k or m.price_completion_per_1k for m in models_of(self.config))

    def metrics(self) -> dict[str, float]:
        """The round's per-arm metrics (`llm.arm.<label>.proposals|accepted|cost_usd|share`)."""
        out, total = {}, max(1, len(self.pulls))
        for a in self.arms:
            prefix = f"{ARM_METRIC_PREFIX}{a.label}."
            out.update({prefix + "proposals": a.now.proposals, prefix + "accepted": a.now.accepted,
                        prefix + "cost_usd": round(a.now.cost_usd, 6),
                        prefix + "share": round(a.now.proposals / total, 4)})
        return out


def value(stats: ArmStats, paid: bool) -> float:
    """Yield per unit of cost (see the module docstring); an arm with nothing yet is worth 0."""
    if stats.proposals <= 0:
        return 0.0
    weight = 1.0 if stats.screen_score is None else 0.5 + max(0.0, min(1.0, stats.screen_score))
    per_proposal = stats.accepted / stats.proposals * weight
    if not paid:
        return per_proposal
    cost = stats.cost_usd / stats.proposals
    return per_proposal / max(cost, 1e-9)

