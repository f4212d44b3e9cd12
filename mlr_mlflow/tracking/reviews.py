"""Reviews: what people said about a hypothesis, as tags on its runs (names.REVIEW_*).

A hypothesis has several runs (one-pass, full, confirmation); a review is written on all of them,
and read from any of them, so tags a reviewer sets by hand on one run in the MLflow UI count too.
Where runs of one hypothesis disagree, the newest review (`mlr.review.at`) wins.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from . import names
from .queries import hypothesis_runs

DEMOTING = ("shortcut", "invalid")  # reasons that take a hypothesis out of the discoveries
NOTE_CHARS = 2000  # a longer note is cut: it travels into prompts and tags
FEEDBACK_LINES = 8  # reviews shown to the next prompt of a kind, newest first
SNIPPET_CHARS = 240  # the reviewed code as a prompt line shows it


class ReviewError(ValueError):
    """A review that cannot be recorded (unknown verdict, a rejection without its reason)."""


@dataclass(frozen=True)
class Review:
    """One hypothesis's review. `reason` is set on a rejection; `at` is seconds since the epoch."""

    verdict: str
    reason: str = ""
    note: str = ""
    by: str = ""
    at: float = 0.0

    @property
    def demotes(self) -> bool:
        """Rejected as a shortcut or invalid: not a discovery, not a good example."""
        return self.verdict == "reject" and self.reason in DEMOTING


def review_of(tags: dict) -> Review | None:
    """The review the tags hold, or None (a verdict other than approve/reject is no review)."""
    verdict = (tags.get(names.REVIEW_VERDICT) or "").strip().lower()
    if verdict not in names.REVIEW_VERDICTS:
        return None
    try:
        at = float(tags.get(names.REVIEW_AT) or 0.0)
    except ValueError:
        at = 0.0
    return Review(verdict, (tags.get(names.REVIEW_REASON) or "").strip().lower(),
                  tags.get(names.REVIEW_NOTE) or "", tags.get(names.REVIEW_BY) or "", at)


def reviews_by_sha(runs) -> dict[str, Review]:
    """sha256 -> its newest review, over `runs` (MLflow runs of hypotheses)."""
    out: dict[str, Review] = {}
    for run in runs:
        sha = run.data.tags.get(names.HYPOTHESIS_SHA256)
        review = review_of(run.data.tags)
        if sha and review and (sha not in out or review.at > out[sha].at):
            out[sha] = review
    return out


def reviews(client, exp_id: str) -> dict[str, Review]:
    """sha256 -> review, for every reviewed hypothesis of the experiment."""
    return reviews_by_sha(hypothesis_runs(client, exp_id, f"tags.`{names.REVIEW_VERDICT}` LIKE '%'"))


def demoted(client, exp_id: str) -> set[str]:
    """The sha256s of the experiment's hypotheses rejected as a shortcut or invalid."""
    return {sha for sha, r in reviews(client, exp_id).items() if r.demotes}


def check(verdict: str, reason: str = "", note: str = "") -> tuple[str, str, str]:
    """(verdict, reason, note) as they will be stored; raises ReviewError when they make no review.
    A note alone is kept with verdict "" (see `write`)."""
    verdict, reason = (verdict or "").strip().lower(), (reason or "").strip().lower()
    note = (note or "").strip()[:NOTE_CHARS]
    if verdict and verdict not in names.REVIEW_VERDICTS:
        raise ReviewError(f"unknown verdict {verdict!r} (approve or reject)")
    if verdict == "reject" and reason not in names.REVIEW_REASONS:
        raise ReviewError(f"a rejection needs a reason: one of {', '.join(names.REVIEW_REASONS)}")
    if verdict != "reject":
        reason = ""
    if not verdict and not note:
        raise ReviewError("nothing to record: choose a verdict or write a note")
    return verdict, reason, note


def write(client, run_ids: list[str], verdict: str, reason: str = "", note: str = "",
          by: str = "", at: float | None = None) -> None:
    """Record a review on every run of one hypothesis. A note without a verdict keeps the verdict
    there was (it only adds the note)."""
    verdict, reason, note = check(verdict, reason, note)
    tags = {names.REVIEW_NOTE: note, names.REVIEW_BY: by or "anonymous",
            names.REVIEW_AT: f"{time.time() if at is None else at:.3f}"}
    if verdict:
        tags.update({names.REVIEW_VERDICT: verdict, names.REVIEW_REASON: reason})
    for run_id in run_ids:
        for key, value in tags.items():
            client.set_tag(run_id, key, value)


def _body(client, run_id: str) -> str:
    """A hypothesis's code after its `def` line, on one line (cut at SNIPPET_CHARS)."""
    import tempfile
    from pathlib import Path

    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(client.download_artifacts(run_id, names.HYPOTHESIS_ARTIFACT, tmp)).read_text()
    except Exception:  # an unreadable artifact: the line names the hypothesis by its hash only
        return ""
    lines = source.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("def ")), 0)
    body = "; ".join(line.strip() for line in lines[start:] if line.strip())
    return body if len(body) <= SNIPPET_CHARS else body[:SNIPPET_CHARS] + " ..."


def feedback(client, exp_id: str, limit: int = FEEDBACK_LINES) -> list[str]:
    """What reviewers said about the experiment's hypotheses, newest first, as lines a prompt can
    hold: "reviewers rejected `<code>` (shortcut) because: <note>"."""
    runs = hypothesis_runs(client, exp_id, f"tags.`{names.REVIEW_AT}` LIKE '%'")
    by_sha = reviews_by_sha(runs)
    run_of, notes = {}, {}  # a note without a verdict is feedback too
    for run in runs:
        sha, tags = run.data.tags.get(names.HYPOTHESIS_SHA256), run.data.tags
        run_of.setdefault(sha, run.info.run_id)
        if sha and tags.get(names.REVIEW_NOTE) and sha not in by_sha:
            notes[sha] = Review("", "", tags[names.REVIEW_NOTE], tags.get(names.REVIEW_BY, ""),
                                float(tags.get(names.REVIEW_AT) or 0.0))
    lines = []
    for sha, r in sorted({**notes, **by_sha}.items(), key=lambda kv: -kv[1].at)[:limit]:
        note = " ".join(r.note.split())
        code = _body(client, run_of[sha]) if sha in run_of else ""
        what = f"`{code}`" if code else f"hypothesis {sha[:8]}"
        if r.verdict == "reject":
            lines.append(f"reviewers rejected {what} ({r.reason})" + (f" because: {note}" if note else ""))
        elif r.verdict == "approve":
            lines.append(f"reviewers approved {what}" + (f": {note}" if note else ""))
        elif note:
            lines.append(f"a reviewer noted on {what}: {note}")
    return lines


def awaiting(client, exp_id: str) -> list[str]:
    """The sha256s of the experiment's confirmed or selected hypotheses (those trained in full)
    that nobody has approved or rejected yet, in no particular order."""
    runs = hypothesis_runs(client, exp_id, f"tags.`{names.STATUS}` = 'evaluated'")
    reviewed = reviews_by_sha(runs)
    wanted = {r.data.tags.get(names.HYPOTHESIS_SHA256) for r in runs
              if r.data.tags.get(names.CONFIRMED) == "true"
              or r.data.tags.get(names.VARIANT) in ("full", "confirm")}
    return sorted(sha for sha in wanted if sha and sha not in reviewed)


def awaiting_by_experiment(client) -> dict[str, int]:
    """Experiment name -> how many of its hypotheses await review, for each experiment of ours
    that has any."""
    out = {}
    for exp in client.search_experiments(
            filter_string=f"tags.`{names.EXPERIMENT_KIND}` = '{names.MODEL_DEVELOPMENT}'"):
        waiting = awaiting(client, exp.experiment_id)
        if waiting:
            out[exp.name] = len(waiting)
    return out
