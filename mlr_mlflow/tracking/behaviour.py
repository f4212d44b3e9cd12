"""Run queries for what a round shows its generator beyond the top by score: every evaluated
hypothesis's best screening score with its behavioural fingerprint (the archive's input), and the
reasons recent hypotheses were rejected (the LLM's feedback)."""
from __future__ import annotations

from . import names
from .queries import hypothesis_runs, search


def scored_fingerprints(client, exp_id: str, exclude_round: str | None = None) -> list[dict]:
    """One dict per hypothesis (by sha256) with a fingerprint tag and a screening score:
    {"sha256", "run_id", "score", "fingerprint" (the tag's text), "genome"}. The score is the best
    `screen_score` (validation B-WR for runs from before it) of its non-confirmation runs; the
    runs of `exclude_round` are left out (a resumed round sees what its first start saw)."""
    best: dict[str, dict] = {}
    fingerprint: dict[str, str] = {}
    for run in hypothesis_runs(client, exp_id, f"tags.`{names.STATUS}` = 'evaluated'"):
        tags = run.data.tags
        sha = tags.get(names.HYPOTHESIS_SHA256)
        if not sha or (exclude_round and tags.get(names.ROUND_ID) == exclude_round):
            continue
        if tags.get(names.FINGERPRINT):
            fingerprint.setdefault(sha, tags[names.FINGERPRINT])
        if tags.get(names.VARIANT) == "confirm":  # confirmation data never steers generation
            continue
        score = run.data.metrics.get(names.SCREEN_SCORE, run.data.metrics.get(names.VAL_B_WR))
        if score is None:
            continue
        held = best.get(sha)
        if held is None or (score, run.info.run_id) > (held["score"], held["run_id"]):
            best[sha] = {"sha256": sha, "run_id": run.info.run_id, "score": float(score),
                         "genome": tags.get(names.SYMBOLIC_GENOME)}
    return sorted(({**row, "fingerprint": fingerprint[sha]} for sha, row in best.items()
                   if sha in fingerprint), key=lambda row: row["sha256"])


def recent_rejections(client, exp_id: str, limit: int = 5,
                      exclude_round: str | None = None) -> list[dict]:
    """The newest invalid hypotheses' {"sha256", "stage", "reasons"} (list of strings), one per
    distinct first reason, newest first."""
    runs = search(client, [exp_id], f"tags.`{names.ROLE}` = 'hypothesis' and "
                  f"tags.`{names.STATUS}` = 'invalid'", order_by=["attributes.start_time DESC"],
                  limit=limit * 10)
    out, firsts = [], set()
    for run in runs:
        tags = run.data.tags
        if exclude_round and tags.get(names.ROUND_ID) == exclude_round:
            continue
        reasons = [r for r in (tags.get(names.REASONS) or "").splitlines() if r.strip()]
        if not reasons or reasons[0] in firsts:
            continue
        firsts.add(reasons[0])
        out.append({"sha256": tags.get(names.HYPOTHESIS_SHA256, ""), "stage": tags.get(names.STAGE, ""),
                    "reasons": reasons})
        if len(out) >= limit:
            break
    return out


def hypothesis_source(client, run_id: str) -> str:
    """The `hypothesis.py` artifact of a run."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, names.HYPOTHESIS_ARTIFACT, tmp)).read_text()
