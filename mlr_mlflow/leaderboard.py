"""A round's leaderboard: one row per evaluated hypothesis, best first (full B-WR, then one-pass)."""
from __future__ import annotations


def leaderboard(one_pass: list, full: list) -> list[dict]:
    """One row per evaluated hypothesis, best first: full B-WR where it exists, then one-pass."""
    fulls = {ev.hypothesis.sha256: ev for ev in full if ev.valid}
    rows = []
    for ev in one_pass:
        if not ev.valid:
            continue
        f = fulls.get(ev.hypothesis.sha256)
        rows.append({"sha256": ev.hypothesis.sha256, "generator": ev.hypothesis.generator,
                     "reward_score": (ev.hypothesis.origin.get("metrics") or {}).get("reward.score"),
                     "one_pass_run_id": ev.run_id, "one_pass_b_wr": ev.b_wr,
                     "one_pass_bsota_wr": ev.bsota_wr,
                     "full_run_id": f.run_id if f else None, "full_b_wr": f.b_wr if f else None,
                     "full_bsota_wr": f.bsota_wr if f else None})
    rows.sort(key=lambda r: (r["full_b_wr"] is None, -(r["full_b_wr"] or 0.0), -r["one_pass_b_wr"],
                             r["sha256"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def best_of(rows: list[dict]) -> dict | None:
    if not rows:
        return None
    top = rows[0]
    if top["full_b_wr"] is not None:
        return {"run_id": top["full_run_id"], "b_wr": top["full_b_wr"], "variant": "full",
                "sha256": top["sha256"]}
    return {"run_id": top["one_pass_run_id"], "b_wr": top["one_pass_b_wr"], "variant": "one-pass",
            "sha256": top["sha256"]}


def columns(rows: list[dict]) -> dict[str, list]:
    keys = list(rows[0])
    return {k: [r[k] for r in rows] for k in keys}
