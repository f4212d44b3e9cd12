"""A round's confirmation stage: is a selected hypothesis really better than the baselines?

Selection (one-pass screening, the top-k) looks at validation win rates on the suite's split and the
round's seeds. The best of many tries looks better there than it is (the winner's curse), and full
training on the same seeds and split cannot correct that. So every selected hypothesis is trained
again on seeds and a split that took no part in selecting it (`[confirm]`), against the baselines
trained on the same fresh seeds and split, and tested: a one-sided paired sign-flip test of
b_wr > 0.5 per hypothesis (`stats.sign_flip_pvalue`, computed by the evaluator as `b_wr_p_value`),
then Benjamini-Hochberg across the round's selected hypotheses at `confirm.fdr`. A hypothesis is
*confirmed* when it passes and its confirmation B-WR is above 0.5. Regularizers are tested and
confirmed on their test log-loss ratio instead (above 0; `evaluate/verdict.py` says why).

Recorded: confirmation runs (`mlr.variant=confirm`, with `b_wr_q_value`, the BH-adjusted p-value),
`mlr.confirmed=true|false` on the round's runs of every selected hypothesis, and the round's
metrics `selected` and `confirmed`. Confirmation runs are found again on resume like any stage's,
so a round killed during confirmation never confirms a hypothesis twice; the p-values and B-WRs read
back from such runs must be numbers in [0, 1], or the round is refused (`_p_value`).
"""
from __future__ import annotations

import math
from typing import Callable

from ..config import Config, ConfigError, UsageError, with_overrides
from ..evaluate.verdict import value, verdict
from ..stats import benjamini_hochberg
from ..tracking import log, names
from .selection import Confirmation

VARIANT = "confirm"


def confirmation_config(config: Config, seeds: int) -> Config:
    """The config of the confirmation runs: fresh seeds and a fresh split, checked to be disjoint
    from what the round selected on (suite.first_seed .. + seeds, suite.split_seed)."""
    c, s = config.confirm, config.suite
    used = set(range(s.first_seed, s.first_seed + seeds))
    fresh = set(range(c.first_seed, c.first_seed + c.seeds))
    if used & fresh:
        raise ConfigError(f"[confirm] seeds {c.first_seed}..{c.first_seed + c.seeds - 1} overlap the "
                         f"round's seeds {s.first_seed}..{s.first_seed + seeds - 1}: set "
                         "confirm.first_seed beyond them")
    if c.split_seed == s.split_seed:
        raise ConfigError(f"[confirm] split_seed {c.split_seed} is the suite's own split: choose another")
    return with_overrides(config, suite={"first_seed": c.first_seed, "split_seed": c.split_seed})


def confirm(client, config: Config, one_pass: list, full: list, seeds: int, round_run_id: str,
            evaluate_once: Callable, progress: Callable[[str], None] = lambda _: None,
            step: int = 0) -> Confirmation:
    """Confirm the round's selected hypotheses (its valid full evaluations).

    `evaluate_once(config, hypotheses, variant, seeds)` evaluates, under `config` (here the
    confirmation's: fresh seeds and split), what the round has not evaluated yet in that variant
    and returns one Evaluation per hypothesis, in order.
    """
    selected = [ev for ev in full if ev.valid]
    shas = tuple(ev.hypothesis.sha256 for ev in selected)
    c = config.confirm
    if not c.enabled or not selected:
        log(client, round_run_id, metrics={names.SELECTED: len(selected), names.CONFIRMED_METRIC: 0},
            tags={names.CONFIRM: "on" if c.enabled else "off"}, step=step)
        return Confirmation(selected=shas)
    fresh = confirmation_config(config, seeds)
    progress(f"confirming {len(selected)} selected hypothesis(es) on {c.seeds} fresh seed(s) "
             f"({c.first_seed}..) and a fresh split (split seed {c.split_seed})")
    evaluations = evaluate_once(fresh, [ev.hypothesis for ev in selected], VARIANT, c.seeds)
    by_sha, q_values, passing = verdicts(evaluations, c.fdr)
    result = Confirmation(selected=shas, evaluations=by_sha, q_values=q_values,
                          confirmed=frozenset(passing))
    _record(client, result, one_pass + full, round_run_id, c, step)
    progress(f"{len(result.confirmed)} of {len(selected)} selected hypothesis(es) confirmed "
             f"(Benjamini-Hochberg at {c.fdr:g})")
    return result


def verdicts(evaluations: list, fdr: float) -> tuple[dict, dict[str, float], set[str]]:
    """(sha256 -> evaluation, sha256 -> BH-adjusted p-value, the sha256s that pass): passing is
    surviving Benjamini-Hochberg at `fdr` with the kind's verdict statistic above its null
    (evaluate.verdict: B-WR above 0.5; for regularizers the test log-loss ratio above 0),
    confirmation and transfer alike."""
    p_values = [_p_value(ev) if ev.valid else 1.0 for ev in evaluations]
    rejected, adjusted = benjamini_hochberg(p_values, fdr)
    by_sha, q_values, passing = {}, {}, set()
    for ev, passed, q in zip(evaluations, rejected, adjusted):
        sha = ev.hypothesis.sha256
        by_sha[sha], q_values[sha] = ev, float(q)
        score = value(ev)
        if passed and ev.valid and score is not None and score > verdict(ev.hypothesis.kind).null:
            passing.add(sha)
    return by_sha, q_values, passing


def _p_value(ev) -> float:
    """A confirmation's p-value; one read back from a run kept from before a kill is untrusted: a
    value that no test gives (not a number in [0, 1], a B-WR outside [0, 1]) refuses the round."""
    key = verdict(ev.hypothesis.kind).p_value
    p = ev.uncertainty.get(key, 1.0)
    if isinstance(p, float) and math.isnan(p):  # no test was possible: nothing is confirmed
        p = 1.0
    numbers = isinstance(p, (int, float)) and not isinstance(p, bool) and \
        (ev.b_wr is None or isinstance(ev.b_wr, (int, float)))
    if not numbers or not 0.0 <= p <= 1.0 or (ev.b_wr is not None and not math.isnan(ev.b_wr)
                                              and not 0.0 <= ev.b_wr <= 1.0):
        raise UsageError(f"confirmation run {ev.run_id} records {key} = {p!r}, "
                          f"{names.B_WR} = {ev.b_wr!r}: not what a test gives; refusing to confirm on it")
    return float(p)


def _record(client, result: Confirmation, earlier: list, round_run_id: str, c, step: int) -> None:
    """Tags and metrics only: idempotent, so a resumed round writes the same values again."""
    for sha, ev in result.evaluations.items():
        verdict = str(sha in result.confirmed).lower()
        if ev.run_id:
            log(client, ev.run_id, metrics={names.B_WR_Q_VALUE: result.q_values[sha]},
                tags={names.CONFIRMED: verdict})
    for ev in earlier:
        sha = ev.hypothesis.sha256
        if ev.run_id and sha in result.evaluations:
            log(client, ev.run_id, tags={names.CONFIRMED: str(sha in result.confirmed).lower()})
    log(client, round_run_id, metrics={names.SELECTED: len(result.selected),
                                       names.CONFIRMED_METRIC: len(result.confirmed)},
        tags={names.CONFIRM: "on", names.CONFIRM_FDR: f"{c.fdr:g}",
              names.CONFIRM_SEEDS: f"{c.first_seed}..{c.first_seed + c.seeds - 1}",
              names.CONFIRM_SPLIT_SEED: str(c.split_seed)}, step=step)
