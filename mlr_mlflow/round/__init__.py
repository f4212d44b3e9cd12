"""A discovery round, one concept a module: the loop (loop.py: generate -> validate -> screen ->
evaluate -> confirm -> summarise), its proposals, halving, typed selection, confirmation, held-out
transfer, resume, leaderboard, summary and report."""
from __future__ import annotations

__all__ = ["Round", "RoundSummary", "discover"]


def __getattr__(name: str):
    """Imported when first used: `discover --resume` with nothing to resume answers before the
    round's machinery (and what it imports) is loaded (bench/answers.py)."""
    if name == "Round":
        from .loop import Round
        return Round
    if name == "discover":
        from .start import discover
        return discover
    if name == "RoundSummary":
        from .summary import RoundSummary
        return RoundSummary
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
