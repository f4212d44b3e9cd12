"""Training a reference panel (and the kind's references) on a suite, without MLflow.

Each member and each reference is trained under every seed of both sets, one-pass and full, in
sandboxed processes side by side (one per usable CPU, as `[sandbox] workers` allows). Nothing here
writes to a tracking store: a suite check records one run with the measurements, not a run per model.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from ..config import Config
from ..evaluate.baselines import components_for, references
from ..evaluate.datasets import Dataset
from ..evaluate.shares import AUTO_WORKERS_MAX, usable_cpus
from ..evaluate.training.dispatch import regroup, train_models
from ..kinds.panels import member_source

CHUNKS_PER_PROCESS = 4  # progress lines per process; each chunk is one training call of batched models
MIN_CHUNK = 60  # models: a smaller panel trains in one call per process (batching is what makes it fast)
REF_PREFIX = "ref:"  # a reference's model keys, apart from the members' (a member may share its name)


def _processes(config: Config, n_models: int) -> int:
    workers = config.sandbox.workers or min(usable_cpus(), AUTO_WORKERS_MAX)
    return max(1, min(workers, n_models))


def train_rung(config: Config, kind: str, suite: list[Dataset], members, seeds: list[int], variant: str,
               progress: Callable[[str], None] = lambda _: None) -> tuple[dict, tuple[list, list], dict]:
    """(panel Results by member, (baselines, sota) Results, errors by member) of one rung.
    A member whose training fails is left out (its error is returned); a reference's is fatal."""
    baselines, sota = references(kind, config)
    sources = {m.name: member_source(kind, m) for m in members}
    sources.update({REF_PREFIX + n: s for n, s in {**baselines, **sota}.items()})
    models = [{"key": f"{name}:{seed}", "seed": seed, "components": components_for(kind, src)}
              for name, src in sources.items() for seed in seeds]
    k = _processes(config, len(models))
    progress(f"suite check: training {len(members)} panel members + {len(baselines) + len(sota)} "
             f"references x {len(seeds)} seeds on {len(suite)} task(s), {variant} ({len(models)} models, "
             f"{k} process(es))")
    start = time.monotonic()
    n = max(k, min(k * CHUNKS_PER_PROCESS, len(models) // MIN_CHUNK))
    bounds = [round(i * len(models) / n) for i in range(n + 1)]
    chunks = [models[a:b] for a, b in zip(bounds, bounds[1:])]
    done, lock = [0], threading.Lock()

    def train(chunk):
        out = train_models(chunk, suite, variant, config)  # warm servers are reused across chunks
        with lock:
            done[0] += len(chunk)
            progress(f"suite check: {variant} {done[0]}/{len(models)} models, "
                     f"{time.monotonic() - start:.0f} s")
        return out

    with ThreadPoolExecutor(k) as pool:
        outs = list(pool.map(train, chunks))
    raw, errors = {}, {}
    for out in outs:
        raw.update(out["results"])
        errors.update(out["errors"])
    progress(f"suite check: {variant} trained in {time.monotonic() - start:.0f} s")
    failed = {key.rsplit(":", 1)[0]: err for key, err in errors.items()}
    broken = [n for n in failed if n.startswith(REF_PREFIX)]
    if broken:
        raise RuntimeError(f"reference components failed to train: {', '.join(broken)}: "
                           f"{failed[broken[0]]}")
    panel = {m.name: regroup(raw, m.name, seeds) for m in members if m.name not in failed}
    refs = ([regroup(raw, REF_PREFIX + n, seeds) for n in baselines],
            [regroup(raw, REF_PREFIX + n, seeds) for n in sota])
    return panel, refs, {n: str(e) for n, e in failed.items()}
