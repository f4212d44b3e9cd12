"""Starting a round as the command line does: the config's numbers filled in, a bad task or
`--context` refused before the store is touched, a new round or the resumption of an unfinished one."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..config import Config, for_kind

if TYPE_CHECKING:
    from .summary import RoundSummary


def discover(client, config: Config, kind: str, *, n: int | None = None, top_k: int | None = None,
             seeds: int | None = None, seed: int | None = None, resume: bool = False,
             wait_s: float = 0.0,
             progress: Callable[[str], None] = lambda _: None) -> "RoundSummary | None":
    """One round of `kind` (unset numbers from the config's [discover]), or with `resume` the latest
    unfinished one (None when there is none). While another round of the kind runs anywhere, waits
    up to `wait_s` for it, then raises RoundBusy."""
    config = for_kind(config, kind)
    if resume and not anything_to_resume(client, config, kind):
        return None  # nothing to finish: answered before the suite is loaded or a round imported
    from ..evaluate.datasets import check_suite
    from .loop import Round

    check_suite(config.suite, kind)  # a bad task is a usage error before the store is touched
    if config.llm.context and config.discover.generator == "llm":
        from ..generate.passages import context_files

        context_files(config.llm.context)  # likewise a --context that is not a directory
    d = config.discover
    round_ = Round(client, config, kind, progress=progress)
    if resume:
        return round_.resume(wait_s)
    return round_.run(n if n is not None else d.n, top_k if top_k is not None else d.top_k,
                      seeds if seeds is not None else d.seeds, seed, wait_s)


def anything_to_resume(client, config: Config, kind: str) -> bool:
    """Whether the kind's experiment holds a round that did not finish (asked without the lease: a
    round that starts after this answer is new, not one to resume; the lease is taken before any
    resumption, which asks again)."""
    from .resume import unfinished_round

    exp = client.get_experiment_by_name(config.experiment_name(kind))
    if exp is None:
        return False
    if exp.lifecycle_stage != "active":
        return True  # a deleted experiment: the full path restores it and looks there
    return unfinished_round(client, exp.experiment_id) is not None
