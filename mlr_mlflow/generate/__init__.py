"""Generators propose hypothesis sources. One small seam: `propose(context)` yields Proposals.

Backends: `symbolic` (offline, expression trees, the default) and `llm` (any OpenAI-compatible
endpoint). A generator never validates, evaluates or writes to MLflow; the round does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

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
    seed, why recent hypotheses were rejected (`feedback`), and passages of papers."""

    kind: str
    known: tuple[Known, ...] = ()
    seed: int = 0
    feedback: tuple[str, ...] = ()
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


class Generator(Protocol):
    name: str

    def propose(self, context: Context) -> Iterator[Proposal]:
        """Proposals, as many as asked for; may raise GenerationStopped."""


GENERATORS = ("symbolic", "llm")


def make_generator(name: str, config):
    """The generator `name` configured from `config` (a Config)."""
    if name == "symbolic":
        from .symbolic import SymbolicGenerator
        return SymbolicGenerator()
    if name == "llm":
        from .llm import LLMGenerator
        return LLMGenerator(config.llm)
    raise UsageError(f"unknown generator {name!r} (choose from {', '.join(GENERATORS)})")


__all__ = ["Known", "Passage", "Context", "Proposal", "Generator", "GenerationStopped", "GENERATORS",
           "make_generator"]
