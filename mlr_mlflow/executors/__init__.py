"""Where a round's evaluations run.

`local` (the default) is the Evaluator in this process with its sandbox. `ray` splits the
evaluations into batches and runs each as a Ray task on a node of a cluster (ray_executor.py);
Ray is imported only then. Both answer `evaluate(...)` and `record_unevaluated(...)` alike.
"""
from __future__ import annotations

from typing import Callable, Protocol

from ..config import Config, with_overrides


class Executor(Protocol):
    """What a round asks of the place its evaluations run (the local Evaluator, RayExecutor)."""

    def evaluate(self, hypotheses: list, variant: str = "one-pass", seeds: int = 3, *,
                 parent_run_id: str | None = None, round_id: str | None = None) -> list:
        """One Evaluation per hypothesis, in order, each recorded as a run (nested under
        `parent_run_id`, tagged with `round_id`); each hypothesis's `origin` goes on its run."""

    def record_unevaluated(self, hypotheses: list, validations: list, seeds: int, *,
                           parent_run_id: str | None = None, round_id: str | None = None) -> list[str]:
        """Runs for hypotheses validated but not trained (screened out); their run ids."""


def make_executor(client, config: Config, progress: Callable[[str], None] = lambda _: None) -> Executor:
    """The executor that `config.executor.kind` names."""
    if config.executor.kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(client, config, progress)
    from ..evaluate.evaluator import Evaluator

    return Evaluator(client, config, progress)


def check_executor(config: Config) -> None:
    """Before a round starts: the ray executor connects (token auth) and finds a node that may
    sandbox, so a wrong address or token is a usage error with nothing written."""
    if config.executor.kind == "ray":
        from .ray_executor import check_capacity, connect_ray

        check_capacity(connect_ray(config.executor), config.executor)


def with_executor(config: Config, kind: str | None = None, address: str | None = None) -> Config:
    """The config with the command line's (or a job's) executor choice; None keeps the config's."""
    return with_overrides(config, executor={k: v for k, v in (("kind", kind), ("address", address))
                                            if v is not None})
