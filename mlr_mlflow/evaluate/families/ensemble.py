"""All family groups (CNN, attention) of a job in one Lightning module, the counterpart of
`evaluate.model.EnsembleModule` for the MLP. Each family group runs its own forward pass and calls
hypothesis code once per model; a model that has stopped early (full variant) calls nothing more:
its activation slots give the stand-in and its regularizer is not called (as the MLP's)."""
from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch import nn

from ..model import EpochSteps, Guard, GroupSpec, adam
from . import FAMILIES


class FamilyEnsembleModule(EpochSteps, pl.LightningModule):
    def __init__(self, specs: list[GroupSpec], lr: float, batch_size: int,
                 patience: int | None = None, guard: Guard | None = None):
        super().__init__()
        self.guard = guard or Guard()
        self.groups = nn.ModuleList(FAMILIES[s.family](s, self.guard) for s in specs)
        self.lr, self.batch_size, self.patience = lr, batch_size, patience
        self.best_loss = [torch.full((g.n_models,), math.inf) for g in self.groups]
        self.bad_epochs = [torch.zeros(g.n_models, dtype=torch.long) for g in self.groups]
        self.stopped_at = [torch.full((g.n_models,), -1, dtype=torch.long) for g in self.groups]
        self.best_state: list[list[torch.Tensor] | None] = [None] * len(self.groups)

    def steps_per_epoch(self) -> int:
        return max(math.ceil(g.n_train / self.batch_size) for g in self.groups)

    def configure_optimizers(self):
        return adam(self.parameters(), self.lr)

    def on_train_epoch_start(self) -> None:
        for g in self.groups:
            g.shuffle(self.current_epoch)

    def step_loss(self, step: int) -> torch.Tensor:
        losses = [loss for g in self.groups
                  if (loss := g.training_loss(int(step), self.batch_size)) is not None]
        return torch.stack(losses).sum()

    @torch.no_grad()
    def evaluate_split(self, split: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [g.evaluate(getattr(g.spec, f"X_{split}"), getattr(g.spec, f"y_{split}"))
                for g in self.groups]

    def on_train_epoch_end(self) -> None:
        if self.patience is None:
            return
        all_stopped = True
        for i, (_, val_loss) in enumerate(self.evaluate_split("val")):
            val_loss = torch.nan_to_num(val_loss, nan=math.inf)
            running = self.stopped_at[i] < 0
            improved = running & (val_loss < self.best_loss[i])
            self._snapshot(i, improved)
            self.best_loss[i] = torch.where(improved, val_loss, self.best_loss[i])
            self.bad_epochs[i] = torch.where(improved, 0, self.bad_epochs[i] + running.long())
            stop = running & (self.bad_epochs[i] >= self.patience)
            self.stopped_at[i] = torch.where(stop, self.current_epoch, self.stopped_at[i])
            self.groups[i].stopped = self.stopped_at[i] >= 0
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
        for i, g in enumerate(self.groups):
            g.stopped = None  # the restored weights are scored with every model's own code
            if self.best_state[i] is not None:
                for saved, p in zip(self.best_state[i], g.parameters()):
                    p.copy_(saved)

    def epochs_trained(self, i: int, max_epochs: int) -> list[int]:
        return [int(s) + 1 if s >= 0 else max_epochs for s in self.stopped_at[i]]
