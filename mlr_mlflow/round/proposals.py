"""A round's proposals: what the experiment already knows, and the generation loop that turns a
generator's proposals into new hypotheses, duplicates and failures, each recorded for
`generation.json`. A duplicate is either the same normalised-AST hash as a known hypothesis, or
(with `[discover] dedup`) the same behaviour: a behavioural fingerprint (fingerprint.py) that
matches an earlier evaluated hypothesis (status `duplicate`) or one of the kind's references
(status `rediscovery`). Those are recorded as runs of the round (`record_unevaluated`), never
trained.
"""
from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

from ..generate import GenerationStopped, Known, with_defaults
from ..hypothesis import Hypothesis
from ..tracking import create_run, finish, log_artifact_files, names
from ..tracking.queries import hypothesis_runs, runs_of_round
from ..tracking.reviews import reviews_by_sha

log = logging.getLogger(__name__)

# judged already; "error" runs may be tried again
SEEN_STATUSES = ("evaluated", "invalid", "duplicate", "rediscovery")


def known_hypotheses(client, exp_id: str, limit: int,
                     exclude_round: str | None = None) -> tuple[dict[str, str], list[Known]]:
    """(sha256 -> a run id, for every hypothesis judged already; the best `limit` by validation
    B-WR as Known, whose `b_wr` is then that validation B-WR)."""
    import tempfile
    from pathlib import Path

    seen: dict[str, str] = {}
    best: dict[str, tuple[float, object]] = {}
    runs = hypothesis_runs(client, exp_id)
    demoted = {sha for sha, r in reviews_by_sha(runs).items() if r.demotes}
    for run in runs:
        tags = run.data.tags
        sha = tags.get(names.HYPOTHESIS_SHA256)
        if not sha or tags.get(names.STATUS) not in SEEN_STATUSES or \
                (exclude_round and tags.get(names.ROUND_ID) == exclude_round):
            continue
        seen.setdefault(sha, tags.get(names.DUPLICATE_OF) or run.info.run_id)
        # confirmation data never steers generation; a shortcut reviewers caught is no parent
        if tags.get(names.VARIANT) == "confirm" or sha in demoted:
            continue
        # parents are ranked by the screening statistic (validation B-WR for runs from before it):
        # generation is selection, so it never sees test numbers (runs from before validation
        # metrics are not offered as parents)
        b_wr = run.data.metrics.get(names.SCREEN_SCORE, run.data.metrics.get(names.VAL_B_WR))
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


def collect(generator, context, kind: str, n: int, seen: dict[str, str], limit: int, summary,
            dedup=None):
    """Up to `n` new hypotheses from `generator`, asking at most `limit` proposals ->
    (hypotheses, records, metrics). The counts and the stop reason go on `summary`. `dedup` (a
    fingerprint.Deduplicator, or None) turns away semantic duplicates and rediscoveries.

    Proposals are asked for in batches of as many as are still missing, and a batch's new texts
    are fingerprinted in one sandbox call: a call per proposal cost more than generating it."""
    generator = with_defaults(generator)  # a plug-in's generator may lack `observe`
    hypotheses: list[Hypothesis] = []
    records: list[dict] = []
    mine: set[str] = set()
    tokens = {names.LLM_PROMPT_TOKENS: 0.0, names.LLM_COMPLETION_TOKENS: 0.0}
    started = time.perf_counter()
    with progress_bar(n, "generate") as bar:
        proposals = iter(generator.propose(context))
        ended = False
        while len(hypotheses) < n and not ended:
            if len(records) >= limit:
                summary.stop_reason = (f"the generator repeated itself: {len(hypotheses)} new of "
                                       f"{len(records)} proposals")
                break
            batch, ended = _ask(proposals, min(n - len(hypotheses), limit - len(records)), summary)
            fingerprints = _fingerprints(dedup, kind, batch, seen, mine)
            for proposal in batch:
                for key in tokens:
                    tokens[key] += (proposal.origin.get("metrics") or {}).get(key, 0.0)
                record = _judge(generator, proposal, kind, seen, mine, dedup, fingerprints, summary,
                                len(records))
                if record["status"] == "accepted":
                    hypotheses.append(record.pop("hypothesis"))
                    bar.update(1)
                records.append(record)
                generator.observe(proposal, record["status"])
    summary.generated = len(hypotheses)
    metrics = {names.GENERATED: summary.generated, names.DUPLICATES: summary.duplicates,
               names.SEMANTIC_DUPLICATES: summary.semantic_duplicates,
               names.REDISCOVERIES: summary.rediscoveries,
               names.GENERATION_FAILURES: summary.generation_failures, names.PROPOSALS: len(records),
               names.GENERATION_SECONDS: round(time.perf_counter() - started, 3)}
    if any(tokens.values()):
        tokens = {k: round(v) for k, v in tokens.items()}  # counts: whole tokens
        metrics.update(tokens, **{names.LLM_TOTAL_TOKENS: sum(tokens.values())})
    return hypotheses, records, metrics


def _ask(proposals, k: int, summary) -> tuple[list, bool]:
    """(up to `k` proposals, whether the generator ended or stopped: then the reason is on
    `summary`)."""
    batch = []
    while len(batch) < k:
        try:
            batch.append(next(proposals))
        except StopIteration:
            summary.stop_reason = "the generator had nothing more to propose"
            return batch, True
        except GenerationStopped as exc:
            summary.stop_reason = str(exc)
            return batch, True
    return batch, False


def _fingerprints(dedup, kind: str, batch: list, seen, mine) -> dict[str, object]:
    """The fingerprints of the batch's texts not known by hash (one sandbox call), by source."""
    if dedup is None:
        return {}
    fresh = []
    for proposal in batch:
        if proposal.source is not None and proposal.source not in fresh:
            sha = Hypothesis(kind, proposal.source).sha256
            if sha not in seen and sha not in mine:
                fresh.append(proposal.source)
    return dict(zip(fresh, dedup.fingerprint_many(fresh))) if fresh else {}


def _judge(generator, proposal, kind, seen, mine, dedup, fingerprints, summary, index) -> dict:
    """One proposal's record: failed, duplicate (by hash or behaviour), rediscovery or accepted
    (then with its Hypothesis under "hypothesis")."""
    record = {"index": index, **{k: v for k, v in proposal.origin.items() if k == "tags"}}
    if proposal.source is None:
        summary.generation_failures += 1
        record.update(status="failed", error=proposal.error,
                      reply=(proposal.origin.get("artifacts") or {}).get(names.LLM_REPLY_ARTIFACT))
        return record
    h = Hypothesis(kind, proposal.source, generator.name, proposal.origin)
    record["sha256"] = h.sha256
    if h.sha256 in seen or h.sha256 in mine:
        summary.duplicates += 1
        record.update(status="duplicate", of_run=seen.get(h.sha256, "this round"))
        return record
    verdict = None
    if dedup is not None:
        h, verdict = _behaviour(dedup, h, fingerprints.get(h.source), record, summary)
        if "tags" in record:  # a record's tags are its hypothesis's, fingerprint included
            record["tags"] = h.origin["tags"]
    mine.add(h.sha256)  # the same text again is a plain duplicate
    if verdict is None:
        record.update(status="accepted", source=h.source, generator=h.generator, origin=h.origin,
                      hypothesis=h)
    return record


def _behaviour(dedup, h: Hypothesis, fingerprint, record: dict,
               summary) -> tuple[Hypothesis, tuple | None]:
    """Judge `h` by its fingerprint -> (`h` tagged with its fingerprint, the verdict): a verdict
    (and its record) for a duplicate or rediscovery, None for a new behaviour (remembered, so a
    later proposal in this round can match it)."""
    from ..fingerprint import encode

    verdict = dedup.verdict(fingerprint)
    if fingerprint is not None:
        h = h.annotated(tags={names.FINGERPRINT: encode(fingerprint)})
    if verdict is None:
        dedup.remember(f"sha256:{h.sha256}", fingerprint)
        return h, None
    status, of = verdict
    record.update(status=status, source=h.source, generator=h.generator,
                  fingerprint=encode(fingerprint), origin=h.origin)
    if status == "rediscovery":
        summary.rediscoveries += 1
        record["of_reference"] = of
    else:
        summary.duplicates += 1
        summary.semantic_duplicates += 1
        label, _, value = of.partition(":")
        if label == "run":
            record.update(of_run=value, of_sha256=dedup.sha_of.get(value))
        else:
            record.update(of_run="this round", of_sha256=value)
    return h, verdict


@contextmanager
def open_dedup(client, config, exp_id: str, kind: str, exclude_round: str | None = None):
    """A Deduplicator for a round of `kind` (None when `[discover] dedup` is off): the kind's
    references (its baselines and SOTA set) and every evaluated hypothesis of the experiment.
    Runs that carry no fingerprint tag yet (evaluated before, or by `mlr-mlflow evaluate`) are
    fingerprinted once and the tag is set on them."""
    if not config.discover.dedup:
        yield None
        return
    from ..fingerprint import Deduplicator
    from ..kinds import get_kind
    from ..sandbox import open_sandbox

    sets, component = config.kinds[kind], get_kind(kind).component
    references = {n: component(n) for n in (*sets.baselines, *sets.sota)}
    with open_sandbox(config.sandbox) as sandbox:
        dedup = Deduplicator(kind, sandbox, references, config.discover.dedup_tolerance)
        for run_id, sha, fingerprint in _earlier_fingerprints(client, exp_id, kind, sandbox,
                                                              exclude_round):
            dedup.sha_of[run_id] = sha
            dedup.remember(f"run:{run_id}", fingerprint)
        yield dedup


def _earlier_fingerprints(client, exp_id: str, kind: str, sandbox, exclude_round: str | None):
    """(run id, sha256, fingerprint) for one evaluated run of each hypothesis of the experiment."""
    import tempfile
    from pathlib import Path

    from ..fingerprint import compute, decode, encode
    from ..sandbox import SandboxError

    first: dict[str, object] = {}
    tagged: dict[str, object] = {}
    for run in sorted(hypothesis_runs(client, exp_id, f"tags.`{names.STATUS}` = 'evaluated'"),
                      key=lambda r: r.info.start_time):
        tags = run.data.tags
        sha = tags.get(names.HYPOTHESIS_SHA256)
        if not sha or (exclude_round and tags.get(names.ROUND_ID) == exclude_round):
            continue
        first.setdefault(sha, run)
        if decode(tags.get(names.FINGERPRINT)) is not None:
            tagged.setdefault(sha, run)
    out = [(run.info.run_id, sha, decode(run.data.tags[names.FINGERPRINT]))
           for sha, run in tagged.items()]
    untagged = [(sha, run) for sha, run in first.items() if sha not in tagged]
    if not untagged:
        return out
    sources, readable = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (sha, run) in enumerate(untagged):
            try:
                path = client.download_artifacts(run.info.run_id, names.HYPOTHESIS_ARTIFACT, f"{tmp}/{i}")
                source = Path(path).read_text()
            except Exception as exc:  # noqa: BLE001 - one unreadable run must not stop the round
                log.warning("dedup: run %s left out: its %s cannot be read (%s)", run.info.run_id,
                            names.HYPOTHESIS_ARTIFACT, exc)
                continue
            if Hypothesis(kind, source).sha256 != sha:  # changed since it was evaluated
                log.warning("dedup: run %s left out: its %s does not match its %s tag",
                            run.info.run_id, names.HYPOTHESIS_ARTIFACT, names.HYPOTHESIS_SHA256)
                continue
            sources.append(source)
            readable.append((sha, run))
    untagged = readable
    try:
        fingerprints = compute(kind, sources, sandbox)
    except SandboxError as exc:
        log.warning("dedup: %d earlier hypotheses could not be fingerprinted (%s); a proposal "
                    "behaving like one of them is not recognised this round", len(untagged), exc)
        return out
    for (sha, run), fingerprint in zip(untagged, fingerprints):
        if fingerprint is not None:
            client.set_tag(run.info.run_id, names.FINGERPRINT, encode(fingerprint))
            out.append((run.info.run_id, sha, fingerprint))
    return out


def record_unevaluated(client, exp_id: str, run_id: str, round_id: str, kind: str,
                       records: list[dict]) -> None:
    """A nested run of the round for each semantic duplicate and rediscovery in `records`, with
    its source and the tag naming what it behaves like; nothing is trained. Idempotent: a resumed
    round records only what is missing."""
    todo = [r for r in records if r.get("status") in ("duplicate", "rediscovery") and r.get("source")]
    if not todo:
        return
    round_runs = runs_of_round(client, exp_id, round_id)
    recorded = {r.data.tags.get(names.HYPOTHESIS_SHA256) for r in round_runs
                if r.data.tags.get(names.STATUS) in ("duplicate", "rediscovery")}
    in_round = {}
    for run in sorted(round_runs, key=lambda r: r.info.start_time):
        in_round.setdefault(run.data.tags.get(names.HYPOTHESIS_SHA256), run.info.run_id)
    for record in todo:
        if record["sha256"] in recorded:
            continue
        tags = {names.ROLE: "hypothesis", names.KIND: kind, names.HYPOTHESIS_SHA256: record["sha256"],
                names.VARIANT: record["status"],
                names.GENERATOR: record.get("generator", "unknown"), names.ROUND_ID: round_id,
                names.FINGERPRINT: record["fingerprint"],
                **((record.get("origin") or {}).get("tags") or {})}
        if record["status"] == "rediscovery":
            tags[names.REDISCOVERY_OF] = record["of_reference"]
        else:
            of_run = record.get("of_run")
            if of_run in (None, "this round"):
                of_run = in_round.get(record.get("of_sha256"), "this round")
            tags[names.DUPLICATE_OF] = of_run
            if record.get("of_sha256"):
                tags[names.DUPLICATE_OF_SHA256] = record["of_sha256"]
        child = create_run(client, exp_id, f"{record['sha256'][:8]} {record['status']}", tags,
                           parent_run_id=run_id)
        log_artifact_files(client, child, {names.HYPOTHESIS_ARTIFACT: record["source"]})
        finish(client, child, status_tag=record["status"])
        recorded.add(record["sha256"])
