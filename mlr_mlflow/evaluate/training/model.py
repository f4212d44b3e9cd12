"""Many small MLPs trained at once: weights stacked on a leading model axis, one Lightning `fit`.

A *group* is the models that share a dataset and an input width; a fit holds any number of groups.
Each model keeps what it would have alone: its own initialisation and data order (seeded by its
seed and dataset, never by its position in the batch), its own activation and regularizer, its own
Adam state (Adam is element-wise) and its own early stopping. Hypothesis code is called through
`calls`: a function that treats rows independently is called once per layer and step on the rows
of all its models (every seed and dataset) stacked, any other once per model on that model's rows;
a model that has stopped early or failed calls nothing. So a model's result does not depend on what
it was batched with (tests/test_model.py checks this, exactly for elementwise functions).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from .calls import Guard, callers, check_activation, check_penalty
from .epochs import EpochSteps, adam

__all__ = ["Guard", "GroupSpec", "Group", "EnsembleModule", "EpochSteps", "adam", "stable_seed",
           "stacked_linear"]


def stable_seed(*parts) -> int:
    """A seed from (seed, dataset, purpose, ...) that is the same in every process and batch."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


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
    family: str = "mlp"  # "cnn" and "attention" are built by evaluate.training.families
    input_shape: tuple[int, ...] = ()  # a row's shape for those families


def _scalar(value) -> torch.Tensor:
    return torch.as_tensor(value, dtype=torch.float32).reshape(())


def stacked_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Every model's own affine layer: [M, B, in] @ [M, in, out] + [M, out] -> [M, B, out].
    Without autograd (validation and test scores), each model's block of the output starts on a
    64-byte line, as a model's own tensor would: the CPU matmul's rounding can depend on where its
    output lies (seen with 10 outputs and an odd number of rows), and a model's scores must not
    depend on its place in the batch (tests/test_model.py)."""
    if torch.is_grad_enabled():
        return torch.baddbmm(bias.unsqueeze(1), x, weight)
    m, b, _ = x.shape
    width = weight.shape[-1]
    step = 16 // math.gcd(width, 16)  # rows whose floats fill whole 64-byte lines
    out = x.new_empty(m, -(-b // step) * step, width)[:, :b]
    return torch.baddbmm(bias.unsqueeze(1), x, weight, out=out)


class SeededRows:
    """What every stacked group shares, MLP or family: one model per seed of `self.spec`, and each
    epoch's row order drawn from that model's seed, the dataset and the epoch."""

    spec: "GroupSpec"

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


class Group(SeededRows, nn.Module):
    """The stacked parameters and data order of one group; the ensemble runs its forward pass."""

    def __init__(self, spec: GroupSpec, hidden: tuple[int, ...]):
        super().__init__()
        self.spec = spec
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

    def linear(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """[M, B, in] -> [M, B, out]: every model's own layer."""
        return stacked_linear(x, self.weights[layer], self.biases[layer])

    def train_batch(self, step: int, batch_size: int):
        """(inputs [M, B, D], labels [M, B]) of this step, or None once this group's data is used."""
        start = step * batch_size
        if start >= self.n_train:
            return None
        idx = self.order[:, start:start + batch_size]
        return self.spec.X_train[self.pindex.unsqueeze(1), idx], self.spec.y_train[idx]

    def per_model_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m, b, c = logits.shape
        return F.cross_entropy(logits.reshape(m * b, c), y.reshape(m * b), reduction="none").view(m, b).mean(1)

    def model_weights(self, m: int) -> list[torch.Tensor]:
        """Copies of model m's weight matrices in nn.Linear's [out, in] layout (its own memory)."""
        return [w[m].clone().t() for w in self.weights]


class EnsembleModule(EpochSteps, pl.LightningModule):
    """All groups of a job. `patience=None` is the one-pass variant (no validation, no stopping).
    `grouped=False` calls every function once per model (the reference the grouped path equals)."""

    def __init__(self, specs: list[GroupSpec], hidden: tuple[int, ...], lr: float, batch_size: int,
                 patience: int | None = None, guard: Guard | None = None, grouped: bool = True):
        super().__init__()
        self.guard = guard or Guard()
        self.groups = nn.ModuleList(Group(s, hidden) for s in specs)
        self.hidden, self.grouped = tuple(hidden), grouped
        self.lr, self.batch_size, self.patience = lr, batch_size, patience
        self.init_stopping()
        self.activations = callers([s.activations for s in specs], [s.keys for s in specs])
        self.regularizers = callers([s.regularizers for s in specs], [s.keys for s in specs])
        self._planned = False
        self._plans: dict[tuple, list] = {}

    def plan_calls(self) -> None:
        """Probe each distinct function once (hypothesis code: run it under the guard's timer)."""
        if self._planned:
            return
        self._planned = True
        for caller in self.activations:
            caller.probe_activation(self.guard, set(self.hidden), self.grouped)
        shapes = [tuple(w.shape[:0:-1]) for w in self.groups[0].weights] if self.groups else []
        for caller in self.regularizers:
            caller.probe_regularizer(self.guard, shapes, self.grouped)

    def on_fit_start(self) -> None:
        self.plan_calls()

    # -- who calls what ---------------------------------------------------------------------
    def _plan(self, rows: list[int], with_stopped: bool) -> list:
        """For the groups' row counts this call (0: no rows), each caller's live members and the
        rows of the flat [all rows, width] tensor they own; cached until a model stops or fails."""
        n_stopped = sum(int((s >= 0).sum()) for s in self.stopped_at) if not with_stopped else -1
        signature = (tuple(rows), with_stopped, n_stopped, len(self.guard.errors))
        if signature not in self._plans:
            offsets, total = [], 0
            for g, n in zip(self.groups, rows):
                offsets.append(total)
                total += g.n_models * n

            def live(g: int, m: int, key: str) -> bool:
                return rows[g] > 0 and key not in self.guard.errors and (
                    with_stopped or int(self.stopped_at[g][m]) < 0)

            def span(g: int, m: int) -> torch.Tensor:
                start = offsets[g] + m * rows[g]
                return torch.arange(start, start + rows[g])

            plan = []
            for kind, found in (("activation", self.activations), ("regularizer", self.regularizers)):
                for caller in found:
                    members = [(g, m, k) for g, m, k in caller.members if live(g, m, k)]
                    if members:
                        spans = [span(g, m) for g, m, _ in members]
                        plan.append((kind, caller, members, torch.cat(spans), spans))
            self._plans[signature] = plan
        return self._plans[signature]

    def _activate(self, hs: list[torch.Tensor | None], plan: list) -> list[torch.Tensor | None]:
        """Each model's activation on its own rows; failed and stopped models get zeros."""
        active = [h for h in hs if h is not None]
        if not active:
            return hs
        width = active[0].shape[-1]
        flat = torch.cat([h.reshape(-1, width) for h in active])
        where, values = [], []
        for kind, caller, members, index, spans in plan:
            if kind != "activation":
                continue
            if caller.grouped.get(width):
                if any(k in self.guard.errors for _, _, k in members):  # failed earlier this step
                    keep = [i for i, (_, _, k) in enumerate(members) if k not in self.guard.errors]
                    if not keep:
                        continue
                    members, index = [members[i] for i in keep], torch.cat([spans[i] for i in keep])
                x = flat.index_select(0, index)  # new memory: only this function's rows
                y = self.guard.call_group([k for _, _, k in members], lambda: caller.fn(x),
                                          lambda y: check_activation(x, y))
                if y is not None:
                    where.append(index)
                    values.append(y)
                continue
            for (_, _, key), rows in zip(members, spans):
                x = flat.index_select(0, rows)
                y = self.guard.call(key, lambda: caller.fn(x), lambda y: check_activation(x, y))
                if y is not None:
                    where.append(rows)
                    values.append(y)
        out = flat.new_zeros(flat.shape)
        if values:
            out = out.index_copy(0, torch.cat(where), torch.cat(values))
        pieces = iter(out.split([h.numel() // width for h in active]))
        return [None if h is None else next(pieces).view(h.shape) for h in hs]

    def _penalty(self, plan: list, rows: list[int]) -> torch.Tensor:
        """The regularizers of the live models, summed (only the sum enters the loss)."""
        terms = []
        for kind, caller, members, _, _ in plan:
            if kind != "regularizer":
                continue
            members = [member for member in members if member[2] not in self.guard.errors]
            if not members:
                continue
            if caller.grouped.get(0):  # ignores the weights: one call stands for all its models
                g, m, _ = members[0]
                value = self.guard.call_group([k for _, _, k in members],
                                              lambda: _scalar(caller.fn(self.groups[g].model_weights(m))),
                                              check_penalty)
                if value is not None:
                    terms.append(value * len(members))
                continue
            for g, m, key in members:
                value = self.guard.call(key, lambda: _scalar(caller.fn(self.groups[g].model_weights(m))),
                                        check_penalty)
                if value is not None:
                    terms.append(value)
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def forward_all(self, xs: list[torch.Tensor | None], plan: list) -> list[torch.Tensor | None]:
        """Inputs per group ([M, B, D] or None) -> logits per group ([M, B, C] or None)."""
        last = len(self.hidden)
        for layer in range(last + 1):
            xs = [None if x is None else g.linear(layer, x) for g, x in zip(self.groups, xs)]
            if layer < last:
                xs = self._activate(xs, plan)
        return xs

    def step_loss(self, step: int) -> torch.Tensor:
        """The summed loss of every live model on minibatch `step` of this epoch."""
        self.plan_calls()
        batches = [g.train_batch(int(step), self.batch_size) if running else None
                   for g, running in zip(self.groups, self.running)]
        rows = [0 if b is None else b[0].shape[1] for b in batches]
        plan = self._plan(rows, with_stopped=False)
        logits = self.forward_all([None if b is None else b[0] for b in batches], plan)
        losses = [g.per_model_loss(z, b[1]).sum() for g, z, b in zip(self.groups, logits, batches)
                  if z is not None]
        return torch.stack(losses).sum() + self._penalty(plan, rows)

    @torch.no_grad()
    def evaluate_split(self, split: str, with_stopped: bool = True,
                       which: list[bool] | None = None) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """Per group, per-model (accuracy, mean cross-entropy) on a full split ("val" or "test");
        None for a group left out by `which`."""
        which = which or [True] * len(self.groups)
        xs = [getattr(g.spec, f"X_{split}")[g.pindex] if w else None for g, w in zip(self.groups, which)]
        plan = self._plan([0 if x is None else x.shape[1] for x in xs], with_stopped)
        out = []
        for g, logits in zip(self.groups, self.forward_all(xs, plan)):
            if logits is None:
                out.append(None)
                continue
            target = getattr(g.spec, f"y_{split}").unsqueeze(0).expand(g.n_models, -1)
            loss = g.per_model_loss(logits, target)
            out.append(((logits.argmax(-1) == target).float().mean(1), loss))
        return out

    def validate_running(self) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        # stopped models call nothing: their validation rows get the stand-in and are not read
        return self.evaluate_split("val", with_stopped=False, which=self.running)
