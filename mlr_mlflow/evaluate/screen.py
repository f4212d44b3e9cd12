"""The screening statistic: what the cheap rung ranks hypotheses by (`screen_score`, higher is
better), chosen by measurement (`mlr-mlflow suite check`, docs/benchmarks.md "The instrument").

Every evaluated hypothesis run logs it as the metric `screen_score` and names its definition in
the tag `mlr.screen.statistic`; halving promotes by it, top-k selects by it, and the reward model
learns it as its target. It is computed on the validation split only, so the test numbers a round
reports (B-WR, BSOTA-WR) take no part in choosing what they are reported for.
"""
from __future__ import annotations

from .winrate import Results, win_rate

# Measured on the default suite with the activation panel (45 members, seeds 0-2 against 3-5): as a
# one-pass statistic against full-training B-WR on the other seeds, val_bsota_wr agreed best among
# the non-degenerate members (Spearman 0.70; val_b_wr 0.67, the validation-loss win rate 0.69, a
# clipped log loss ratio 0.64) and among the ReLU-like ones (0.69; 0.65, 0.58, 0.55).
# Under [compare] metric = "loss" (evaluate/winrate.py) the screen follows the same rule on the
# validation split.
# The one-pass rung it is computed on trains at [model] one_pass_lr (activations: 0.02, chosen with
# bench/screen_rungs.py; config.ModelConfig.for_kind).
SCREEN_STATISTIC = "val_bsota_wr"
DEFINITIONS = {
    "val_bsota_wr": "validation win rate against the baselines and the SOTA set together, per task and "
                    "seed, by the win rule (accuracy: more validation examples right wins, the "
                    "same count: the lower loss wins; loss: the lower loss wins; within "
                    "compare.loss_tol a tie); in [0, 1]",
}


def screen_score(h: Results, baselines: dict[str, Results], sota: dict[str, Results],
                 loss_tol: float, metric: str = "accuracy") -> float:
    """`h`'s screening statistic against the references, on the seeds of `h`."""
    return win_rate(h, {**baselines, **sota}, loss_tol, split="val", metric=metric)
