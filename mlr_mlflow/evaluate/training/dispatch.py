"""Training handed to the sandbox: the job's payload, its warm servers, and the shape of its answer.

The job itself (`job.train`) runs in a sandboxed process; this side builds its payload from the
config, calls it, and regroups its answer. `trainer_digest` names the training code, so that a
changed trainer never reuses results trained by an older one (`baselines.baseline_key`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from ...config import Config
from ...sandbox import prewarm_sandboxes, warm_sandbox
from ..datasets import Dataset
from ..winrate import Results
from .job import TRAIN_TARGET


def trainer_digest(families: bool = False) -> str:
    """Digest of the training code itself, so a changed trainer never reuses older baselines; with
    `families`, the image and sequence families' code too (a task suite's keys only)."""
    here = Path(__file__).resolve().parent
    files = [here / name for name in ("model.py", "job.py")]
    if families:
        files += sorted((here / "families").glob("*.py"))
    data = b"".join(f.read_bytes() for f in files)
    return hashlib.sha256(data).hexdigest()[:16]


def train_models(models: list[dict], datasets: list[Dataset], variant: str, config: Config,
                 sandbox=None) -> dict:
    """Run the training job on `models` (each {"key", "seed", "components"}) in a sandbox."""
    payload = {"datasets": [d.payload() for d in datasets], "models": models,
               "model": dataclasses.asdict(config.model), "variant": variant,
               "budget_s": config.sandbox.hypothesis_budget_s}
    own = sandbox is None
    sandbox = sandbox or warm_sandbox(config.sandbox)
    try:
        return sandbox.call(TRAIN_TARGET, payload, timeout=config.sandbox.train_timeout_s,
                            limit="[sandbox] train_timeout_s")
    finally:
        if own:
            sandbox.close()


def side_by_side(parts: list, run: Callable[[Any, Any, threading.Event], Any], first_box,
                 config: Config, before: Callable[[], None] | None = None) -> list:
    """`run(part, sandbox, cancelled)` for every share in `parts` at once, answers in their order:
    the first share in this thread on `first_box` (the caller's, which it keeps), each other in a
    thread of its own on a warm sandbox of this process's pool, given back when done (`before`
    runs there first: waiting for servers being warmed, say). If any share fails, or the call is
    interrupted, `cancelled` is set and the other shares' processes are killed before the error
    is raised: one call, one outcome."""
    cancelled = threading.Event()
    boxes = [warm_sandbox(config.sandbox) for _ in parts[1:]]

    def other(part, box):
        with box:
            if before is not None:
                before()
            if cancelled.is_set():
                return None
            return run(part, box, cancelled)

    with ThreadPoolExecutor(max(len(parts) - 1, 1), thread_name_prefix="mlr-share") as pool:
        others = [pool.submit(other, part, box) for part, box in zip(parts[1:], boxes)]
        try:
            return [run(parts[0], first_box, cancelled)] + [future.result() for future in others]
        except BaseException:
            cancelled.set()
            for box in boxes:
                box.kill()
            raise


def prewarm_training(config: Config, count: int) -> list:
    """Start `count` warm sandbox servers for training jobs in the background (each imports torch
    and lightning through an empty job), for a call about to train on several side by side."""
    return prewarm_sandboxes(config.sandbox, count, TRAIN_TARGET,
                             {"datasets": [], "models": [], "model": {}, "variant": "one-pass"})


def regroup(raw: dict, prefix: str, seeds: list[int]) -> Results:
    """Job results keyed "prefix:seed" -> {dataset: {seed: result}}."""
    out: Results = {}
    for seed in seeds:
        for ds, result in raw[f"{prefix}:{seed}"].items():
            out.setdefault(ds, {})[seed] = result
    return out
