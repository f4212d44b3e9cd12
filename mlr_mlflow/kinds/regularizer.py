"""Regularizers: `regularizer(params)` is added to the training loss; params are the weight matrices."""
from __future__ import annotations

from .base import REPEAT_CALLS, Kind, repeat_check

COMPONENTS = {
    "none": "import torch\n\ndef regularizer(params):\n    return torch.zeros(())\n",
    "l2": "def regularizer(params):\n    return 1e-4 * sum(p.pow(2).sum() for p in params)\n",
    "l1": "def regularizer(params):\n    return 1e-5 * sum(p.abs().sum() for p in params)\n",
    "elastic_net": ("def regularizer(params):\n"
                    "    return sum(1e-5 * p.abs().sum() + 5e-5 * p.pow(2).sum() for p in params)\n"),
    # Soft orthogonality (Brock et al., 2017; Bansal et al., 2018): keeps the rows of each weight
    # matrix near-orthonormal, the common parameter-only regularizer of modern deep nets.
    "orthogonal": (
        "import torch\n\n"
        "def regularizer(params):\n"
        "    total = torch.zeros(())\n"
        "    for w in params:\n"
        "        g = w @ w.t() if w.shape[0] <= w.shape[1] else w.t() @ w\n"
        "        total = total + (g - torch.eye(g.shape[0])).pow(2).sum()\n"
        "    return 1e-4 * total\n"),
}


def probe(fn, seed: int = 0) -> list[str]:
    import torch

    gen = torch.Generator().manual_seed(0)
    shapes = [(16, 4), (16, 16), (3, 16)]
    params = [torch.randn(s, generator=gen).requires_grad_(True) for s in shapes]
    keep = [p.detach().clone() for p in params]
    out = fn(params)
    if any(not torch.equal(p.detach(), k) for p, k in zip(params, keep)):
        return ["regularizer modified the model's weights"]
    if not isinstance(out, torch.Tensor):
        if isinstance(out, (int, float)):
            return ["regularizer must return a tensor (got a Python number, which has no gradient)"]
        return [f"regularizer must return a scalar tensor, got {type(out).__name__}"]
    if out.numel() != 1:
        return [f"regularizer must return a scalar, got shape {list(out.shape)}"]
    if not out.dtype.is_floating_point:
        return [f"regularizer returned dtype {out.dtype}, expected float"]
    if not torch.isfinite(out).all():
        return ["regularizer returned NaN or inf"]
    if out.requires_grad:
        grads = torch.autograd.grad(out.sum(), params, allow_unused=True)
        if any(g is not None and not torch.isfinite(g).all() for g in grads):
            return ["regularizer gradient is NaN or inf"]
    rng = torch.Generator().manual_seed(seed)

    def other(i: int) -> list:
        widths = [int(w) for w in torch.randint(2, 24, (3,), generator=rng)]
        dims = [widths[0], widths[1], widths[2], 3][:2 + i % 3]
        return [torch.randn(dims[j + 1], dims[j], generator=rng).requires_grad_(True)
                for j in range(len(dims) - 1)]

    again = [k.clone().requires_grad_(True) for k in keep]
    return repeat_check(fn, "regularizer", (again,), out,
                        ((other(i),) for i in range(REPEAT_CALLS)))


KIND = Kind(name="regularizer", function="regularizer", arity=1,
            modules=frozenset({"torch", "torch.nn.functional", "math"}),
            components=COMPONENTS, default="none", probe=probe)
