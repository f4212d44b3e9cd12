"""Run queries: one paginated search, and the questions the package asks of a store.

Every search goes through `search`, which reads all pages (or stops at `limit`), so no caller
guesses a `max_results` large enough.
"""
from __future__ import annotations

import math

from . import names

PAGE = 1000


def search(client, experiment_ids: list[str], filter_string: str = "", *,
           order_by: list[str] | None = None, limit: int | None = None) -> list:
    """Every run matching `filter_string` (all pages), or the first `limit` of them."""
    runs, token = [], None
    while True:
        want = PAGE if limit is None else min(PAGE, limit - len(runs))
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=want,
                                  order_by=order_by, page_token=token)
        runs.extend(page)
        token = page.token
        if not token or (limit is not None and len(runs) >= limit):
            return runs


def hypothesis_runs(client, exp_id: str, extra: str = "") -> list:
    """Every hypothesis run of an experiment; `extra` adds filter clauses."""
    query = f"tags.`{names.ROLE}` = 'hypothesis'" + (f" and {extra}" if extra else "")
    return search(client, [exp_id], query)


def round_runs(client, exp_id: str, *, newest_first: bool = False, limit: int | None = None) -> list:
    """The round runs of an experiment."""
    return search(client, [exp_id], f"tags.`{names.ROLE}` = 'round'", limit=limit,
                  order_by=["attributes.start_time DESC"] if newest_first else None)


def round_numbers(client, exp_id: str) -> dict[str, int]:
    """Round id -> the round's number (its `mlr.round.number` tag): how rounds are named to people."""
    out = {}
    for run in round_runs(client, exp_id):
        tags = run.data.tags
        try:
            out[tags[names.ROUND_ID]] = int(tags.get(names.ROUND_NUMBER, ""))
        except (KeyError, ValueError):
            continue
    return out


def runs_of_round(client, exp_id: str, round_id: str) -> list:
    """The hypothesis runs of one round (every variant)."""
    return hypothesis_runs(client, exp_id, f"tags.`{names.ROUND_ID}` = '{round_id}'")


def latest_finished(client, exp_id: str, tag: str, value: str):
    """The newest FINISHED run whose tag `tag` is `value`, or None."""
    runs = search(client, [exp_id], f"tags.`{tag}` = '{value}' and attributes.status = 'FINISHED'",
                  order_by=["attributes.start_time DESC"], limit=1)
    return runs[0] if runs else None


def newest_runs(client, exp_id: str, limit: int, extra: str = "") -> list:
    """The `limit` newest runs of an experiment."""
    return search(client, [exp_id], extra, order_by=["attributes.start_time DESC"], limit=limit)


def latest_suite_check(client, exp_id: str, kind: str, digest: str):
    """The newest FINISHED `suite check` run of `kind` on the suite whose digest is `digest`, or None."""
    runs = search(client, [exp_id], f"tags.`{names.ROLE}` = '{names.SUITE_CHECK_ROLE}' and "
                  f"tags.`{names.KIND}` = '{kind}' and tags.`{names.SUITE_DIGEST}` = '{digest}' and "
                  "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"], limit=1)
    return runs[0] if runs else None


def arm_history(client, exp_id: str) -> dict[str, dict]:
    """Per portfolio arm ([[llm.models]] x prompt style), summed over the experiment's earlier
    rounds: {"proposals", "accepted", "cost_usd"} from the round runs' `llm.arm.*` metrics, and
    "screen_score", the mean over the one-pass runs of the hypotheses the arm wrote (None if none)."""
    prefix = names.LLM_ARM_METRIC_PREFIX
    out: dict[str, dict] = {}
    for run in round_runs(client, exp_id):
        for key, v in run.data.metrics.items():
            if key.startswith(prefix):
                label, _, field = key[len(prefix):].rpartition(".")
                if field in ("proposals", "accepted", "cost_usd"):
                    entry = out.setdefault(label, {"proposals": 0.0, "accepted": 0.0, "cost_usd": 0.0})
                    entry[field] += float(v)
    scores: dict[str, list[float]] = {}
    for run in hypothesis_runs(client, exp_id, f"tags.`{names.LLM_ARM}` LIKE '%'"):
        score = run.data.metrics.get(names.SCREEN_SCORE)
        if score is not None and math.isfinite(score):
            scores.setdefault(run.data.tags[names.LLM_ARM], []).append(float(score))
    for label, entry in out.items():
        found = scores.get(label)
        entry["screen_score"] = sum(found) / len(found) if found else None
    return out
