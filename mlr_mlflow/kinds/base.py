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
        probe: checks a loaded function on synthetic inputs; returns a list of reasons (empty = passed).
            It runs inside the sandbox and imports torch/numpy lazily.
        item_assignment: whether `a[i] = v` is allowed (numpy code needs it; tensor code must not
            write into its inputs or the model's weights).
    """

    name: str
    function: str
    arity: int
    modules: frozenset[str]
    components: dict[str, str]
    default: str
    probe: Callable[[Callable], list[str]]
    item_assignment: bool = False

    def component(self, name: str) -> str:
        try:
            return self.components[name]
        except KeyError:
            known = ", ".join(sorted(self.components))
            raise KeyError(f"{self.name} has no built-in component {name!r} (known: {known})") from None
