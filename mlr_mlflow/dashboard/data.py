"""The dashboard's numbers, computed from a store snapshot (plain records in, plain records out).

Every function takes the `Snapshot` of `tracking.dashboard_queries` and returns rows or series; an
empty list means "none yet", and the page says so in place of the section.
"""
from __future__ import annotations

import difflib
from collections import defaultdict
from statistics import mean

from ..evaluate.verdict import verdict
from ..round.summary import reason_class
from ..tracking import names
from ..tracking.dashboard_queries import Snapshot
from ..tracking.reviews import review_of

LINEAGE_DIFFS = 20  # newest parent -> child edges shown with their code diff


def hypotheses(snap: Snapshot) -> list[dict]:
    return [r for r in snap.role("hypothesis") if r.get("sha256")]


def round_numbers(snap: Snapshot) -> dict[str, int]:
    """round_id -> its number within its kind (the tag, else the order of the rounds)."""
    out, counts = {}, defaultdict(int)
    for r in sorted(snap.role("round"), key=lambda r: r["start_time"]):
        counts[r.get("kind")] += 1
        if r.get("round_id"):
            out[r["round_id"]] = int(r.get("round_number") or counts[r.get("kind")])
    return out


STAGES = {"confirm": 2, "full": 1}  # how far a hypothesis got; one pass is 0


def _reviews(snap: Snapshot) -> dict[tuple, object]:
    """(kind, sha256) -> its newest review (tracking.reviews), over all its runs."""
    out: dict[tuple, object] = {}
    for r in hypotheses(snap):
        review = review_of({names.REVIEW_VERDICT: r.get("review_verdict"),
                            names.REVIEW_REASON: r.get("review_reason"), names.REVIEW_AT: r.get("review_at")})
        key = (r["kind"], r["sha256"])
        if review and (key not in out or review.at > out[key].at):
            out[key] = review
    return out


def _evaluated(snap: Snapshot) -> list[dict]:
    """Evaluated hypothesis runs; those reviewers rejected as a shortcut or invalid are no discovery."""
    demoted = {key for key, review in _reviews(snap).items() if review.demotes}
    return [r for r in hypotheses(snap) if r.get("status") == "evaluated" and "b_wr" in r["metrics"]
            and (r["kind"], r["sha256"]) not in demoted]


def awaiting_review(snap: Snapshot) -> list[dict]:
    """Confirmed or selected (trained in full) hypotheses nobody approved or rejected yet."""
    reviewed = _reviews(snap)
    out: dict[tuple, dict] = {}
    for r in hypotheses(snap):
        key = (r["kind"], r["sha256"])
        if r.get("status") == "evaluated" and key not in reviewed and (
                (r.get("confirmed") or "").lower() == "true" or r.get("variant") in ("full", "confirm")):
            out.setdefault(key, r)
    return list(out.values())


def leaderboard(snap: Snapshot) -> list[dict]:
    """One row per (kind, hypothesis), as a round ranks them: confirmed first, then by the most
    trustworthy stage a hypothesis reached (confirmation, full training, one pass) and its verdict
    statistic there (B-WR; for regularizers the test log-loss ratio, evaluate/verdict.py, where a
    run records it)."""
    numbers = round_numbers(snap)
    best: dict[tuple, dict] = {}
    for r in _evaluated(snap):
        key = (r["kind"], r["sha256"])
        rank = (STAGES.get(r.get("variant"), 0), _score(r))
        if key not in best or rank > best[key][0]:
            best[key] = (rank, r)
    audits = {r.get("audit_of") or r.get("parent_run_id") or r["run_id"]: r["audit_verdict"]
              for r in snap.runs if r.get("audit_verdict")}
    confirmed = {(r["kind"], r["sha256"]) for r in hypotheses(snap)
                 if (r.get("confirmed") or "").lower() == "true"}
    one_pass = {(r["kind"], r["sha256"]): r["metrics"] for r in _evaluated(snap)
                if r.get("variant") == "one-pass"}
    rows = []
    for (kind, sha), (_, r) in best.items():
        m = r["metrics"]
        rows.append({"kind": kind, "sha256": sha, "expression": r.get("expression") or "",
                     "generator": r.get("generator") or "?",
                     "prompt_style": r.get("prompt_style") or "", "model": r.get("llm_model") or "",
                     "inspired_by": r.get("inspired_by") or "",
                     "variant": r.get("variant"), "round": numbers.get(r.get("round_id")),
                     "b_wr": m["b_wr"], "bsota_wr": m.get("bsota_wr"), "score": _score(r),
                     "one_pass_b_wr": one_pass.get((kind, sha), {}).get("b_wr"),
                     # what chose it for full training: the screening statistic, beside the test numbers
                     "one_pass_screen": one_pass.get((kind, sha), {}).get(names.SCREEN_SCORE),
                     "ci_low": m.get("b_wr_ci_low"), "ci_high": m.get("b_wr_ci_high"),
                     "confirmed": (kind, sha) in confirmed,
                     "audit": r.get("audit_verdict") or audits.get(r["run_id"], ""),
                     "run_id": r["run_id"], "experiment_id": r["experiment_id"]})
    rows.sort(key=lambda x: (not x["confirmed"], -STAGES.get(x["variant"], 0), -x["score"],
                             -(x["bsota_wr"] or 0), x["sha256"]))
    return rows


def _score(r: dict) -> float:
    """A run's verdict statistic (evaluate/verdict.py); B-WR where it has not recorded that one."""
    m = r["metrics"]
    value = m.get(verdict(r["kind"]).statistic)
    return m["b_wr"] if value is None else value


ROWS_PER_ROUND = 10  # a round's best rows on the page; the rest are one click away in the MLflow UI
OPEN_ROUNDS = 3  # the newest rounds open, older ones folded


def by_round(snap: Snapshot, rows: list[dict]) -> list[dict]:
    """The leaderboard's rows grouped by (kind, round), the newest round first (rows outside any
    round, from `evaluate`, last): each group its best ROWS_PER_ROUND rows in the leaderboard's
    order, how many more it holds, its confirmed count and the round's run to open."""
    numbers = round_numbers(snap)
    runs = {(r.get("kind"), numbers.get(r.get("round_id"))): r for r in snap.role("round")}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["kind"], row["round"])].append(row)

    def newest_first(key):
        run = runs.get(key)
        return (run is None, -(run["start_time"] if run else 0), key[0] or "", key[1] or 0)

    out = []
    for i, key in enumerate(sorted(groups, key=newest_first)):
        members, run = groups[key], runs.get(key) or {}
        out.append({"kind": key[0], "round": key[1], "run_id": run.get("run_id"),
                    "experiment_id": run.get("experiment_id"), "n": len(members),
                    "rows": members[:ROWS_PER_ROUND], "more": max(0, len(members) - ROWS_PER_ROUND),
                    "best": max(m["b_wr"] for m in members),
                    "confirmed": sum(bool(m["confirmed"]) for m in members), "open": i < OPEN_ROUNDS})
    return out


def discoveries(rows: list[dict]) -> list[dict]:
    """What the product is for, first: every confirmed hypothesis (it beat the baselines again on
    fresh seeds and split), in the leaderboard's order."""
    return [r for r in rows if r["confirmed"]]


def discovery(snap: Snapshot) -> list[dict]:
    """Per kind and generator, in time order: the best B-WR so far against rounds and evaluations."""
    numbers = round_numbers(snap)
    series: dict[tuple, dict] = {}
    for r in sorted(_evaluated(snap), key=lambda r: r["start_time"]):
        key = (r["kind"], r.get("generator") or "?")
        s = series.setdefault(key, {"kind": key[0], "generator": key[1], "evaluations": [],
                                    "best": [], "rounds": [], "round_best": {}})
        b = r["metrics"]["b_wr"]
        s["evaluations"].append(len(s["evaluations"]) + 1)
        s["best"].append(max(b, s["best"][-1]) if s["best"] else b)
        number = numbers.get(r.get("round_id"))
        if number is not None:
            s["round_best"][number] = max(b, s["round_best"].get(number, b))
    for s in series.values():
        best, s["rounds"], s["round_curve"] = None, sorted(s["round_best"]), []
        for n in s["rounds"]:
            best = s["round_best"][n] if best is None else max(best, s["round_best"][n])
            s["round_curve"].append(best)
    return list(series.values())


def generators(snap: Snapshot) -> list[dict]:
    """The seed paper's table: by kind x generator x prompt style x model."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in hypotheses(snap):
        if r.get("variant") in ("one-pass", "screened") and r.get("status") != "error":
            groups[(r["kind"], r.get("generator") or "?", r.get("prompt_style") or "–",
                    r.get("llm_model") or "–")].append(r)
    full = defaultdict(list)
    for r in _evaluated(snap):
        if r.get("variant") == "full":
            full[(r["kind"], r.get("generator") or "?", r.get("prompt_style") or "–",
                  r.get("llm_model") or "–")].append(r["metrics"]["b_wr"])
    rows = []
    for key, runs in sorted(groups.items()):
        valid = [r for r in runs if r.get("status") != "invalid" or r.get("stage") == "training"]
        scored = [r["metrics"] for r in runs if r.get("status") == "evaluated" and "b_wr" in r["metrics"]]
        b = [m["b_wr"] for m in scored]
        s = [m["bsota_wr"] for m in scored if "bsota_wr" in m]
        rows.append({"kind": key[0], "generator": key[1], "prompt_style": key[2], "model": key[3],
                     "hypotheses": len(runs), "pass_rate": len(valid) / len(runs),
                     "evaluated": len(b), "mean_b_wr": mean(b) if b else None,
                     "best_b_wr": max(b) if b else None, "mean_bsota_wr": mean(s) if s else None,
                     "best_bsota_wr": max(s) if s else None,
                     "best_full_b_wr": max(full[key]) if full[key] else None})
    return rows


def reward(snap: Snapshot) -> dict:
    """Versions (with held-out predictions), champion history and selection diversity by round."""
    champions = sorted((v for v in snap.reward_versions if v["champion_since"]),
                       key=lambda v: v["champion_since"])
    numbers = round_numbers(snap)
    diversity = [{"kind": r.get("kind"), "round": numbers.get(r.get("round_id")),
                  "selection": r["metrics"]["selection_mean_similarity"],
                  "pool": r["metrics"].get("pool_mean_similarity"), "run_id": r["run_id"],
                  "experiment_id": r["experiment_id"]}
                 for r in snap.role("round") if "selection_mean_similarity" in r["metrics"]]
    return {"versions": snap.reward_versions, "champions": champions,
            "diversity": sorted(diversity, key=lambda d: (d["kind"] or "", d["round"] or 0))}


def lineage(snap: Snapshot) -> dict:
    """Nodes (hypotheses with a known B-WR) and parent -> child edges, the newest with code diffs."""
    numbers = round_numbers(snap)
    by_sha: dict[tuple, dict] = {}
    for r in sorted(hypotheses(snap), key=lambda r: r["start_time"]):
        key = (r["kind"], r["sha256"])
        if key not in by_sha or (r["metrics"].get("b_wr", -1) > by_sha[key]["metrics"].get("b_wr", -1)):
            by_sha[key] = r
    edges = []
    for (kind, sha), child in by_sha.items():
        for parent_sha in filter(None, (child.get("parents") or "").split(",")):
            parent = by_sha.get((kind, parent_sha))
            if parent:
                edges.append({"kind": kind, "parent": parent, "child": child,
                              "how": child.get("operator") or child.get("prompt_style") or ""})
    edges.sort(key=lambda e: -e["child"]["start_time"])
    for e in edges[:LINEAGE_DIFFS]:
        old = snap.read_text(e["parent"]["run_id"], names.HYPOTHESIS_ARTIFACT)
        new = snap.read_text(e["child"]["run_id"], names.HYPOTHESIS_ARTIFACT)
        e["diff"] = ("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                  e["parent"]["sha256"][:8], e["child"]["sha256"][:8]))
                     if old is not None and new is not None else None)
    in_graph = {id(e["parent"]) for e in edges} | {id(e["child"]) for e in edges}
    nodes = [{"kind": r["kind"], "sha256": r["sha256"], "b_wr": r["metrics"].get("b_wr"),
              "round": numbers.get(r.get("round_id")), "run_id": r["run_id"],
              "experiment_id": r["experiment_id"], "generator": r.get("generator")}
             for r in by_sha.values() if id(r) in in_graph]
    return {"nodes": nodes, "edges": edges}


def llm_usage(snap: Snapshot) -> list[dict]:
    numbers = round_numbers(snap)
    rows = []
    for r in sorted(snap.role("round"), key=lambda r: r["start_time"]):
        m = r["metrics"]
        if names.LLM_TOTAL_TOKENS in m or names.LLM_PROMPT_TOKENS in m:
            rows.append({"kind": r.get("kind"), "round": numbers.get(r.get("round_id")),
                         "prompt_tokens": m.get(names.LLM_PROMPT_TOKENS, 0.0),
                         "completion_tokens": m.get(names.LLM_COMPLETION_TOKENS, 0.0),
                         "cost_usd": m.get(names.LLM_COST_USD), "run_id": r["run_id"],
                         "experiment_id": r["experiment_id"]})
    return rows


def portfolio(snap: Snapshot) -> list[dict]:
    """Per kind and portfolio arm ([[llm.models]] x prompt style), over all rounds: proposals,
    accepted (valid and novel), their share, dollars, and the mean screen_score of what it wrote."""
    prefix = names.LLM_ARM_METRIC_PREFIX
    totals: dict[tuple, dict] = {}
    for r in snap.role("round"):
        for key, v in r["metrics"].items():
            label, _, part = key[len(prefix):].rpartition(".")
            if key.startswith(prefix) and part in ("proposals", "accepted", "cost_usd"):
                entry = totals.setdefault((r.get("kind") or "?", label),
                                          {"proposals": 0.0, "accepted": 0.0, "cost_usd": 0.0})
                entry[part] += v
    scores = defaultdict(list)
    for r in hypotheses(snap):
        arm = r.get("llm_arm")
        if arm and names.SCREEN_SCORE in r["metrics"]:
            scores[(r["kind"], arm)].append(r["metrics"][names.SCREEN_SCORE])
    return [{"kind": kind, "arm": arm, **t, "yield": t["accepted"] / t["proposals"] if t["proposals"] else None,
             "mean_screen_score": mean(scores[(kind, arm)]) if scores[(kind, arm)] else None}
            for (kind, arm), t in sorted(totals.items())]


def rejections(snap: Snapshot) -> list[dict]:
    counts: dict[tuple, int] = defaultdict(int)
    for r in hypotheses(snap):
        if r.get("status") == "invalid":
            counts[(r["kind"], r.get("stage") or "?", reason_class(r.get("reasons") or ""))] += 1
    return [{"kind": k, "stage": s, "reason": reason, "count": n}
            for (k, s, reason), n in sorted(counts.items(), key=lambda kv: -kv[1])]


def audits(snap: Snapshot) -> dict:
    """Audit verdicts, win-rate intervals and confirmed discoveries, as far as they exist."""
    verdicts = [r for r in snap.runs if r.get("audit_verdict")]
    intervals = [r for r in leaderboard(snap) if r["ci_low"] is not None and r["ci_high"] is not None]
    confirmed = [r for r in leaderboard(snap) if r["confirmed"]]
    return {"verdicts": verdicts, "intervals": intervals[:40], "confirmed": confirmed}


def instrument(snap: Snapshot) -> list[dict]:
    """Per kind, the reliability its newest round stated: the suite's full-training noise ceiling,
    the cheap rung's agreement with full training, and where the numbers come from."""
    newest: dict[str, dict] = {}
    for r in snap.role("round"):
        if r.get("kind") and (r["kind"] not in newest or r["start_time"] > newest[r["kind"]]["start_time"]):
            newest[r["kind"]] = r
    return [{"kind": kind, "ceiling": r["metrics"].get("instrument.full_noise_ceiling"),
             "relu_like": r["metrics"].get("instrument.relu_like_ceiling"),
             "cheap_vs_full": r["metrics"].get("instrument.cheap_vs_full"),
             "verdict_ceiling": r["metrics"].get("instrument.verdict_noise_ceiling"),
             "at_round_seeds": r["metrics"].get("instrument.full_noise_ceiling_at_round_seeds"),
             "source": r.get("instrument_source") or "not recorded (a round from before suite checks)"}
            for kind, r in sorted(newest.items())]
