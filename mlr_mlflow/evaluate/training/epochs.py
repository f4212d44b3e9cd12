"""The epoch loop both training modules share (the MLP's `model.EnsembleModule` and the CNN and
attention families' `families.ensemble.FamilyEnsembleModule`): one Lightning step per epoch, Adam
(`optim.FlatAdam`), and each model's own early stopping.

A module using it has `groups` (each with `n_models`, `n_train`, `shuffle(epoch)` and its
parameters), `batch_size`, `lr`, `patience` (None: the one-pass variant, no stopping),
`step_loss(step)` (the summed loss of the running groups' models on minibatch `step`) and
`validate_running()` (per group, (accuracy, loss) on the validation split, or None for a group none
of whose models is running), and calls `init_stopping()` once its groups exist.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .optim import FlatAdam

__all__ = ["EpochSteps", "adam"]

FUSED_ADAM = True  # the fused kernel on padded flat buffers: exact, batched or alone (`optim`)


def adam(groups: list[nn.Module], lr: float, fused: bool = FUSED_ADAM) -> torch.optim.Optimizer:
    """Adam for every model of a fit: one flat, padded buffer per group of models (`optim`)."""
    return FlatAdam([list(g.parameters()) for g in groups], lr, fused=fused)


class EpochSteps:
    """Lightning fits the modules epoch by epoch, and one Lightning step is one whole epoch: its body
    takes every minibatch's own Adam step in order (manual optimization), exactly the updates the
    automatic loop would take a minibatch at a time. Lightning's loop costs about a millisecond a
    step in hooks and bookkeeping, as much as these small models' arithmetic, and full training
    takes thousands of steps (docs/benchmarks.md). Epoch hooks (the shuffle, validation and early
    stopping) run as before; `job._fit` hands the trainer one batch per epoch.

    A group all of whose models have stopped early is left out of the epochs that follow: no
    forward pass, gradient or Adam step, and the epoch's steps are those of its running groups.
    Its models' weights are the best ones they had (`restore_best`), so leaving it out changes no
    number, and a model's result stays the one it would have alone, in any batch."""

    automatic_optimization = False

    def init_stopping(self) -> None:
        n = [g.n_models for g in self.groups]
        self.best_loss = [torch.full((k,), math.inf) for k in n]
        self.bad_epochs = [torch.zeros(k, dtype=torch.long) for k in n]
        self.stopped_at = [torch.full((k,), -1, dtype=torch.long) for k in n]
        self.best_state: list[list[torch.Tensor] | None] = [None] * len(n)
        self.running = [True] * len(n)  # per group: has a model that has not stopped

    def configure_optimizers(self):
        return adam(self.groups, self.lr)

    def training_step(self, epoch, batch_idx):
        # the optimizer itself and a plain backward: on one CPU device in float32, Lightning's
        # wrappers (LightningOptimizer.step, manual_backward) add nothing but about 0.15 ms a step
        optimizer = self.optimizers().optimizer
        for step in range(self.steps_per_epoch()):
            optimizer.zero_grad()
            self.step_loss(step).backward()
            optimizer.step()

    def steps_per_epoch(self) -> int:
        return max((math.ceil(g.n_train / self.batch_size)
                    for g, running in zip(self.groups, self.running) if running), default=0)

    def on_train_epoch_start(self) -> None:
        self.running = [bool((s < 0).any()) for s in self.stopped_at]
        for g, running in zip(self.groups, self.running):
            if running:
                g.shuffle(self.current_epoch)

    def on_train_epoch_end(self) -> None:
        if self.patience is None:
            return
        for i, result in enumerate(self.validate_running()):
            if result is None:
                continue
            val_loss = torch.nan_to_num(result[1], nan=math.inf)
            running = self.stopped_at[i] < 0
            improved = running & (val_loss < self.best_loss[i])
            self._snapshot(i, improved)
            self.best_loss[i] = torch.where(improved, val_loss, self.best_loss[i])
            self.bad_epochs[i] = torch.where(improved, 0, self.bad_epochs[i] + running.long())
            stop = running & (self.bad_epochs[i] >= self.patience)
            self.stopped_at[i] = torch.where(stop, self.current_epoch, self.stopped_at[i])
            self.after_stopping(i)
        if all(bool((s >= 0).all()) for s in self.stopped_at):
            self.trainer.should_stop = True

    def after_stopping(self, i: int) -> None:
        """Group i's models may have stopped this epoch (`stopped_at`)."""

    @torch.no_grad()
    def _snapshot(self, i: int, which: torch.Tensor) -> None:
        params = list(self.groups[i].parameters())
        if self.best_state[i] is None:
            self.best_state[i] = [p.detach().clone() for p in params]
        elif not bool(which.any()):
            return
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
        return [int(s) + 1 if s >= 0 else max_epochs for s in self.stopped_at[i]]
