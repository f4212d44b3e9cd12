"""Features meant to transfer to new sources: what an activation does to the signals a network sees.

Measured in the sandbox (never here), for activations only (other kinds get no columns):
- `normal.*`: on fixed N(0,1) draws, what a hidden unit actually receives: the output's mean and
  standard deviation, the derivative's mean, spread and mean square (the gain backpropagation
  sees), the share of near-zero derivatives (dead units), the output's correlation with the input,
  and the mean second derivative (curvature).
- `init.*`: on the evaluation's own MLP shape (64-64 hidden, PyTorch's default initialisation) and a
  deeper stack of the same width, at initialisation on a fixed synthetic task: the log-variance of
  activations at depths 1, 2, 4 and 8 (signal propagation), the log-norm of the loss gradient on the
  first and last layers, and the Fisher statistic of zero-cost NAS (the sum over units of
  (activation * d loss / d activation)^2); `train.*`: the relative loss drop after 20 Adam steps.
Each is NaN when the hypothesis fails there (the ranker handles missing values); a hypothesis that
runs out of time is unmeasured (`harness`) and gets no score.
"""
from __future__ import annotations

import math

from .harness import as_matrix, measure_rows, measure_sources

PROBE_TARGET = "mlr_mlflow.reward.features.probes:measure"
SANDBOX_PRELOAD = ("torch",)  # imported once in the warm sandbox server (sandbox/worker.py)
SANDBOX_WARM_UP = "warm"  # run once in the server, on a built-in function (sandbox/worker.py)
NAMES = ("normal.mean", "normal.std", "normal.dmean", "normal.dstd", "normal.dsq", "normal.dead",
         "normal.corr", "normal.d2mean",
         "init.logvar1", "init.logvar2", "init.logvar4", "init.logvar8",
         "init.grad_first", "init.grad_last", "init.fisher", "train.drop")
WIDTH = {"activation": len(NAMES)}


def _finite(v: float) -> float:
    return float(v) if math.isfinite(v) else float("nan")


def _log10(v: float) -> float:
    return math.log10(abs(v) + 1e-12) if math.isfinite(v) else float("nan")


def _normal(fn) -> list[float]:
    import torch

    x = torch.randn(4096, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    y = fn(x * 1.0)
    (d1,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    d2 = torch.autograd.grad(d1.sum(), x, allow_unused=True)[0] if d1.requires_grad else None
    y, d1, xd = y.detach(), d1.detach(), x.detach()
    corr = float(torch.corrcoef(torch.stack([y, xd]))[0, 1]) if float(y.std()) > 0 else 0.0
    return [_finite(float(y.mean())), _log10(float(y.std())), _finite(float(d1.mean())),
            _log10(float(d1.std())), _log10(float(d1.pow(2).mean())),
            float((d1.abs() < 1e-3).float().mean()), _finite(corr),
            _finite(float(d2.mean())) if d2 is not None else 0.0]


def _task():
    import torch

    gen = torch.Generator().manual_seed(1)
    X = torch.randn(256, 10, generator=gen)
    teacher = torch.randn(10, 3, generator=gen)
    y = (torch.tanh(X @ teacher) + 0.3 * torch.randn(256, 3, generator=gen)).argmax(1)
    return X, y


def _network(widths: list[int], seed: int):
    import torch

    torch.manual_seed(seed)
    return [torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:])]


def _init_signals(fn) -> list[float]:
    import torch
    import torch.nn.functional as F

    X, y = _task()
    deep = _network([10] + [64] * 8, seed=2)
    h, logvars = X, []
    with torch.no_grad():
        for depth, layer in enumerate(deep, start=1):
            h = fn(layer(h))
            if depth in (1, 2, 4, 8):
                logvars.append(_log10(float(h.var())))
    layers = _network([10, 64, 64, 3], seed=3)  # the evaluation's MLP shape
    h, hidden = X, []
    for layer in layers[:-1]:
        h = fn(layer(h))
        h.retain_grad()
        hidden.append(h)
    loss = F.cross_entropy(layers[-1](h), y)
    loss.backward()
    fisher = sum(float((z * z.grad).sum(0).pow(2).sum()) for z in hidden if z.grad is not None) * 0.5
    grad_first = layers[0].weight.grad
    grad_last = layers[-1].weight.grad
    return logvars + [_log10(float(grad_first.norm())) if grad_first is not None else float("nan"),
                      _log10(float(grad_last.norm())) if grad_last is not None else float("nan"),
                      _log10(fisher)]


def _train_drop(fn) -> float:
    import torch
    import torch.nn.functional as F

    X, y = _task()
    layers = _network([10, 64, 64, 3], seed=4)
    params = [p for layer in layers for p in layer.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)

    def loss_now():
        h = X
        for layer in layers[:-1]:
            h = fn(layer(h))
        return F.cross_entropy(layers[-1](h), y)

    first = float(loss_now())
    for _ in range(20):
        opt.zero_grad()
        loss = loss_now()
        loss.backward()
        opt.step()
    last = float(loss_now())
    return _finite((first - last) / first) if first > 0 else float("nan")


def _signals(fn) -> list[float]:
    return _normal(fn) + _init_signals(fn) + [_train_drop(fn)]


def warm() -> None:
    """The probes once on a built-in function, in the warm server before any clock runs: what
    torch initialises on first use (autograd, the optimiser) is not charged to a hypothesis."""
    import torch

    torch.set_num_threads(1)  # before any pool exists: the server forks
    _signals(torch.tanh)


def measure(payload: dict) -> dict:
    """Sandbox target: {"kind", "sources", "timeout_s", "reason"} -> {"features": [[float | None] |
    None], "status": ["ok" | "failed" | "overtime"]}."""
    return measure_sources(payload, _signals)


def probe_rows(kind: str, sources: list[str], sandbox_config=None, limits=None,
               budget=None):
    """([len(sources), WIDTH[kind]] probe features, unmeasured), each source measured on its own
    (`harness`); no columns for kinds other than activation; NaN where a hypothesis failed or fails
    the static checks; `unmeasured[i]` the reason row i could not be measured, else None."""
    import numpy as np

    width = WIDTH.get(kind, 0)
    if not width:
        return np.full((len(sources), 0), np.nan, dtype=np.float32), [None] * len(sources)
    rows, unmeasured = measure_rows(PROBE_TARGET, kind, sources, limits, sandbox_config, budget)
    return as_matrix(rows, width), unmeasured


def probe_matrix(kind: str, sources: list[str], sandbox_config=None):
    """Probe features only (NaN where failed or unmeasured: `probe_rows` says which)."""
    return probe_rows(kind, sources, sandbox_config)[0]
