"""Behaviour on a probe grid: what a hypothesis *does*, measured in the sandbox (never here).

activation:    values and slopes on x in [-4, 4], value at 0, monotonicity, saturation at +-8.
preprocessing: per-column statistics of the transformed train and test rows of a fixed mixed
               matrix (normal, skewed, bounded-with-outlier columns).
regularizer:   log-magnitude of the penalty and of its gradient at three weight scales.
Each hypothesis is measured alone, in its own sandbox call and time limit (`harness`). One that fails
gets NaN features (the ranker handles missing values), and so does one that fails the static
checks: it is never run (the reward model scores any code it is sent, from a served model's HTTP
clients too, so it validates like every other path). One that runs out of time is *unmeasured*
(`harness`): the reward model gives it no score. A sandbox that fails on the built-in default too
raises `BehaviourError`.
"""
from __future__ import annotations

import math

from ...validate.loader import load_checked  # here, so the warm sandbox server imports it once
from ..rows import BehaviourError  # noqa: F401  (raised by `behaviour_rows`, imported from here)
from .harness import as_matrix, measure_rows, measure_sources, mixed_matrix

GRID_TARGET = "mlr_mlflow.reward.features.grid:behaviour"
SANDBOX_PRELOAD = ("torch",)  # imported once in the warm sandbox server (sandbox/worker.py)
SANDBOX_WARM_UP = "warm"  # run once in the server, on the built-in defaults (sandbox/worker.py)
SIZES = {"activation": 17 * 2 + 5, "preprocessing": 16, "regularizer": 6}


def _slog(v: float) -> float:
    if not math.isfinite(v):
        return float("nan")
    return math.copysign(math.log1p(abs(v)), v)


def _activation(fn) -> list[float]:
    import torch

    x = torch.linspace(-4, 4, 17, requires_grad=True)
    y = fn(x * 1.0)
    (grad,) = torch.autograd.grad(y.sum(), x)
    ys, gs = y.detach().tolist(), grad.tolist()
    far = fn(torch.tensor([-8.0, -4.0, 0.0, 4.0, 8.0])).detach().tolist()
    diffs = [b - a for a, b in zip(ys, ys[1:])]
    monotone = float(all(d >= -1e-6 for d in diffs) or all(d <= 1e-6 for d in diffs))
    return ([_slog(v) for v in ys] + [_slog(v) for v in gs]
            + [_slog(far[2]), monotone, _slog(far[4] - far[3]), _slog(far[1] - far[0]),
               float(min(ys) >= -1e-6)])


def _preprocessing(fn) -> list[float]:
    import numpy as np

    A, B = fn(mixed_matrix(np.random.default_rng(0), 64), mixed_matrix(np.random.default_rng(1), 32))
    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    out = []
    for M in (A, B):
        cols = M[:, :3] if M.ndim == 2 and M.shape[1] >= 3 else np.full((len(M), 3), np.nan)
        out += [*(_slog(float(v)) for v in cols.mean(0)), *(_slog(float(v)) for v in cols.std(0))]
    spread = [_slog(float(v)) for v in (A.max() - A.min(), np.abs(A).max())] if A.size else [math.nan] * 2
    width = A.shape[1] if A.ndim == 2 else 0
    return out + spread + [float(width), float(np.isfinite(A).all())]


def _regularizer(fn) -> list[float]:
    import torch

    gen = torch.Generator().manual_seed(0)
    base = [torch.randn(s, generator=gen) for s in [(64, 8), (64, 64), (3, 64)]]
    out = []
    for scale in (0.01, 0.1, 1.0):
        params = [(b * scale).requires_grad_(True) for b in base]
        value = fn(params)
        value = torch.as_tensor(value, dtype=torch.float32).reshape(())
        grads = torch.autograd.grad(value, params, allow_unused=True) if value.requires_grad else []
        gnorm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None))
        out += [math.log10(abs(float(value)) + 1e-12), math.log10(gnorm + 1e-12)]
    return out


def measures() -> dict:
    """Each kind's measuring function, looked up when it runs."""
    return {"activation": _activation, "preprocessing": _preprocessing, "regularizer": _regularizer}


def warm() -> None:
    """Each kind's measurement once on its built-in default, in the warm server before any clock
    runs: what torch initialises on first use is not charged to a hypothesis."""
    import torch

    from ...kinds import get_kind

    torch.set_num_threads(1)  # before any pool exists: the server forks
    for kind, measure in measures().items():
        kind_ = get_kind(kind)
        measure(load_checked(kind_.component(kind_.default), kind))


def behaviour(payload: dict) -> dict:
    """Sandbox target: {"kind", "sources", "timeout_s", "reason"} -> {"features": [[float] | None],
    "status": ["ok" | "failed" | "overtime"]} (None features: the code failed or ran out of time)."""
    return measure_sources(payload, measures()[payload["kind"]])


def behaviour_rows(kind: str, sources: list[str], sandbox_config=None, limits=None,
                   budget=None):
    """(grid features, unmeasured): NaN rows where a hypothesis failed or fails the static checks
    (never run); `unmeasured[i]` is the reason row i could not be measured (`harness`), else None."""
    from ...kinds import get_kind

    kind_ = get_kind(kind)
    rows, unmeasured = measure_rows(GRID_TARGET, kind, sources, limits, sandbox_config, budget,
                                    canary=kind_.component(kind_.default))
    return as_matrix(rows, SIZES[kind]), unmeasured


def behaviour_matrix(kind: str, sources: list[str], sandbox_config=None):
    """Grid features for `sources`, each measured on its own; NaN where a hypothesis failed or
    could not be measured (`behaviour_rows` says which)."""
    return behaviour_rows(kind, sources, sandbox_config)[0]
