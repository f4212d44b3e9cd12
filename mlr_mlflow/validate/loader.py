"""The only way hypothesis code is loaded for running: the static checks first, every time.

Probes, training jobs and the reward model's behaviour features all load through `load_checked`,
so no path runs a source that `validate` would reject statically (a source that arrives from an
HTTP client of a served reward model, or from an artifact store, included).
"""
from __future__ import annotations

from ..hypothesis import load_function
from ..kinds import get_kind
from .static import check_static


class StaticCheckError(ValueError):
    """The source fails the static checks; `reasons` says why."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def load_checked(source: str, kind_name: str):
    """`check_static`, then the restricted loader -> the hypothesis's function."""
    reasons = check_static(source, get_kind(kind_name))
    if reasons:
        raise StaticCheckError(reasons)
    return load_function(source, kind_name)
