"""A round as successive halving: cheap judges first, expensive training only where it pays.

Rungs, from the cheapest up (η = `[discover] eta`, the full-training count = the round's top-k):

1. reward screen: the champion scores every valid proposal (no training at all) and picks
   `eta * top_k` of them (fewer when fewer are valid); without a champion this rung is skipped and
   every valid proposal goes to the next one (one-pass is then the cheapest judge there is);
2. one-pass: one epoch on the picked share, ranked by *validation* B-WR;
3. full training: the best `top_k` of the one-pass rung, that is its best 1/η.

With η = 1 the reward model picks exactly the top-k and all of them are trained in full (the flow
before halving). The round's cost is stated in full-training equivalents: a full training of one
hypothesis on the round's seeds is 1; a one-pass evaluation trains one epoch where full training
may train up to `model.max_epochs`, so it counts 1 / max_epochs (nominal: early stopping makes
real full trainings shorter, so one-pass's true share is somewhat larger); a confirmation is full
training on `confirm.seeds` seeds, so it counts confirm.seeds / seeds; screening costs no training.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import Config

COST_METRIC = "cost_full_equivalents"


def one_pass_share(valid: int, top_k: int, eta: int) -> int:
    """How many of `valid` reward-screened proposals the one-pass rung evaluates."""
    return max(0, min(valid, top_k * eta))


def _val(ev, name: str) -> float:
    value = getattr(ev, f"val_{name}")
    return value if value is not None else (getattr(ev, name) or 0.0)  # runs from before val metrics


def promote(evaluations: list, top_k: int) -> list:
    """The best `top_k` valid evaluations of a rung by validation (B-WR, BSOTA-WR), never by test
    numbers; ties by hash, so a resumed round promotes exactly the same ones."""
    valid = [ev for ev in evaluations if ev.valid and ev.b_wr is not None]
    valid.sort(key=lambda ev: (-_val(ev, "b_wr"), -_val(ev, "bsota_wr"), ev.hypothesis.sha256))
    return valid[:max(top_k, 0)]


def reward_rung(champion, valid: list, share: int, config: Config, seed: int) -> dict:
    """The reward screen's decision (selection.json): the one place a round asks the reward model
    which `share` of the valid proposals to train, so another acquisition rule plugs in here."""
    from .reward.screen import decide

    d = config.discover
    return decide(champion, valid, share, d.explore, d.mmr_lambda, seed=seed)


@dataclass(frozen=True)
class RoundCost:
    """Trainings a round paid for, by rung, and their total in full-training equivalents."""

    one_pass: int
    full: int
    confirm: int
    full_equivalents: float

    def metrics(self) -> dict:
        return {"one_pass_trained": self.one_pass, "full_trained": self.full,
                "confirm_trained": self.confirm, COST_METRIC: self.full_equivalents}


def round_cost(config: Config, seeds: int, one_pass: int, full: int, confirm: int) -> RoundCost:
    one_pass_cost = 1.0 / max(config.model.max_epochs, 1)
    confirm_cost = config.confirm.seeds / max(seeds, 1)
    total = one_pass * one_pass_cost + full + confirm * confirm_cost
    return RoundCost(one_pass, full, confirm, round(total, 4))
