"""What a round shows its generator: the parents (today's top by screening score, or the elites of
the behaviour archive, `[discover] parents_from`), the reasons recent hypotheses were rejected, and
passages of the papers in `[llm] context` (`discover --context DIR`).

Everything is read from the store (runs of the round itself left out), so a resumed round that
asks again gets the same context.
"""
from __future__ import annotations

import logging

from . import Context, Known
from .archive import Archive, Entry
from ..tracking import names
from ..tracking.behaviour import hypothesis_source, recent_rejections, scored_fingerprints

log = logging.getLogger(__name__)
PARENTS_FROM = ("archive", "top")
FEEDBACK = 5  # rejections shown to the LLM


def build_archive(client, exp_id: str, kind: str, exclude_round: str | None = None) -> Archive:
    """The kind's archive from every evaluated, fingerprinted hypothesis of the experiment."""
    from ..fingerprint import decode

    return Archive(kind, (Entry(row["sha256"], row["score"], decode(row["fingerprint"]), row)
                          for row in scored_fingerprints(client, exp_id, exclude_round)))


def archive_parents(client, exp_id: str, kind: str, limit: int, seed: int,
                    exclude_round: str | None = None) -> tuple[list[Known], Archive]:
    """(the archive's parents as Known, best first; the archive)."""
    archive = build_archive(client, exp_id, kind, exclude_round)
    known = []
    for entry in archive.parents(limit, seed):
        row = entry.payload
        known.append(Known(source=hypothesis_source(client, row["run_id"]), b_wr=row["score"],
                           sha256=row["sha256"], genome=row.get("genome")))
    return known, archive


def feedback(client, exp_id: str, exclude_round: str | None = None) -> tuple[str, ...]:
    """One line per recent rejection: why validation or the sandbox refused it."""
    return tuple(f"{'; '.join(r['reasons'])[:300]} (rejected at the {r['stage'] or 'validation'} stage)"
                 for r in recent_rejections(client, exp_id, FEEDBACK, exclude_round))


def round_context(client, config, exp_id: str, kind: str, seed: int, top: list[Known],
                  exclude_round: str | None = None, prompts: bool = False) -> tuple[Context, dict]:
    """(the Context of a round whose top-by-score parents are `top`; metrics for the round run).
    Falls back to `top` while the archive is empty (no fingerprinted hypothesis yet: `[discover]
    dedup` off, or a first round). Feedback and passages only for a generator that writes
    `prompts` (the LLM)."""
    known, metrics = list(top), {}
    if config.discover.parents_from == "archive":
        parents, archive = archive_parents(client, exp_id, kind, config.discover.parents, seed,
                                           exclude_round)
        metrics = {names.ARCHIVE_CELLS: float(len(archive.cells)),
                   names.ARCHIVE_COVERAGE: archive.coverage}
        if parents:
            known = parents
    passages = ()
    if prompts and config.llm.context:
        from .passages import retrieve

        passages = tuple(retrieve(config.llm.context, kind))
    notes = feedback(client, exp_id, exclude_round) if prompts else ()
    return Context(kind, tuple(known), seed, feedback=notes, passages=passages), metrics
