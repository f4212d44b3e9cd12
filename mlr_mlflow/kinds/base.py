"""What every kind declares: its function, its imports, its built-in components and its probe."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Kind:
    """One component kind of CONTRACT.md.

    Attributes:
        name: "activation", "preprocessing" or "regularizer".
        function: the one public function a hypothesis defines.
        arity: its number of positional parameters.
        modules: the modules a hypothesis of this kind may import.
        components: built-in components (baselines, SOTA, the default) as hypothesis sources, so that
            they pass through exactly the same loader as generated code.
        default: the component used when another kind is under study.
        probe: probe(fn, seed) checks a loaded function on synthetic inputs; returns a list of
            reasons (empty = passed). It runs inside the sandbox and imports torch/numpy lazily.
            `seed` (from the source's hash: reproducible, and nothing the code can see) draws
            inputs whose shape the code cannot know in advance; an honest function's verdict does
            not depend on it. Every probe ends with `repeat_check`.
        item_assignment: whether `a[i] = v` is allowed (numpy code needs it; tensor code must not
            write into its inputs or the model's weights).
    """

    name: str
    function: str
    arity: int
    modules: frozenset[str]
    components: dict[str, str]
    default: str
    probe: Callable[..., list[str]]
    item_assignment: bool = False

    def component(self, name: str) -> str:
        try:
            return self.components[name]
        except KeyError:
            known = ", ".join(sorted(self.components))
            raise KeyError(f"{self.name} has no built-in component {name!r} (known: {known})") from None


# Calls on other inputs between a first call and the same call again (`repeat_check`).
REPEAT_CALLS = 12


def same_output(a, b) -> bool:
    """Bit for bit (NaN equals NaN): tensors, arrays, numbers and tuples or lists of them."""
    import numpy as np
    import torch

    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(same_output(x, y) for x, y in zip(a, b)))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        a, b = a.detach(), b.detach()
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point():
            return bool(((a == b) | (a.isnan() & b.isnan())).all())
        return bool(torch.equal(a, b))
    try:
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        return bool(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"))
    except (TypeError, ValueError):
        return False


def not_deterministic(function: str, calls: int) -> str:
    return (f"{function} is not deterministic: called again with the same input after {calls} "
            f"call(s) on other inputs, it returned a different output (does it keep state "
            f"between calls?)")


def repeat_check(fn, function: str, first_args: tuple, first_out, others) -> list[str]:
    """The same input, called again after calls on `others` (an iterable of argument tuples),
    must give the same output, bit for bit. `first_args` must be copies nobody has written."""
    n = 0
    for args in others:
        fn(*args)
        n += 1
    return [] if same_output(fn(*first_args), first_out) else [not_deterministic(function, n)]
