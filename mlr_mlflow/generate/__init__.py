"""Generators propose hypothesis sources. One small seam: `propose(context)` yields Proposals.

Backends: `symbolic` (offline, expression trees, the default) and `llm` (any OpenAI-compatible
endpoint). A generator never validates, evaluates or writes to MLflow; the round does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol, Sequence, runtime_checkable

from ..config import UsageError


@dataclass(frozen=True)
class Known:
    """A hypothesis already evaluated, shown to a generator as a parent or an example.

    Attributes:
        source: its code. b_wr: its best validation B-WR (generation never sees test numbers).
        sha256: its normalised hash.
        genome: the symbolic generator's expression tree (JSON), when it came from there.
    """

    source: str
    b_wr: float
    sha256: str
    genome: str | None = None


@dataclass(frozen=True)
class Passage:
    """A passage of a paper in `--context DIR`: `id` is "file#n" (its n-th chunk), `score` the
    cosine similarity to the kind's query."""

    id: str
    file: str
    text: str
    score: float = 0.0


@dataclass(frozen=True)
class Context:
    """What a generator may know: the kind, the best known hypotheses (or the archive's elites), a
    seed, the hashes of everything already judged (a generator that can check them cheaply skips
    repeats), why recent hypotheses were rejected (`feedback`), what reviewers said about earlier
    hypotheses of the kind (`reviews`: lines, newest first; tracking.reviews), and passages of
    papers."""

    kind: str
    known: tuple[Known, ...] = ()
    seed: int = 0
    avoid: frozenset[str] = frozenset()  # normalised hashes the experiment has judged already
    feedback: tuple[str, ...] = ()
    reviews: tuple[str, ...] = ()
    passages: tuple[Passage, ...] = ()


@dataclass
class Proposal:
    """One generated candidate. `source` is None when generation failed (`error` says why).

    `origin` is kept with the hypothesis's run: {"tags", "metrics", "artifacts"} (see Hypothesis).
    """

    source: str | None
    error: str | None = None
    origin: dict = field(default_factory=dict)


class GenerationStopped(Exception):
    """The generator cannot go on (budget spent, endpoint unreachable, bad key...): the round
    keeps what it has and records the reason."""


@runtime_checkable
class Generator(Protocol):
    """What a round asks of a generator. `name` and `propose` are the seam; the rest are abilities
    a generator may have, here with the defaults of one that has none (nothing to trace, nothing
    spent). Generators subclass this to inherit the defaults; one that only has `name` and
    `propose` (a plug-in's, a test's) gets them from `with_defaults`."""

    name: str
    trace_ids: Sequence[str] = ()  # the MLflow traces of the calls made so far (to link to the round)
    tracing: bool = False  # whether its calls are being traced in MLflow (after enable_tracing)
    cost_usd: float = 0.0  # what its calls have cost so far, in US dollars

    def propose(self, context: Context) -> Iterator[Proposal]:
        """Proposals, as many as asked for; may raise GenerationStopped."""
        raise NotImplementedError

    def enable_tracing(self, tracking_uri: str, experiment_id: str) -> str | None:
        """Start tracing its calls in MLflow; None when that works or there is nothing to trace,
        else why not (the round goes on untraced)."""
        return None

    def observe(self, proposal: Proposal, status: str) -> None:
        """The round's verdict on one of its proposals ("accepted", "duplicate",
        "semantic_duplicate", "rediscovery", "failed"), as soon as it is known; a generator that
        learns from verdicts (generate/portfolio.py) overrides it."""


class _WithDefaults(Generator):
    """A generator that has only `name` and `propose`, with the Protocol's default abilities."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name

    def propose(self, context: Context) -> Iterator[Proposal]:
        return self.inner.propose(context)


def with_defaults(generator) -> Generator:
    """`generator` with every ability of the Generator protocol: itself when it has them all."""
    return generator if isinstance(generator, Generator) else _WithDefaults(generator)


GENERATORS = ("symbolic", "llm")


def make_generator(name: str, config):
    """The generator `name` configured from `config` (a Config)."""
    if name == "symbolic":
        from .symbolic import SymbolicGenerator
        return SymbolicGenerator()
    if name == "llm":
        if config.llm.models or config.llm.prompts:  # several models or prompts: a bandit
            from .portfolio import Portfolio
            return Portfolio(config.llm)
        from .llm import LLMGenerator
        return LLMGenerator(config.llm)
    raise UsageError(f"unknown generator {name!r} (choose from {', '.join(GENERATORS)})")


__all__ = ["Known", "Passage", "Context", "Proposal", "Generator", "GenerationStopped", "GENERATORS",
           "make_generator", "with_defaults"]
