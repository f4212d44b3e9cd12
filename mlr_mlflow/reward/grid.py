"""Behaviour on a probe grid: what a hypothesis *does*, measured in the sandbox (never here).

activation:    values and slopes on x in [-4, 4], value at 0, monotonicity, saturation at +-8.
preprocessing: per-column statistics of the transformed train and test rows of a fixed mixed
               matrix (normal, skewed, bounded-with-outlier columns).
regularizer:   log-magnitude of the penalty and of its gradient at three weight scales.
A hypothesis that fails or runs out of time gets NaN features (the ranker handles missing values),
and so does one that fails the static checks: it is never run (the reward model scores any code it
is sent, from a served model's HTTP clients too, so it validates like every other path).
The sandbox failing is not a hypothesis failing: when a batch fails, the kind's built-in default
component is measured as a canary; if that fails too, `BehaviourError` is raised (an all-NaN
feature matrix is never returned silently); else each hypothesis is measured alone, and one that
breaks its worker gets NaN features, with a log line.
"""
from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)


class BehaviourError(RuntimeError):
    """The sandbox could not measure behaviour at all (it failed for every hypothesis)."""

GRID_TARGET = "mlr_mlflow.reward.grid:behaviour"
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


def _matrix(seed: int, rows: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    bounded = rng.uniform(0, 1, rows)
    bounded[0] = 25.0  # an outlier
    return np.stack([rng.normal(3, 2, rows), rng.lognormal(0, 1, rows), bounded], axis=1)


def _preprocessing(fn) -> list[float]:
    import numpy as np

    A, B = fn(_matrix(0, 64), _matrix(1, 32))
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


def behaviour(payload: dict) -> dict:
    """Sandbox target: {"kind", "sources", "timeout_s"} -> {"features": [[float] | None]}."""
    import torch

    from ..sandbox.alarm import Overtime, time_limit
    from ..validate.loader import load_checked

    torch.set_num_threads(1)
    measure = {"activation": _activation, "preprocessing": _preprocessing,
               "regularizer": _regularizer}[payload["kind"]]
    out = []
    for source in payload["sources"]:
        try:
            with time_limit(payload.get("timeout_s", 5.0)):
                values = measure(load_checked(source, payload["kind"]))
            row = [v if math.isfinite(v) else None for v in values]
        except (Overtime, Exception):
            row = None
        out.append(row)
    return {"features": out}


def behaviour_matrix(kind: str, sources: list[str], sandbox_config=None):
    """Grid features for `sources`, computed in a fresh sandbox; NaN where a hypothesis failed."""
    import numpy as np

    from ..config import SandboxConfig
    from ..kinds import get_kind
    from ..sandbox import SandboxError, open_sandbox
    from ..validate import check_static

    config = sandbox_config or SandboxConfig()
    width = SIZES[kind]
    result = np.full((len(sources), width), np.nan, dtype=np.float32)
    clean = [i for i, s in enumerate(sources) if not check_static(s, get_kind(kind))]
    if not clean:
        return result

    def call(batch: list) -> list:
        batch_sources = [sources[i] if isinstance(i, int) else i for i in batch]
        answer = sandbox.call(GRID_TARGET, {"kind": kind, "sources": batch_sources, "timeout_s": 5.0},
                              timeout=10.0 + 5.0 * len(batch))
        return answer["features"]

    with open_sandbox(config) as sandbox:
        try:
            rows = dict(zip(clean, call(clean)))
        except SandboxError as exc:
            # the kind's default component as a canary: if even it fails, the sandbox is broken
            kind_ = get_kind(kind)
            try:
                call([kind_.component(kind_.default)])
            except SandboxError as broken:
                raise BehaviourError(f"the sandbox cannot measure {kind} behaviour (it fails on the "
                                     f"built-in {kind_.default!r} too): {broken}") from exc
            log.warning("behaviour features: the sandbox failed on a batch of %d (%s); measuring "
                        "each hypothesis alone", len(clean), exc)
            rows, errors = {}, []
            for i in clean:
                try:
                    rows[i] = call([i])[0]
                except SandboxError as one:  # this hypothesis broke its worker: NaN, said here
                    errors.append(str(one))
            if errors:
                log.warning("behaviour features: %d of %d hypotheses broke the sandbox (their "
                            "features are NaN): %s", len(errors), len(clean), errors[0])
    for i, values in rows.items():
        if values is not None:
            result[i] = [np.nan if v is None else v for v in values][:width]
    return result
