"""The component kinds of CONTRACT.md, one module each."""
from __future__ import annotations

from ..config import UsageError
from . import activation, preprocessing, regularizer
from .base import Kind

KINDS: dict[str, Kind] = {k.name: k for k in (activation.KIND, preprocessing.KIND, regularizer.KIND)}


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise UsageError(f"unknown kind {name!r}: choose one of {', '.join(KINDS)}") from None


__all__ = ["Kind", "KINDS", "get_kind"]
