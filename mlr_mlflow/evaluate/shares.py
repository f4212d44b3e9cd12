"""How a training call splits between sandboxed processes side by side (`[sandbox] workers`)."""
from __future__ import annotations

import os

# Training work (models x epochs) below which a share is not worth a process of its own: about
# 1.5 s of one core's training, where starting a warm server costs about 5 CPU seconds once.
MIN_SHARE_MODEL_EPOCHS = 192
# what workers = 0 means at most: each process may hold [sandbox] memory_mb, and a large machine
# is usually shared (set workers explicitly to use more)
AUTO_WORKERS_MAX = 8


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def shares(n_hypotheses: int, dataset_sizes: list[int], seeds: int, epochs: int,
           workers: int) -> list[tuple[range, list[int]]]:
    """How a training call splits between sandboxed processes running side by side (`[sandbox]
    workers`, 0 = one per usable CPU, at most AUTO_WORKERS_MAX): (hypothesis indices, dataset indices) per process, as many
    as the workers allow while each keeps at least MIN_SHARE_MODEL_EPOCHS of work.

    A step's cost grows with the hypotheses (one call each per layer) and with the datasets (one
    group of stacked models each), so many hypotheses split by hypothesis (contiguous, near-equal)
    and few (a round's top-k in full training) by dataset, each process taking a near-equal share
    of the training rows. A model's result does not depend on what it is trained with, so no split
    changes a number, only the wall time. One thing does move with a split by dataset: the time
    budget of a model's hypothesis code (`hypothesis_budget_s`) is counted in each process, so a
    model may spend it once per share of datasets before it fails."""
    n_datasets = len(dataset_sizes)
    work = n_hypotheses * n_datasets * seeds * max(epochs, 1)
    k = max(1, min(workers or min(usable_cpus(), AUTO_WORKERS_MAX), max(n_hypotheses, n_datasets),
                   work // MIN_SHARE_MODEL_EPOCHS))
    everything = list(range(n_datasets))
    if n_hypotheses >= k * n_datasets or n_datasets < k:
        k = min(k, n_hypotheses)
        bounds = [round(i * n_hypotheses / k) for i in range(k + 1)]
        return [(range(a, b), everything) for a, b in zip(bounds, bounds[1:])]
    loads, parts = [0] * k, [[] for _ in range(k)]
    for d in sorted(everything, key=lambda d: -dataset_sizes[d]):  # largest first, to the lightest
        j = loads.index(min(loads))
        loads[j] += dataset_sizes[d]
        parts[j].append(d)
    return [(range(n_hypotheses), sorted(part)) for part in parts]


def culprits(exc: Exception, n: int) -> set[int]:
    """The hypotheses (indices below n) whose call a `SandboxOvertime` names by model key
    ("<index>:<seed>"); empty when it names none or anything else."""
    keys = getattr(exc, "culprit", None) or []
    found = set()
    for key in keys:
        index = str(key).partition(":")[0]
        if not index.isdigit() or int(index) >= n:
            return set()
        found.add(int(index))
    return found
