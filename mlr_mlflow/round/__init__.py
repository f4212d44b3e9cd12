"""A discovery round, one concept a module: the loop (loop.py: generate -> validate -> screen ->
evaluate -> confirm -> summarise), its proposals, halving, typed selection, confirmation, held-out
transfer, resume, leaderboard, summary and report."""
from .loop import Round
from .start import discover
from .summary import RoundSummary

__all__ = ["Round", "RoundSummary", "discover"]
