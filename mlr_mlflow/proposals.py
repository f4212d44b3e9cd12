"""A round's proposals: what the experiment already knows, and the generation loop that turns a
generator's proposals into new hypotheses, duplicates (by normalised-AST hash) and failures, each
recorded for `generation.json`.
"""
from __future__ import annotations

import sys

from .generate import GenerationStopped, Known
from .hypothesis import Hypothesis
from .tracking import names
from .tracking.queries import hypothesis_runs

SEEN_STATUSES = ("evaluated", "invalid")  # judged already; "error" runs may be tried again


def known_hypotheses(client, exp_id: str, limit: int,
                     exclude_round: str | None = None) -> tuple[dict[str, str], list[Known]]:
    """(sha256 -> a run id, for every hypothesis judged already; the best `limit` by validation
    B-WR as Known, whose `b_wr` is then that validation B-WR)."""
    import tempfile
    from pathlib import Path

    seen: dict[str, str] = {}
    best: dict[str, tuple[float, object]] = {}
    for run in hypothesis_runs(client, exp_id):
        tags = run.data.tags
        sha = tags.get(names.HYPOTHESIS_SHA256)
        if not sha or tags.get(names.STATUS) not in SEEN_STATUSES or \
                (exclude_round and tags.get(names.ROUND_ID) == exclude_round):
            continue
        seen.setdefault(sha, run.info.run_id)
        if tags.get(names.VARIANT) == "confirm":  # confirmation data never steers generation
            continue
        # parents are ranked by validation B-WR: generation is selection, so it never sees test
        # numbers (runs from before validation metrics are not offered as parents)
        b_wr = run.data.metrics.get(names.VAL_B_WR)
        if b_wr is not None and (sha not in best or b_wr > best[sha][0]):
            best[sha] = (b_wr, run)
    top = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
    known = []
    with tempfile.TemporaryDirectory() as tmp:
        for sha, (b_wr, run) in top:
            path = client.download_artifacts(run.info.run_id, names.HYPOTHESIS_ARTIFACT, tmp)
            known.append(Known(source=Path(path).read_text(), b_wr=b_wr, sha256=sha,
                               genome=run.data.tags.get(names.SYMBOLIC_GENOME)))
    return seen, known


def progress_bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="hyp", file=sys.stderr, leave=True,
                disable=not sys.stderr.isatty())


def collect(generator, context, kind: str, n: int, seen: dict[str, str], limit: int, summary):
    """Up to `n` new hypotheses from `generator`, asking at most `limit` proposals ->
    (hypotheses, records, metrics). The counts and the stop reason go on `summary`."""
    hypotheses: list[Hypothesis] = []
    records: list[dict] = []
    mine: set[str] = set()
    tokens = {"llm.prompt_tokens": 0.0, "llm.completion_tokens": 0.0}
    with progress_bar(n, "generate") as bar:
        proposals = iter(generator.propose(context))
        while len(hypotheses) < n:
            if len(records) >= limit:
                summary.stop_reason = (f"the generator repeated itself: {len(hypotheses)} new of "
                                       f"{len(records)} proposals")
                break
            try:
                proposal = next(proposals)
            except StopIteration:
                summary.stop_reason = "the generator had nothing more to propose"
                break
            except GenerationStopped as exc:
                summary.stop_reason = str(exc)
                break
            for key in tokens:
                tokens[key] += (proposal.origin.get("metrics") or {}).get(key, 0.0)
            record = {"index": len(records), **{k: v for k, v in proposal.origin.items() if k == "tags"}}
            if proposal.source is None:
                summary.generation_failures += 1
                record.update(status="failed", error=proposal.error,
                              reply=(proposal.origin.get("artifacts") or {}).get("llm/reply.txt"))
            else:
                h = Hypothesis(kind, proposal.source, generator.name, proposal.origin)
                record["sha256"] = h.sha256
                if h.sha256 in seen or h.sha256 in mine:
                    summary.duplicates += 1
                    record.update(status="duplicate", of_run=seen.get(h.sha256, "this round"))
                else:
                    mine.add(h.sha256)
                    hypotheses.append(h)
                    record.update(status="accepted", source=h.source, generator=h.generator,
                                  origin=proposal.origin)
                    bar.update(1)
            records.append(record)
    summary.generated = len(hypotheses)
    metrics = {"generated": summary.generated, "duplicates": summary.duplicates,
               "generation_failures": summary.generation_failures, "proposals": len(records)}
    if any(tokens.values()):
        metrics.update(tokens, **{"llm.total_tokens": sum(tokens.values())})
    return hypotheses, records, metrics
