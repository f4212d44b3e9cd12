"""All family groups (CNN, attention) of a job in one Lightning module, the counterpart of
`evaluate.training.model.EnsembleModule` for the MLP. Each family group runs its own forward pass and calls
hypothesis code once per model; a model that has stopped early (full variant) calls nothing more:
its activation slots give the stand-in and its regularizer is not called (as the MLP's)."""
from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn

from ..epochs import EpochSteps, adam
from ..model import Guard, GroupSpec
from . import FAMILIES


class FamilyEnsembleModule(EpochSteps, pl.LightningModule):
    def __init__(self, specs: list[GroupSpec], lr: float, batch_size: int,
                 patience: int | None = None, guard: Guard | None = None):
        super().__init__()
        self.guard = guard or Guard()
        self.groups = nn.ModuleList(FAMILIES[s.family](s, self.guard) for s in specs)
        self.lr, self.batch_size, self.patience = lr, batch_size, patience
        self.init_stopping()

    def step_loss(self, step: int) -> torch.Tensor:
        losses = [loss for g, running in zip(self.groups, self.running)
                  if running and (loss := g.training_loss(int(step), self.batch_size)) is not None]
        return torch.stack(losses).sum()

    @torch.no_grad()
    def evaluate_split(self, split: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [g.evaluate(getattr(g.spec, f"X_{split}"), getattr(g.spec, f"y_{split}"))
                for g in self.groups]

    def configure_optimizers(self):
        # Unfused here: a family's forward is not bit-exact between batched and alone (a grouped
        # convolution over M models rounds differently from one model's plain convolution), and
        # the fused kernel's different rounding was seen to amplify that drift in full training
        # (one digits-cnn model's test accuracy moved by 0.009); unfused, it stays at the last bits
        # of the losses, as before. The MLP's path is exact and uses the fused kernel.
        return adam(self.groups, self.lr, fused=False)

    def validate_running(self) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        return [g.evaluate(g.spec.X_val, g.spec.y_val) if running else None
                for g, running in zip(self.groups, self.running)]

    def after_stopping(self, i: int) -> None:
        self.groups[i].stopped = self.stopped_at[i] >= 0

    def restore_best(self) -> None:
        for g in self.groups:
            g.stopped = None  # the restored weights are scored with every model's own code
        super().restore_best()
