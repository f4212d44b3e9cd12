"""A small attention model for token sequences: embedding + position, one pre-norm block of
single-head self-attention and a feed-forward layer (activation inside), then a readout over all
positions with one hidden layer (activation again). The models of a batch are einsums over the
stacked weights, so model m's weights only ever see model m's tokens."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..model import stacked_linear
from .base import StackedGroup, uniform

WIDTH, FEED_FORWARD, READOUT = 16, 32, 32


class AttentionGroup(StackedGroup):
    def init_params(self, gen):
        length, vocab = self.spec.input_shape
        d, f, r, k = WIDTH, FEED_FORWARD, READOUT, self.spec.n_classes
        return {"embed": torch.randn(vocab, d, generator=gen), "position": torch.randn(length, d, generator=gen),
                **{name: uniform(gen, (d, d), d) for name in ("query", "key", "value", "out")},
                "ff1_w": uniform(gen, (d, f), d), "ff1_b": uniform(gen, (f,), d),
                "ff2_w": uniform(gen, (f, d), f), "ff2_b": uniform(gen, (d,), f),
                "read1_w": uniform(gen, (length * d, r), length * d), "read1_b": uniform(gen, (r,), length * d),
                "read2_w": uniform(gen, (r, k), r), "read2_b": uniform(gen, (k,), r)}

    def forward(self, x):
        p = self.params
        m, batch, length = x.shape
        tokens = F.one_hot(x.long(), p["embed"].shape[1]).to(p["embed"].dtype)
        h = torch.einsum("mblv,mvd->mbld", tokens, p["embed"]) + p["position"].unsqueeze(1)
        n = F.layer_norm(h, (WIDTH,))
        q, k, v = (torch.einsum("mbld,mde->mble", n, p[w]) for w in ("query", "key", "value"))
        weights = torch.softmax(torch.einsum("mbld,mbkd->mblk", q, k) / math.sqrt(WIDTH), -1)
        h = h + torch.einsum("mbld,mde->mble", torch.einsum("mblk,mbkd->mbld", weights, v), p["out"])
        n = F.layer_norm(h, (WIDTH,))
        f = self.activate(torch.einsum("mbld,mdf->mblf", n, p["ff1_w"]) + p["ff1_b"][:, None, None])
        h = h + torch.einsum("mblf,mfd->mbld", f, p["ff2_w"]) + p["ff2_b"][:, None, None]
        z = self.activate(stacked_linear(h.reshape(m, batch, -1), p["read1_w"], p["read1_b"]))
        return stacked_linear(z, p["read2_w"], p["read2_b"])

    def weight_matrices(self, m):
        p = self.params
        names = ("query", "key", "value", "out", "ff1_w", "ff2_w", "read1_w", "read2_w")
        return [p["embed"][m].t()] + [p[n][m].t() for n in names]
