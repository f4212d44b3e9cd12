"""What the command line shows in a terminal: progress lines beside progress bars, JSON without NaN,
error lines under 200 characters, and the libraries underneath kept quiet unless --verbose."""
from __future__ import annotations

import logging
import math
import os
import sys
import textwrap
import warnings

LINE_CHARS = 199  # an error line is under 200 characters; more of it goes on indented lines below


def progress(message: str) -> None:
    """A progress line that never splits a progress bar: tqdm lifts any bar above it, prints the
    line, and draws the bar again below."""
    from tqdm import tqdm

    tqdm.write(f"[mlr-mlflow] {message}", file=sys.stderr)


def finite(value):
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def quiet_libraries() -> None:
    """Without --verbose, what the libraries underneath say is not ours to show: MLflow's coloured
    log lines (its tables being created, say), alembic's, and Python warnings from outside this
    package (CloudPickle's, deprecations). Errors still show. Child processes inherit the quiet."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    for name in ("mlflow", "alembic", "urllib3", "git", "httpx", "openai"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module="mlr_mlflow")


def short_lines(text: str) -> str:
    """Every line under 200 characters: a longer one goes on over indented lines (nothing is cut)."""
    out = []
    for line in text.splitlines():
        if len(line) > LINE_CHARS:
            out += textwrap.wrap(line, LINE_CHARS, subsequent_indent="  ", break_on_hyphens=False)
        else:
            out.append(line)
    return "\n".join(out)


def round_lines(summary) -> list[str]:
    """What `discover` prints of a finished round: its counts, what is known of its suite, why
    generation stopped, and its best ten, each with its expression and the screening statistic
    that chose it beside its test numbers."""
    lines = [f"round {summary.round_run_id}: {summary.generated} generated, {summary.valid} valid, "
             f"{summary.evaluated} evaluated (one-pass), {summary.full_evaluated} full, "
             f"{summary.duplicates} duplicates, {summary.generation_failures} generation failures, "
             f"{summary.selected} selected, {summary.confirmed} confirmed, {summary.transfers} transfer"]
    if summary.instrument:
        from .suite_check.known import sentence

        lines.append(sentence(summary.instrument))
    if summary.stop_reason:
        lines.append(f"generation stopped early: {summary.stop_reason}")
    if summary.leaderboard:
        from .evaluate.screen import SCREEN_STATISTIC

        lines.append(f"  best by the most trustworthy stage reached (test B-WR, 95% interval); "
                     f"'screen' is the one-pass {SCREEN_STATISTIC} (validation) that chose what to train fully")
    for row in summary.leaderboard[:10]:
        stage = "confirm" if row["confirm_b_wr"] is not None else \
            "full" if row["full_b_wr"] is not None else "one_pass"
        ci = f"[{row[stage + '_b_wr_ci_low']:.2f}, {row[stage + '_b_wr_ci_high']:.2f}]" \
            if row[stage + "_b_wr_ci_low"] is not None else ""
        screen = row.get("one_pass_screen_score")
        lines.append(f"  #{row['rank']:<3} {row['sha256'][:10]}  {stage.replace('_', '-'):<8} b_wr "
                     f"{row[stage + '_b_wr']:.3f} {ci}"
                     f"{f'  screen {screen:.3f}' if screen is not None else ''}"
                     f"{'  CONFIRMED' if row['confirmed'] else ''}"
                     f"{'  TRANSFERS' if row.get('transfers') else ''}  "
                     f"run {row[stage + '_run_id']}")
        if row.get("expression"):
            lines.append(f"       {row['expression']}")
    return lines


def browse_hint(tracking_uri: str | None) -> str:
    """Where to look next: plain `mlflow ui` opens on MLflow's GenAI page, `--app-name mlr` on the runs."""
    from .tracking.store import default_tracking_uri

    uri = tracking_uri or default_tracking_uri()
    if uri.startswith(("http://", "https://")):
        return f"browse: {uri.rstrip('/')}/ (rounds and runs), {uri.rstrip('/')}/mlr/ (the dashboard, on an mlr server)"
    return (f"browse: mlflow server --app-name mlr --backend-store-uri {uri}  (plain `mlflow ui` opens on "
            "its GenAI page: choose Machine learning there)")
