"""Adam over the parameters of a fit, one flat tensor per group of models.

A fit holds many small stacked tensors (weights and biases of every group and layer), and torch's
Adam takes about ten tensor operations per tensor and step: for these small models that costs as
much as the forward pass. `FlatAdam` moves each group's parameters into one flat buffer (each
parameter a view of its slice) and updates it as one tensor: a step gathers the group's gradients
into one flat gradient and takes torch's fused Adam step over all groups at once.

What stays as with torch's Adam on the separate tensors: a group whose parameters got no gradient
this step (its data ran out before the epoch's last step, or all its models stopped) takes no step
at all, neither its values nor its moments nor its step count move; so a model's updates do not
depend on which other groups share its fit.

Why a model's updates do not depend on its position in a batch either: Adam is element-wise, and
CPU kernels compute a tensor's elements in vector lanes except for a short scalar tail at its end,
whose rounding can differ (with the fused kernel on the separate tensors it did: a model trained in
a batch then drifted from the same model alone). Each flat buffer is padded to a multiple of
`ALIGN` elements, so every parameter element lies in a vector lane, in a batch or alone, and gets
exactly the same arithmetic (tests/test_optim.py, tests/test_model.py).
"""
from __future__ import annotations

import torch

__all__ = ["ALIGN", "FlatAdam"]

# elements each flat buffer is padded to: a multiple of any CPU vector width (AVX-512 floats: 16)
# and of the fused kernel's task unit (a 64-byte cache line of floats)
ALIGN = 64


class _Flat:
    """One group's parameters as views of one padded buffer (`param`, the tensor Adam updates)."""

    def __init__(self, members: list[torch.nn.Parameter]):
        self.members = members
        sizes = [p.numel() for p in members]
        total = -(-max(sum(sizes), 1) // ALIGN) * ALIGN
        data = torch.zeros(total, dtype=members[0].dtype)
        offset = 0
        with torch.no_grad():
            for p, n in zip(members, sizes):
                view = data[offset:offset + n].view(p.shape)
                view.copy_(p)
                p.data = view
                offset += n
        self.padding = torch.zeros(total - offset, dtype=data.dtype)
        self.param = torch.nn.Parameter(data)

    def gather(self) -> bool:
        """The members' gradients into one flat gradient; False when none got one this step. A
        member without a gradient while others have one counts as zero (a group's parameters are
        used together, so this does not happen in our modules)."""
        grads = [p.grad for p in self.members]
        if all(g is None for g in grads):
            self.param.grad = None
            return False
        self.param.grad = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                     for p, g in zip(self.members, grads)] + [self.padding])
        return True


class FlatAdam(torch.optim.Adam):
    """torch's Adam (fused kernel by default) on one flat tensor per group of parameters. `groups`:
    lists of parameters that are trained together (moved into their flat buffer: each keeps its
    shape and values, its storage becomes a slice of the buffer).

    With the fused kernel a step calls it directly (`torch._fused_adam_`, exactly what torch's
    `Adam.step` calls for fused Adam, without its per-step bookkeeping: about 0.1 ms a step, a tenth
    of a small fit's step); tests/test_optim.py checks it against `torch.optim.Adam(fused=True)`."""

    def __init__(self, groups, lr: float, fused: bool = True):
        self.flats = [_Flat(members) for members in
                      ([p for p in group if p.requires_grad] for group in groups) if members]
        super().__init__([f.param for f in self.flats] or [torch.nn.Parameter(torch.zeros(ALIGN))],
                         lr=lr, fused=fused)
        self.direct = fused and hasattr(torch, "_fused_adam_")

    def zero_grad(self, set_to_none: bool = True) -> None:
        for flat in self.flats:
            flat.param.grad = None
            for p in flat.members:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stepping = [flat for flat in self.flats if flat.gather()]
        if not stepping:
            return loss
        if not self.direct:
            super().step()
            return loss
        group = self.param_groups[0]
        states = []
        for flat in stepping:
            state = self.state[flat.param]
            if not state:  # as torch's Adam initialises it for the fused kernel
                state["step"] = torch.zeros((), dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(flat.param)
                state["exp_avg_sq"] = torch.zeros_like(flat.param)
            states.append(state)
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        torch._fused_adam_([f.param for f in stepping], [f.param.grad for f in stepping],
                           [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [],
                           steps, amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
                           weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                           grad_scale=None, found_inf=None)
        return loss
