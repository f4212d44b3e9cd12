"""A small CNN for images: conv 3x3 -> activation -> 2x2 average pool -> conv 3x3 -> activation ->
global average pool -> linear. The models of a batch run as one grouped convolution (groups = the
number of models), so model m's filters only ever see model m's images."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model import stacked_linear
from .base import StackedGroup, uniform

CHANNELS = (8, 16)


class CNNGroup(StackedGroup):
    def init_params(self, gen):
        c_in = self.spec.input_shape[0]
        c1, c2 = CHANNELS
        k = self.spec.n_classes
        return {"conv1_w": uniform(gen, (c1, c_in, 3, 3), c_in * 9), "conv1_b": uniform(gen, (c1,), c_in * 9),
                "conv2_w": uniform(gen, (c2, c1, 3, 3), c1 * 9), "conv2_b": uniform(gen, (c2,), c1 * 9),
                "head_w": uniform(gen, (c2, k), c2), "head_b": uniform(gen, (k,), c2)}

    def _conv(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """x: [M, B, C, H, W] -> [M, B, C_out, H, W], one grouped convolution for all models."""
        m, batch, c, h, wd = x.shape
        out = F.conv2d(x.transpose(0, 1).reshape(batch, m * c, h, wd), w.reshape(-1, *w.shape[2:]),
                       b.reshape(-1), padding=1, groups=m)
        return out.view(batch, m, -1, h, wd).transpose(0, 1).contiguous()

    def forward(self, x):
        p = self.params
        m, batch = x.shape[:2]
        x = x.reshape(m, batch, *self.spec.input_shape)
        x = self.activate(self._conv(x, p["conv1_w"], p["conv1_b"]))
        x = F.avg_pool2d(x.flatten(0, 1), 2).view(m, batch, *x.shape[2:3], *[s // 2 for s in x.shape[3:]])
        x = self.activate(self._conv(x, p["conv2_w"], p["conv2_b"]))
        return stacked_linear(x.mean((-2, -1)), p["head_w"], p["head_b"])

    def weight_matrices(self, m):
        p = self.params
        return [p["conv1_w"][m].flatten(1), p["conv2_w"][m].flatten(1), p["head_w"][m].t()]
