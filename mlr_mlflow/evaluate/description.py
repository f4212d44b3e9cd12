"""A hypothesis run's description (its MLflow page's markdown): what it computes, in one line, and
how it compares with the baselines, each win rate with its interval. A round adds what is known of
its suite's reliability (round_report), since a B-WR read without it is a number without its
repeatability."""
from __future__ import annotations

VARIANTS = {"one-pass": "one pass of training", "full": "full training",
            "confirm": "full training on fresh seeds and split (confirmation)", "screened": "no training"}


def _wr(value, low, high) -> str:
    if value is None:
        return "–"
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    return f"{value:.3f}{interval}"


def hypothesis_note(expression: str, sha256: str, kind: str, variant: str, *, b_wr=None,
                    b_wr_ci: tuple = (None, None), bsota_wr=None, bsota_wr_ci: tuple = (None, None),
                    val_b_wr=None, screen_score=None, reasons: list[str] | None = None,
                    instrument: str | None = None, metric: str = "accuracy", log_loss_ratio=None,
                    log_loss_ratio_ci: tuple = (None, None), ranked_by: str | None = None) -> str:
    """The markdown description of one hypothesis run."""
    lines = [f"`{expression}`", "",
             f"{kind + ' ' if kind else ''}hypothesis {sha256[:10]}, {VARIANTS.get(variant, variant)}."]
    if reasons:
        lines += ["", "Rejected:", *(f"- {r}" for r in reasons)]
    elif b_wr is not None:
        verdict = ("beats the baselines" if b_wr_ci[0] is not None and b_wr_ci[0] > 0.5 else
                   "loses to the baselines" if b_wr_ci[1] is not None and b_wr_ci[1] < 0.5 else
                   "is not distinguishable from the baselines")
        decided = " decided by the test loss alone" if metric == "loss" else ""
        lines += ["", f"Against the baselines it {verdict}: B-WR {_wr(b_wr, *b_wr_ci)} (the share of "
                  f"comparisons with a baseline it wins{decided}, 95% interval; 0.5 is a tie); against the best "
                  f"of them, BSOTA-WR {_wr(bsota_wr, *bsota_wr_ci)}."]
        if log_loss_ratio is not None:
            from .verdict import verdict

            ranked = (ranked_by or verdict(kind).statistic) == "log_loss_ratio"
            interval = (f" [{log_loss_ratio_ci[0]:.3f}, {log_loss_ratio_ci[1]:.3f}]"
                        if None not in log_loss_ratio_ci else "")
            lines.append(f"Test log-loss ratio against every reference {log_loss_ratio:+.3f}{interval} (> 0: a "
                         "lower loss)" + (": what regularizers are ranked and confirmed by, since their "
                                          "B-WR does not repeat between seed sets." if ranked else "."))
        if screen_score is not None:
            from .screen import SCREEN_STATISTIC

            lines.append(f"Screening statistic {screen_score:.3f} ({SCREEN_STATISTIC}, validation split "
                         "only): what halving, top-k selection and the reward model rank by; the test "
                         "numbers above chose nothing."
                         + (f" Validation B-WR {val_b_wr:.3f}." if val_b_wr is not None else ""))
        elif val_b_wr is not None:
            lines.append(f"Validation B-WR {val_b_wr:.3f}.")
    if instrument:
        lines += ["", instrument]
    return "\n".join(lines)


def note_of(ev, instrument: str | None = None) -> str:
    """`hypothesis_note` of an Evaluation."""
    u = ev.uncertainty or {}
    h = ev.hypothesis
    return hypothesis_note(h.expression, h.sha256, h.kind, ev.variant, b_wr=ev.b_wr if ev.valid else None,
                           b_wr_ci=(u.get("b_wr_ci_low"), u.get("b_wr_ci_high")),
                           bsota_wr=ev.bsota_wr if ev.valid else None,
                           bsota_wr_ci=(u.get("bsota_wr_ci_low"), u.get("bsota_wr_ci_high")),
                           val_b_wr=ev.val_b_wr if ev.valid else None,
                           screen_score=ev.screen_score if ev.valid else None,
                           reasons=None if ev.valid else list(ev.reasons), instrument=instrument,
                           metric=ev.metric, log_loss_ratio=ev.log_loss_ratio if ev.valid else None,
                           log_loss_ratio_ci=(u.get("log_loss_ratio_ci_low"), u.get("log_loss_ratio_ci_high")))
