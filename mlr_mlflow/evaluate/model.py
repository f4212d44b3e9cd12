"""Many small MLPs trained at once: weights stacked on a leading model axis, one Lightning `fit`.

A *group* is the models that share a dataset and an input width; a fit holds any number of groups.
Each model keeps what it would have alone: its own initialisation and data order (seeded by its
seed and dataset, never by its position in the batch), its own activation and regularizer (called
on that model's tensors only), its own Adam state (Adam is element-wise) and its own early stopping.
So a model's result does not depend on what it was batched with (tests/test_model.py checks this).
"""
from __future__ import annotations

import hashlib
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from ..sandbox.alarm import Alarm, Overtime


def stable_seed(*parts) -> int:
    """A seed from (seed, dataset, purpose, ...) that is the same in every process and batch."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class Guard:
    """Calls hypothesis code on behalf of one model at a time, inside the training job.

    An exception, a malformed result or a spent time budget fails only that model: its key goes to
    `errors`, and from then on it gets a neutral stand-in, so every other model trains on unharmed
    (models never share parameters, gradients or optimizer state). Time is counted per model over
    the whole job. Within `timer()`, the workers' one time limit (`sandbox.alarm`) also interrupts
    a single call that outlives its model's budget; its deadline is set only while hypothesis code
    runs, so the per-call cost stays two clock reads.
    """

    TICK_S = 0.2

    def __init__(self, budget_s: float = math.inf):
        self.budget_s = budget_s
        self.spent: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.alarm = Alarm(self.TICK_S)

    def timer(self):
        """Arm the interrupting tick for the duration (main thread only; elsewhere, counting only)."""
        return self.alarm if math.isfinite(self.budget_s) else nullcontext()

    def call(self, key: str, fn: Callable, check: Callable | None = None):
        """fn(), checked by check(result) -> problem or None; None when the model has failed."""
        if key in self.errors:
            return None
        spent = self.spent.get(key, 0.0)
        start = time.perf_counter()
        problem = None
        try:
            self.alarm.deadline = start + self.budget_s - spent
            result = fn()
            self.alarm.deadline = None
            if check is not None:
                problem = check(result)
        except Overtime:
            pass  # reported below, from the clock
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        finally:
            self.alarm.deadline = None
            self.spent[key] = spent + time.perf_counter() - start
        if problem is None and self.spent[key] > self.budget_s:
            problem = f"its code ran longer than its training time budget of {self.budget_s:g} s"
        if problem is not None:
            self.errors[key] = problem[:500]
            return None
        return result


def _check_activation(x: torch.Tensor, y) -> str | None:
    if not isinstance(y, torch.Tensor):
        return f"activation returned {type(y).__name__}, not a tensor"
    if y.shape != x.shape or y.dtype != x.dtype:
        return f"activation returned shape {list(y.shape)} ({y.dtype}) for input {list(x.shape)}"
    return None


def _scalar(value) -> torch.Tensor:
    return torch.as_tensor(value, dtype=torch.float32).reshape(())


@dataclass
class GroupSpec:
    """The models of one group.

    X_* hold one matrix per distinct preprocessing ([P, N, D]); `pindex[m]` picks model m's matrix.
    """

    dataset: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    keys: list[str]
    pindex: list[int]
    seeds: list[int]
    activations: list[Callable]
    regularizers: list[Callable]
    family: str = "mlp"  # "cnn" and "attention" are built by evaluate.families
    input_shape: tuple[int, ...] = ()  # a row's shape for those families


def make_group(spec: GroupSpec, hidden: tuple[int, ...], guard: Guard | None = None) -> nn.Module:
    """The spec's family: the MLP below, or a family of `evaluate.families` (same interface)."""
    if spec.family == "mlp":
        return Group(spec, hidden, guard)
    from .families import FAMILIES

    return FAMILIES[spec.family](spec, guard)


class Group(nn.Module):
    def __init__(self, spec: GroupSpec, hidden: tuple[int, ...], guard: Guard | None = None):
        super().__init__()
        self.spec = spec
        self.guard = guard or Guard()
        dims = [spec.X_train.shape[-1], *hidden, spec.n_classes]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        inits = [self._init(seed, dims) for seed in spec.seeds]
        for layer in range(len(dims) - 1):
            self.weights.append(nn.Parameter(torch.stack([w[layer][0] for w in inits])))
            self.biases.append(nn.Parameter(torch.stack([w[layer][1] for w in inits])))
        self.register_buffer("pindex", torch.tensor(spec.pindex, dtype=torch.long))
        self.order: torch.Tensor | None = None

    def _init(self, seed: int, dims: list[int]):
        """nn.Linear's default initialisation, drawn from this model's own generator."""
        gen = torch.Generator().manual_seed(stable_seed(seed, self.spec.dataset, "init"))
        layers = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(fan_out, generator=gen) * 2 - 1) * bound
            layers.append((w, b))
        return layers

    @property
    def n_models(self) -> int:
        return len(self.spec.seeds)

    @property
    def n_train(self) -> int:
        return self.spec.X_train.shape[1]

    def shuffle(self, epoch: int) -> None:
        perms = []
        for seed in self.spec.seeds:
            gen = torch.Generator().manual_seed(stable_seed(seed, self.spec.dataset, "order", epoch))
            perms.append(torch.randperm(self.n_train, generator=gen))
        self.order = torch.stack(perms)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [M, B, D] -> logits [M, B, C]; model m's activation sees only model m's tensor."""
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b.unsqueeze(1), x, w)
            if layer < last:
                x = torch.stack([self._activate(m, act, x[m]) for m, act in enumerate(self.spec.activations)])
        return x

    def _activate(self, m: int, act: Callable, x: torch.Tensor) -> torch.Tensor:
        # clone(): a hypothesis gets its own memory, never a view into other models' rows
        y = self.guard.call(self.spec.keys[m], lambda: act(x.clone()), lambda y: _check_activation(x, y))
        return x * 0.0 if y is None else y

    def per_model_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m, b, c = logits.shape
        return F.cross_entropy(logits.reshape(m * b, c), y.reshape(m * b), reduction="none").view(m, b).mean(1)

    def penalties(self) -> torch.Tensor:
        """Each model's regularizer on its own weight matrices, in nn.Linear's [out, in] layout."""
        terms = []
        for m, reg in enumerate(self.spec.regularizers):
            mats = [w[m] for w in self.weights]
            value = self.guard.call(self.spec.keys[m],  # copies: see forward()
                                    lambda: _scalar(reg([w.clone().t() for w in mats])))
            terms.append(mats[0].sum() * 0.0 if value is None else value)
        return torch.stack(terms)

    def training_loss(self, step: int, batch_size: int) -> torch.Tensor | None:
        start = step * batch_size
        if start >= self.n_train:
            return None
        idx = self.order[:, start:start + batch_size]
        x = self.spec.X_train[self.pindex.unsqueeze(1), idx]
        logits = self(x)
        return (self.per_model_loss(logits, self.spec.y_train[idx]) + self.penalties()).sum()

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-model (accuracy, mean cross-entropy) on a full split."""
        logits = self(X[self.pindex])
        target = y.unsqueeze(0).expand(self.n_models, -1)
        loss = self.per_model_loss(logits, target)
        acc = (logits.argmax(-1) == target).float().mean(1)
        return acc, loss


class EnsembleModule(pl.LightningModule):
    """All groups of a job. `patience=None` is the one-pass variant (no validation, no stopping)."""

    def __init__(self, specs: list[GroupSpec], hidden: tuple[int, ...], lr: float, batch_size: int,
                 patience: int | None = None, guard: Guard | None = None):
        super().__init__()
        self.guard = guard or Guard()
        self.groups = nn.ModuleList(make_group(s, hidden, self.guard) for s in specs)
        self.lr, self.batch_size, self.patience = lr, batch_size, patience
        self.best_loss = [torch.full((g.n_models,), math.inf) for g in self.groups]
        self.bad_epochs = [torch.zeros(g.n_models, dtype=torch.long) for g in self.groups]
        self.stopped_at = [torch.full((g.n_models,), -1, dtype=torch.long) for g in self.groups]
        self.best_state: list[list[torch.Tensor] | None] = [None] * len(self.groups)

    def steps_per_epoch(self) -> int:
        return max(math.ceil(g.n_train / self.batch_size) for g in self.groups)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    def on_train_epoch_start(self) -> None:
        for g in self.groups:
            g.shuffle(self.current_epoch)

    def training_step(self, step, batch_idx):
        losses = [loss for g in self.groups if (loss := g.training_loss(int(step), self.batch_size)) is not None]
        return torch.stack(losses).sum()

    def on_train_epoch_end(self) -> None:
        if self.patience is None:
            return
        all_stopped = True
        for i, g in enumerate(self.groups):
            _, val_loss = g.evaluate(g.spec.X_val, g.spec.y_val)
            val_loss = torch.nan_to_num(val_loss, nan=math.inf)
            running = self.stopped_at[i] < 0
            improved = running & (val_loss < self.best_loss[i])
            self._snapshot(i, improved)
            self.best_loss[i] = torch.where(improved, val_loss, self.best_loss[i])
            self.bad_epochs[i] = torch.where(improved, 0, self.bad_epochs[i] + running.long())
            stop = running & (self.bad_epochs[i] >= self.patience)
            self.stopped_at[i] = torch.where(stop, self.current_epoch, self.stopped_at[i])
            all_stopped &= bool((self.stopped_at[i] >= 0).all())
        if all_stopped:
            self.trainer.should_stop = True

    @torch.no_grad()
    def _snapshot(self, i: int, which: torch.Tensor) -> None:
        params = list(self.groups[i].parameters())
        if self.best_state[i] is None:
            self.best_state[i] = [p.detach().clone() for p in params]
        for saved, p in zip(self.best_state[i], params):
            saved[which] = p.detach()[which]

    @torch.no_grad()
    def restore_best(self) -> None:
        """Full variant: every model goes back to its best-validation weights."""
        for i, g in enumerate(self.groups):
            if self.best_state[i] is not None:
                for saved, p in zip(self.best_state[i], g.parameters()):
                    p.copy_(saved)

    def epochs_trained(self, i: int, max_epochs: int) -> list[int]:
        stopped = self.stopped_at[i]
        return [int(s) + 1 if s >= 0 else max_epochs for s in stopped]
