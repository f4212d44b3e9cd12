"""A round's leaderboard: one row per evaluated hypothesis, best first.

Ranked by confirmed results where they exist: confirmed hypotheses first, then the others with a
confirmation, by confirmation B-WR (fresh seeds and split: not inflated by the selection); then by
full B-WR, then one-pass B-WR. Every B-WR comes with its bootstrap interval. A kind whose B-WR does
not repeat is ranked by its verdict statistic instead (evaluate/verdict.py: regularizers by the test
log-loss ratio), named in each row's `ranked_by`.
"""
from __future__ import annotations

from mlr_mlflow.evaluate.verdict import verdict
from mlr_mlflow.tracking import names


def _stage(prefix: str, ev) -> dict:
    u = ev.uncertainty if ev else {}
    return {f"{prefix}_run_id": ev.run_id if ev else None,
            f"{prefix}_val_b_wr": ev.val_b_wr if ev else None,
            f"{prefix}_screen_score": ev.screen_score if ev else None,
            f"{prefix}_b_wr": ev.b_wr if ev else None,
            f"{prefix}_b_wr_ci_low": u.get("b_wr_ci_low"),
            f"{prefix}_b_wr_ci_high": u.get("b_wr_ci_high"),
            f"{prefix}_bsota_wr": ev.bsota_wr if ev else None,
            f"{prefix}_log_loss_ratio": ev.log_loss_ratio if ev else None}


def leaderboard(one_pass: list, full: list, confirmation=None, held_out=None,
                noise_ceiling: float | None = None) -> list[dict]:
    """One row per evaluated hypothesis, best first (see the module's docstring). Every row carries
    the suite's measured noise ceiling (`suite_noise_ceiling`, None when never measured), so the
    table is never read without it."""
    fulls = {ev.hypothesis.sha256: ev for ev in full if ev.valid}
    transfers = {sha: ev for sha, ev in (held_out.evaluations if held_out else {}).items() if ev.valid}
    confirms = {sha: ev for sha, ev in (confirmation.evaluations if confirmation else {}).items()
                if ev.valid}
    rows = []
    for ev in one_pass:
        if not ev.valid:
            continue
        sha = ev.hypothesis.sha256
        c = confirms.get(sha)
        rows.append({"sha256": sha, "expression": ev.hypothesis.expression, "generator": ev.hypothesis.generator,
                     "reward_score": (ev.hypothesis.origin.get("metrics") or {}).get(names.REWARD_SCORE),
                     **_stage("one_pass", ev), **_stage("full", fulls.get(sha)),
                     **_stage("confirm", c),
                     "confirm_p_value": c.uncertainty.get("b_wr_p_value") if c else None,
                     "confirm_q_value": confirmation.q_values.get(sha) if c else None,
                     "confirmed": bool(confirmation and sha in confirmation.confirmed),
                     "transfer_b_wr": transfers[sha].b_wr if sha in transfers else None,
                     "transfer_q_value": held_out.q_values.get(sha) if sha in transfers else None,
                     "transfers": bool(held_out and sha in held_out.transfers),
                     "suite_noise_ceiling": noise_ceiling, "win_metric": ev.metric,
                     "ranked_by": verdict(ev.hypothesis.kind).statistic})

    def key(r):
        stat = r["ranked_by"]
        return (not r["confirmed"], r[f"confirm_{stat}"] is None, -(r[f"confirm_{stat}"] or 0.0),
                r[f"full_{stat}"] is None, -(r[f"full_{stat}"] or 0.0), -(r[f"one_pass_{stat}"] or 0.0),
                r["sha256"])

    rows.sort(key=key)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def best_of(rows: list[dict]) -> dict | None:
    """The top row's most trustworthy result: confirmation, else full, else one-pass."""
    if not rows:
        return None
    top = rows[0]
    for prefix, variant in (("confirm", "confirm"), ("full", "full"), ("one_pass", "one-pass")):
        if top[f"{prefix}_b_wr"] is not None:
            return {"run_id": top[f"{prefix}_run_id"], "b_wr": top[f"{prefix}_b_wr"],
                    "b_wr_ci_low": top[f"{prefix}_b_wr_ci_low"],
                    "b_wr_ci_high": top[f"{prefix}_b_wr_ci_high"], "variant": variant,
                    "sha256": top["sha256"], "expression": top.get("expression"),
                    "confirmed": top["confirmed"]}
    return None


# what a person reads first in leaderboard.json (MLflow's table view shows columns in this order)
FIRST = ("rank", "expression", "confirmed", "transfers", "confirm_b_wr", "full_b_wr", "one_pass_b_wr",
         "one_pass_screen_score", "suite_noise_ceiling", "ranked_by", "full_log_loss_ratio", "sha256")


def columns(rows: list[dict]) -> dict[str, list]:
    """The rows as a table: the columns a person reads first, then the rest; a column empty in
    every row is left out (run ids stay, so a row always names its runs)."""
    keys = [k for k in FIRST if k in rows[0]] + [k for k in rows[0] if k not in FIRST]
    return {k: [r[k] for r in rows] for k in keys
            if k.endswith("_run_id") or any(r[k] is not None for r in rows)}
