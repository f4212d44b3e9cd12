"""Activation functions: `activation(x)` replaces the MLP's hidden nonlinearity."""
from __future__ import annotations

from .base import REPEAT_CALLS, Kind, repeat_check

COMPONENTS = {
    "relu": "import torch\n\ndef activation(x):\n    return torch.relu(x)\n",
    "gelu": "import torch.nn.functional as F\n\ndef activation(x):\n    return F.gelu(x)\n",
    "silu": "import torch.nn.functional as F\n\ndef activation(x):\n    return F.silu(x)\n",
    "mish": "import torch\nimport torch.nn.functional as F\n\n"
            "def activation(x):\n    return x * torch.tanh(F.softplus(x))\n",
    "elu": "import torch.nn.functional as F\n\ndef activation(x):\n    return F.elu(x)\n",
}


def probe(fn, seed: int = 0) -> list[str]:
    import torch

    reasons = []
    gen = torch.Generator().manual_seed(0)
    first = None
    for shape in [(7,), (4, 5), (2, 3, 4)]:
        leaf = (torch.randn(shape, generator=gen) * 3).requires_grad_(True)
        x = leaf * 1.0  # not a leaf, like a hidden layer's pre-activation: in-place writes succeed
        keep = x.detach().clone()
        y = fn(x)
        if not torch.equal(x.detach(), keep):
            return ["activation modified its input in place"]
        if not isinstance(y, torch.Tensor):
            return [f"activation must return a tensor, got {type(y).__name__}"]
        if tuple(y.shape) != shape:
            return [f"activation changed the shape: input {list(shape)}, output {list(y.shape)}"]
        if not y.dtype.is_floating_point:
            return [f"activation returned dtype {y.dtype}, expected a float tensor"]
        if not torch.isfinite(y).all():
            return [f"activation returned NaN or inf for ordinary inputs (shape {list(shape)})"]
        if not y.requires_grad:
            return ["activation output does not depend differentiably on its input (no gradient)"]
        (grad,) = torch.autograd.grad(y.sum(), leaf, allow_unused=True)
        if grad is None:
            return ["activation output has no gradient with respect to its input"]
        if not torch.isfinite(grad).all():
            reasons.append("activation gradient is NaN or inf for ordinary inputs")
        first = first or (keep, y.detach().clone())
    wide = torch.linspace(-50, 50, 201)
    if not torch.isfinite(fn(wide)).all():
        reasons.append("activation returns NaN or inf for inputs in [-50, 50]")
    if reasons:
        return reasons
    rng = torch.Generator().manual_seed(seed)
    shapes = [tuple(int(d) for d in torch.randint(1, 9, (1 + i % 3,), generator=rng))
              for i in range(REPEAT_CALLS)]
    others = ((torch.randn(s, generator=rng) * 3,) for s in shapes)
    return repeat_check(fn, "activation", (first[0].clone(),), first[1], others)


KIND = Kind(name="activation", function="activation", arity=1,
            modules=frozenset({"torch", "torch.nn.functional", "math"}),
            components=COMPONENTS, default="relu", probe=probe)
