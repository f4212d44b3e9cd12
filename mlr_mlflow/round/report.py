"""How a round presents itself in the MLflow UI: its name, its description and its figures.

- name: `round 3 · symbolic · 32` (the kind's third round, its generator, how many were asked for);
- `mlflow.note.content`: a markdown description (counts, the best hypotheses with links to their run
  pages, why generation stopped early), shown on the round's run page;
- figures: the round's B-WR distribution and the kind's discovery curve so far (PNG artifacts);
- the metrics `discovery.best_b_wr` and `discovery.evaluations` (best B-WR and evaluations spent in
  all rounds so far) with `step` = the round number, so MLflow's charts plot them across rounds.

A failure here never fails the round: the research is recorded already, only its report is missing.
"""
from __future__ import annotations

from typing import Callable

from ..evaluate.screen import SCREEN_STATISTIC
from ..tracking import log, names, reviews
from ..tracking.dashboard_queries import round_records
from ..tracking.queries import round_runs

SHOWN = 5  # best hypotheses listed in the description


def round_number(client, exp_id: str) -> int:
    """The number the next round of this experiment gets (1 for the first)."""
    return len(round_runs(client, exp_id)) + 1


def round_name(number: int, generator: str, n: int) -> str:
    return f"round {number} · {generator} · {n}"


def _link(exp_id: str, run_id: str) -> str:
    # relative to the MLflow UI's page: works behind any host or static prefix
    return f"#/experiments/{exp_id}/runs/{run_id}?workflowType=machine_learning"


def _cell(text: str) -> str:
    """Text inside a markdown table cell: a pipe would end the cell, a backtick the code span."""
    return text.replace("|", "\\|").replace("`", "'")


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def standing(points: list[dict]) -> str | None:
    """Where this round (the last point) stands against the earlier rounds' best B-WR."""
    if not points or points[-1]["round_best"] is None:
        return None
    now = points[-1]["round_best"]
    earlier = [(p["round_best"], i) for i, p in enumerate(points[:-1], 1) if p["round_best"] is not None]
    if not earlier:
        return f"Best B-WR {now:.3f}: the first round of this kind to report one."
    best, where = max(earlier, key=lambda e: (e[0], -e[1]))
    if abs(now - best) < 5e-4:
        return f"Best B-WR {now:.3f} ties the best so far (round {where}, {best:.3f})."
    if now > best:
        return f"Best B-WR {now:.3f} improves on the best so far (round {where}, {best:.3f}) by {now - best:+.3f}."
    return f"Best B-WR {now:.3f} stays below the best so far (round {where}, {best:.3f})."


def description(summary, exp_id: str, number: int, where: str | None = None, awaiting: int = 0) -> str:
    """The round's markdown description; `where` says how it stands against earlier rounds,
    `awaiting` counts the kind's hypotheses waiting for review."""
    lines = [f"**Round {number}** — {summary.generated} generated, {summary.valid} valid, "
             f"{summary.evaluated} evaluated in one pass, {summary.full_evaluated} trained fully, "
             f"{summary.confirmed} of {summary.selected} confirmed on fresh seeds and split; "
             f"{summary.duplicates} duplicates, {summary.generation_failures} generation failures.", ""]
    if where:
        lines += [where, ""]
    if summary.rejections:
        top = summary.rejections.most_common(3)
        more = sum(summary.rejections.values()) - sum(n for _, n in top)
        lines += [f"Rejected {sum(summary.rejections.values())}: "
                  + "; ".join(f"{n} × {reason}" for reason, n in top)
                  + (f"; {more} for other reasons" if more else "") + ".", ""]
    if summary.stop_reason:
        lines += [f"Generation stopped early: {summary.stop_reason}", ""]
    if summary.instrument:
        from ..suite_check.known import sentence

        lines += [sentence(summary.instrument), ""]
    if summary.transfers or any(r.get("transfer_b_wr") is not None for r in summary.leaderboard):
        lines += [f"{summary.transfers} of {summary.selected} selected transfer to the held-out tasks "
                  "(trained on tasks selection never saw).", ""]
    rows = summary.leaderboard[:SHOWN]
    by_ratio = bool(rows) and rows[0].get("ranked_by") == "log_loss_ratio"
    if rows:
        ranked = ("Ranked by the test log-loss ratio against every reference (full training), which "
                  "repeats for regularizers where their B-WR does not, at the most trustworthy stage each "
                  "reached; confirmation tests it above 0" if by_ratio else
                  "Ranked by the most trustworthy stage each reached")
        lines += [f"{ranked}; what was trained fully was chosen "
                  f"by the one-pass screening statistic ({SCREEN_STATISTIC}, validation split only), "
                  "shown beside the test numbers.", "",
                  "| # | hypothesis | expression | confirmed | transfers | confirmation B-WR | held-out B-WR | full B-WR | one-pass B-WR | one-pass screen |"
                  + (" full log-loss ratio |" if by_ratio else ""),
                  "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if by_ratio else "")]
        for row in rows:  # each links its most trustworthy run: confirmation, else full, else one-pass
            run_id = row["confirm_run_id"] or row["full_run_id"] or row["one_pass_run_id"]
            lines.append(f"| {row['rank']} | [{row['sha256'][:8]}]({_link(exp_id, run_id)}) | "
                         f"`{_cell(row.get('expression') or '')}` | "
                         f"{'yes' if row['confirmed'] else 'no'} | "
                         f"{'yes' if row.get('transfers') else 'no'} | {_fmt(row['confirm_b_wr'])} | "
                         f"{_fmt(row.get('transfer_b_wr'))} | "
                         f"{_fmt(row['full_b_wr'])} | {_fmt(row['one_pass_b_wr'])} | "
                         f"{_fmt(row.get('one_pass_screen_score'))} |"
                         + (f" {_fmt(row.get('full_log_loss_ratio'))} |" if by_ratio else ""))
    else:
        lines.append("No hypothesis was evaluated in this round.")
    if awaiting:
        lines += ["", f"{awaiting} hypotheses of this kind await review (confirmed or trained in full, "
                  "neither approved nor rejected): the review queue is `/mlr/review` on a server "
                  "started with `mlflow server --app-name mlr`."]
    lines += ["", "Figures: `figures/` in the artifacts; all rounds: `mlr-mlflow dashboard`."]
    return "\n".join(lines)


STAGES = (("one_pass", "one-pass"), ("full", "full"), ("confirm", "confirm"))


def describe_hypotheses(client, summary) -> None:
    """Each evaluated run of the leaderboard's hypotheses described with what the round knows of its
    suite's reliability (the evaluator described it without: it does not know the suite's check)."""
    from ..evaluate.description import hypothesis_note
    from ..suite_check.known import sentence

    instrument = sentence(summary.instrument) if summary.instrument else None
    for row in summary.leaderboard:
        for prefix, variant in STAGES:
            if row.get(f"{prefix}_run_id") and row.get(f"{prefix}_b_wr") is not None:
                note = hypothesis_note(
                    row.get("expression") or "", row["sha256"], "", variant, b_wr=row[f"{prefix}_b_wr"],
                    b_wr_ci=(row[f"{prefix}_b_wr_ci_low"], row[f"{prefix}_b_wr_ci_high"]),
                    bsota_wr=row[f"{prefix}_bsota_wr"], val_b_wr=row[f"{prefix}_val_b_wr"],
                    screen_score=row.get(f"{prefix}_screen_score"),
                    instrument=instrument, metric=row.get("win_metric", "accuracy"),
                    log_loss_ratio=row.get(f"{prefix}_log_loss_ratio"), ranked_by=row.get("ranked_by"))
                client.set_tag(row[f"{prefix}_run_id"], names.NOTE, note)


def _curve(client, exp_id: str, run_id: str, best_now) -> tuple[list[dict], float | None, float]:
    """Rounds so far (oldest first, this one last) with the running best and evaluations spent."""
    rounds = round_records(client, exp_id)
    best, spent, points = None, 0.0, []
    for r in rounds:
        m = r["metrics"]
        value = best_now if r["run_id"] == run_id else m.get(names.BEST_B_WR)
        if value is not None:
            best = value if best is None else max(best, value)
        spent += sum(m.get(key) or 0 for key in (names.EVALUATED, names.FULL_EVALUATED, names.SELECTED))
        points.append({"generator": r["generator"] or "?", "best": best, "spent": spent,
                       "round_best": value})
    return points, best, spent


def _figures(client, run_id: str, summary, points: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one_pass = [r["one_pass_b_wr"] for r in summary.leaderboard if r["one_pass_b_wr"] is not None]
    full = [r["full_b_wr"] for r in summary.leaderboard if r["full_b_wr"] is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = [i / 20 for i in range(21)]
    ax.hist(one_pass, bins=bins, alpha=0.7, label=f"one-pass ({len(one_pass)})")
    if full:
        ax.hist(full, bins=bins, alpha=0.7, label=f"full ({len(full)})")
    ax.set_xlabel("B-WR")
    ax.set_ylabel("hypotheses")
    ax.set_title("B-WR distribution of this round")
    ax.legend()
    fig.tight_layout()
    client.log_figure(run_id, fig, names.B_WR_FIGURE)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = list(range(1, len(points) + 1))
    ax.step(xs, [p["best"] if p["best"] is not None else float("nan") for p in points], where="post",
            label="best so far")
    for gen in sorted({p["generator"] for p in points}):
        mine = [(x, p["round_best"]) for x, p in zip(xs, points)
                if p["generator"] == gen and p["round_best"] is not None]
        if mine:
            ax.scatter(*zip(*mine), label=f"round best ({gen})", zorder=3)
    ax.set_xlabel("round")
    ax.set_ylabel("B-WR")
    ax.set_ylim(0, 1.02)  # a win rate: the whole scale, so one round is not a dot on a zoomed axis
    ax.set_xlim(0.5, max(len(points), 2) + 0.5)
    ax.set_xticks(xs)
    ax.set_title("Discovery curve so far" if len(points) > 1 else "Discovery curve: the first round")
    ax.legend()
    fig.tight_layout()
    client.log_figure(run_id, fig, names.DISCOVERY_FIGURE)
    plt.close(fig)


def report(client, exp_id: str, run_id: str, summary, number: int, cost_usd: float = 0.0,
           progress: Callable[[str], None] = lambda _: None) -> None:
    """Describe a finished round in MLflow (never raises: see the module docstring); `cost_usd`:
    what the round's generator spent (logged as `llm.cost_usd` when not 0)."""
    try:
        points, best, spent = _curve(client, exp_id, run_id,
                                     summary.best["b_wr"] if summary.best else None)
        metrics = {names.DISCOVERY_BEST_B_WR: best, names.DISCOVERY_EVALUATIONS: spent}
        if cost_usd:
            metrics[names.LLM_COST_USD] = cost_usd
        awaiting = len(reviews.awaiting(client, exp_id))
        log(client, run_id, metrics=metrics, step=number,
            tags={names.NOTE: description(summary, exp_id, number, standing(points), awaiting)})
        _figures(client, run_id, summary, points)
        describe_hypotheses(client, summary)
    except Exception as exc:  # the round itself is recorded; say what is missing
        progress(f"the round's report is incomplete: {type(exc).__name__}: {exc}")
