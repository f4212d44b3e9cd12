"""What every stacked family shares with the MLP: per-model seeds, data order, guarded hypothesis
calls, losses and metrics. A subclass says only how one model's parameters start (`init_params`),
how the stacked models run (`forward`) and which weight matrices a regularizer sees.

Per-model independence holds as in `evaluate.training.model`: initialisation and data order are seeded by
(seed, task), each hypothesis call sees one model's tensor, Adam is element-wise, and the batched
operations (grouped convolutions, einsums over the model axis) never mix models.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..calls import check_activation as _check_activation
from ..calls import check_penalty
from ..model import Guard, GroupSpec, SeededRows, _scalar, stable_seed


def uniform(gen: torch.Generator, shape, fan_in: int) -> torch.Tensor:
    """torch.nn's default initialisation (Linear, Conv2d): U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(*shape, generator=gen) * 2 - 1) * bound


class StackedGroup(SeededRows, nn.Module):
    """The models of one task and family, parameters stacked on a leading model axis."""

    def __init__(self, spec: GroupSpec, guard: Guard | None = None):
        super().__init__()
        self.spec = spec
        self.guard = guard or Guard()
        inits = [self.init_params(torch.Generator().manual_seed(stable_seed(seed, spec.dataset, "init")))
                 for seed in spec.seeds]
        self.params = nn.ParameterDict({name: nn.Parameter(torch.stack([p[name] for p in inits]))
                                        for name in inits[0]})
        self.register_buffer("pindex", torch.tensor(spec.pindex, dtype=torch.long))
        self.order: torch.Tensor | None = None
        self.stopped: torch.Tensor | None = None  # set by the ensemble: models that stopped early

    # what a family defines
    def init_params(self, gen: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [M, B, D] (rows as stored) -> logits [M, B, C]."""
        raise NotImplementedError

    def weight_matrices(self, m: int) -> list[torch.Tensor]:
        """Model m's weights as [out, in] matrices (a convolution's kernel as [out, in*k*k])."""
        raise NotImplementedError

    # shared (n_models, n_train and shuffle come from SeededRows)
    def activate(self, x: torch.Tensor) -> torch.Tensor:
        """x: [M, ...]; model m's activation sees only (a copy of) model m's slice."""
        return torch.stack([self._activate(m, act, x[m]) for m, act in enumerate(self.spec.activations)])

    def _calls(self, m: int) -> bool:
        """Whether model m's code runs now: not after it has stopped early."""
        return self.stopped is None or not bool(self.stopped[m])

    def _activate(self, m: int, act: Callable, x: torch.Tensor) -> torch.Tensor:
        if not self._calls(m):
            return x * 0.0
        y = self.guard.call(self.spec.keys[m], lambda: act(x.clone()), lambda y: _check_activation(x, y))
        return x * 0.0 if y is None else y

    def per_model_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m, b, c = logits.shape
        return F.cross_entropy(logits.reshape(m * b, c), y.reshape(m * b), reduction="none").view(m, b).mean(1)

    def penalties(self) -> torch.Tensor:
        terms = []
        for m, reg in enumerate(self.spec.regularizers):
            mats = self.weight_matrices(m)
            if not self._calls(m):
                terms.append(mats[0].sum() * 0.0)
                continue
            value = self.guard.call(self.spec.keys[m], lambda: _scalar(reg([w.clone() for w in mats])),
                                    check_penalty)
            terms.append(mats[0].sum() * 0.0 if value is None else value)
        return torch.stack(terms)

    def training_loss(self, step: int, batch_size: int) -> torch.Tensor | None:
        start = step * batch_size
        if start >= self.n_train:
            return None
        idx = self.order[:, start:start + batch_size]
        logits = self(self.spec.X_train[self.pindex.unsqueeze(1), idx])
        return (self.per_model_loss(logits, self.spec.y_train[idx]) + self.penalties()).sum()

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(X[self.pindex])
        target = y.unsqueeze(0).expand(self.n_models, -1)
        loss = self.per_model_loss(logits, target)
        acc = (logits.argmax(-1) == target).float().mean(1)
        return acc, loss
