"""The end of a round's funnel: do the selected hypotheses transfer to tasks selection never saw?

Confirmation (confirm.py) re-tests the selected on fresh seeds and a fresh split of the *same*
tasks. A hypothesis can pass that and still owe its win to those tasks. So each selected hypothesis
is also trained in full on held-out tasks (`[confirm] holdout_tasks`: none of them in the round's
suite), on the confirmation's fresh seeds and split, against the baselines trained there, and tested
the same way (paired sign-flip test of b_wr > 0.5, Benjamini-Hochberg across the round's selected at
`confirm.fdr`). With the default suite the held-out tasks are spirals (MLP) and shapes (CNN).
A hypothesis *transfers* when it passes and its held-out B-WR is above 0.5.

`confirmed` and `transfers` are separate verdicts: a round reports both, and a hypothesis may have
either, both or neither. Recorded: runs tagged `mlr.variant=transfer` (with `b_wr_q_value`), the tag
`mlr.transfers=true|false` on the round's runs of every selected hypothesis, and the round's metric
`transfers`. Like confirmation runs, transfer runs are found again on resume.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..config import Config, ConfigError, with_overrides
from .confirm import verdicts
from ..tracking import log, names

VARIANT = "transfer"


@dataclass(frozen=True)
class Transfer:
    """The selected hypotheses (sha256s), their held-out evaluations and verdicts."""

    selected: tuple[str, ...] = ()
    evaluations: dict = field(default_factory=dict)  # sha256 -> the transfer Evaluation
    q_values: dict[str, float] = field(default_factory=dict)
    transfers: frozenset[str] = frozenset()


def transfer_config(config: Config) -> Config | None:
    """The held-out tasks on the confirmation's fresh seeds and split (None when there are none),
    refused when a held-out task is also one of the suite's (it would not be held out)."""
    c, s = config.confirm, config.suite
    held = c.held_out(s)
    if not held:
        return None
    suite_sources = {t.dataset for t in s.task_list()}
    overlap = [t.name for t in held if t.dataset in suite_sources]
    if overlap:
        raise ConfigError(f"[confirm] holdout_tasks {', '.join(overlap)}: their datasets are in the "
                          "round's suite, so selection saw them: hold out other datasets")
    return with_overrides(config, suite={"tasks": tuple(held), "first_seed": c.first_seed,
                                         "split_seed": c.split_seed})


def transfer(client, config: Config, selected: list, round_run_id: str, evaluate_once: Callable,
             progress: Callable[[str], None] = lambda _: None, step: int = 0) -> Transfer:
    """Test the round's selected hypotheses (`selected`: their valid full evaluations) on the
    held-out tasks. `evaluate_once(config, hypotheses, variant, seeds)` as in confirm.confirm, here
    under the held-out tasks' config."""
    shas = tuple(ev.hypothesis.sha256 for ev in selected)
    held_out = transfer_config(config) if config.confirm.enabled else None
    if held_out is None or not selected:
        return Transfer(selected=shas)
    c = config.confirm
    tasks = ", ".join(t.name for t in held_out.suite.tasks)
    progress(f"testing {len(selected)} selected hypothesis(es) on held-out task(s) {tasks} "
             f"({c.seeds} fresh seed(s), split seed {c.split_seed})")
    evaluations = evaluate_once(held_out, [ev.hypothesis for ev in selected], VARIANT, c.seeds)
    by_sha, q_values, passing = verdicts(evaluations, c.fdr)
    result = Transfer(selected=shas, evaluations=by_sha, q_values=q_values, transfers=frozenset(passing))
    _record(client, result, selected, round_run_id, tasks, step)
    progress(f"{len(result.transfers)} of {len(selected)} selected hypothesis(es) transfer to the "
             f"held-out task(s) (Benjamini-Hochberg at {c.fdr:g})")
    return result


def _record(client, result: Transfer, selected: list, round_run_id: str, tasks: str, step: int) -> None:
    """Tags and metrics only: idempotent, so a resumed round writes the same values again."""
    for sha, ev in result.evaluations.items():
        if ev.run_id:
            log(client, ev.run_id, metrics={names.B_WR_Q_VALUE: result.q_values[sha]},
                tags={names.TRANSFERS: str(sha in result.transfers).lower()})
    for ev in selected:
        if ev.run_id:
            log(client, ev.run_id, tags={names.TRANSFERS: str(ev.hypothesis.sha256 in result.transfers).lower()})
    log(client, round_run_id, metrics={names.TRANSFERS_METRIC: len(result.transfers)},
        tags={names.TRANSFER_TASKS: tasks}, step=step)
