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
