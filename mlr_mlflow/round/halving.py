"""A round as successive halving: cheap judges first, expensive training only where it pays.

Rungs, from the cheapest up (η = `[discover] eta`, the full-training count = the round's top-k):

1. reward screen: the champion scores every valid proposal (no training at all) and picks
   `eta * top_k` of them (fewer when fewer are valid); without a champion this rung is skipped and
   every valid proposal goes to the next one (one-pass is then the cheapest judge there is);
2. one-pass: one epoch on the picked share, ranked by `screen_score` (a validation statistic,
   evaluate/screen.py);
3. full training: the best `top_k` of the one-pass rung, that is its best 1/η.

With `[discover] waves` > 1 the one-pass rung runs in waves: the champion picks the first wave,
and before each later one its ensemble is refitted (in memory) on the validation targets of what
the round has evaluated so far and picks the next wave among the rest (`next_wave`): what a round
learns about its own proposals steers the rest of its budget. Every decision is saved in
selection.json before the wave it picks is trained, so a resumed round keeps them.

With η = 1 the reward model picks exactly the top-k and all of them are trained in full (the flow
before halving). The round's cost is stated in full-training equivalents: a full training of one
hypothesis on the round's seeds is 1; a one-pass evaluation trains one epoch where full training
may train up to `model.max_epochs`, so it counts 1 / max_epochs (nominal: early stopping makes
real full trainings shorter, so one-pass's true share is somewhat larger); a confirmation is full
training on `confirm.seeds` seeds, so it counts confirm.seeds / seeds; screening costs no training.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..tracking import names
from .selection import Selection

COST_METRIC = names.COST_FULL_EQUIVALENTS


def one_pass_share(valid: int, top_k: int, eta: int) -> int:
    """How many of `valid` reward-screened proposals the one-pass rung evaluates."""
    return max(0, min(valid, top_k * eta))


def _val(ev, name: str) -> float:
    value = getattr(ev, f"val_{name}")
    return value if value is not None else (getattr(ev, name) or 0.0)  # runs from before val metrics


def _screen(ev) -> float:
    """The rung's ranking number: `screen_score` (evaluate.screen); runs recorded before it existed
    rank by their validation B-WR."""
    return ev.screen_score if ev.screen_score is not None else _val(ev, "b_wr")


def promote(evaluations: list, top_k: int) -> list:
    """The best `top_k` valid evaluations of a rung by the screening statistic (then validation
    B-WR, BSOTA-WR), never by test numbers; ties by hash, so a resumed round promotes exactly the
    same ones."""
    valid = [ev for ev in evaluations if ev.valid and ev.b_wr is not None]
    valid.sort(key=lambda ev: (-_screen(ev), -_val(ev, "b_wr"), -_val(ev, "bsota_wr"), ev.hypothesis.sha256))
    return valid[:max(top_k, 0)]


def reward_rung(champion, valid: list, sizes: list[int], config: Config, seed: int) -> Selection:
    """The reward screen's first decision (selection.json): the one place a round asks the reward
    model which of the valid proposals to train, `sizes[0]` of them in the first of the waves
    `sizes`, so another acquisition rule plugs in here."""
    from ..reward.screen import decide

    d = config.discover
    return Selection.first(decide(champion, valid, sizes[0], d.explore, d.mmr_lambda, seed=seed), sizes)


def wave_sizes(share: int, waves: int) -> list[int]:
    """The one-pass rung's `share` in `waves` near-equal waves (fewer when the share is smaller)."""
    waves = max(1, min(waves, share))
    bounds = [round(i * share / waves) for i in range(waves + 1)]
    return [b - a for a, b in zip(bounds, bounds[1:])]


def learned_target(ev) -> float | None:
    """What a wave teaches the reward model about an evaluation: its validation target."""
    from ..reward.ranker import selection_target
    from ..tracking import names

    if not ev.valid:
        return None
    return selection_target({names.VAL_B_WR: ev.val_b_wr, names.VAL_BSOTA_WR: ev.val_bsota_wr,
                             names.SCREEN_SCORE: ev.screen_score})


def next_wave(champion, selection: Selection, valid: list, learn: list, config: Config,
              seed: int) -> Selection:
    """The selection with one more wave: the champion refitted on `learn` (evaluations it has not
    learned from yet, by their validation targets), then the next wave's size of picks among the
    `valid` proposals not picked yet. The new selection adds to "waves", "picks", "explored",
    "rescores" (the latest score of every proposal still open) and "refits" (how many evaluations
    each refit learned, and the registered version it started from: a resumed round may refit a
    newer champion)."""
    from ..reward.screen import rescore

    taught = [(ev.hypothesis, t) for ev in learn if (t := learned_target(ev)) is not None]
    picked = set(selection.picks)
    pending = [h for h in valid if h.sha256 not in picked]
    d = config.discover
    decision = rescore(champion, [h for h, _ in taught], [t for _, t in taught], pending,
                       selection.next_size, d.explore, d.mmr_lambda, seed=seed + len(selection.waves))
    return selection.with_wave(decision, learned=len(taught))


@dataclass(frozen=True)
class RoundCost:
    """Trainings a round paid for, by rung, and their total in full-training equivalents."""

    one_pass: int
    full: int
    confirm: int
    full_equivalents: float

    def metrics(self) -> dict:
        return {names.ONE_PASS_TRAINED: self.one_pass, names.FULL_TRAINED: self.full,
                names.CONFIRM_TRAINED: self.confirm, COST_METRIC: self.full_equivalents}


def round_cost(config: Config, seeds: int, one_pass: int, full: int, confirm: int) -> RoundCost:
    one_pass_cost = 1.0 / max(config.model.max_epochs, 1)
    confirm_cost = config.confirm.seeds / max(seeds, 1)
    total = one_pass * one_pass_cost + full + confirm * confirm_cost
    return RoundCost(one_pass, full, confirm, round(total, 4))
