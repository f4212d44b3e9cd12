"""The outcome of evaluating one hypothesis, and what its MLflow run records of it."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..hypothesis import Hypothesis
from ..tracking import RunEnd, end_tags, log_json, names
from .description import note_of
from .screen import SCREEN_STATISTIC

UNCERTAINTY = ("b_wr_ci_low", "b_wr_ci_high", "bsota_wr_ci_low", "bsota_wr_ci_high", "b_wr_p_value",
               "log_loss_ratio_ci_low", "log_loss_ratio_ci_high", "log_loss_ratio_p_value")


def run_name(sha256: str, variant: str) -> str:
    """`939a2f30 one-pass`: a hypothesis's runs differ by variant, and sort by hypothesis."""
    return f"{sha256[:8]} {variant}"


@dataclass
class Evaluation:
    """The outcome for one hypothesis; `to_dict` gives CONTRACT.md's JSON keys."""

    hypothesis: Hypothesis
    run_id: str
    variant: str
    valid: bool = True
    reasons: list[str] = field(default_factory=list)
    stage: str | None = None
    b_wr: float | None = None
    bsota_wr: float | None = None
    val_b_wr: float | None = None  # validation split: what selection uses
    val_bsota_wr: float | None = None
    screen_score: float | None = None  # the screening statistic (screen.py): what selection ranks by
    metric: str = "accuracy"  # what decided its win rates ([compare] metric)
    log_loss_ratio: float | None = None  # test, against every reference: what regularizers rank by
    uncertainty: dict[str, float] = field(default_factory=dict)  # UNCERTAINTY -> value
    datasets: dict[str, dict] = field(default_factory=dict)
    per_seed: dict = field(default_factory=dict, repr=False)
    artifact_uri: str = field(default="", repr=False)  # where the run's artifacts go, when known

    @classmethod
    def from_run(cls, run, hypothesis: Hypothesis) -> "Evaluation":
        """The outcome recorded by a finished run (a resumed round keeps it rather than redo it)."""
        tags, metrics = run.data.tags, run.data.metrics
        ev = cls(hypothesis=hypothesis, run_id=run.info.run_id, variant=tags.get(names.VARIANT, ""),
                 b_wr=metrics.get(names.B_WR), bsota_wr=metrics.get(names.BSOTA_WR),
                 val_b_wr=metrics.get(names.VAL_B_WR), val_bsota_wr=metrics.get(names.VAL_BSOTA_WR),
                 screen_score=metrics.get(names.SCREEN_SCORE),
                 metric=tags.get(names.WIN_METRIC, "accuracy"), log_loss_ratio=metrics.get(names.LOG_LOSS_RATIO),
                 uncertainty={k: metrics[k] for k in UNCERTAINTY if k in metrics})
        if tags.get(names.STATUS) == "invalid":
            ev.reject(tags.get(names.REASONS, "").splitlines(), tags.get(names.STAGE, "dynamic"))
        return ev

    def reject(self, reasons: list[str], stage: str) -> None:
        self.valid, self.reasons, self.stage = False, list(reasons), stage

    def to_dict(self) -> dict:
        return {"valid": self.valid, "reasons": self.reasons, "stage": self.stage,
                "run_id": self.run_id, "b_wr": self.b_wr, "bsota_wr": self.bsota_wr,
                "val_b_wr": self.val_b_wr, "val_bsota_wr": self.val_bsota_wr,
                "screen_score": self.screen_score, "win_metric": self.metric,
                "log_loss_ratio": self.log_loss_ratio,
                **{k: self.uncertainty.get(k) for k in UNCERTAINTY},
                "variant": self.variant, "datasets": self.datasets,
                "sha256": self.hypothesis.sha256, "expression": self.hypothesis.expression,
                "kind": self.hypothesis.kind}

    def write_results(self, client) -> None:
        """results.json (per dataset and seed), written before the run ends, so a FINISHED run
        always has it."""
        if self.valid:
            log_json(client, self.run_id,
                     {ds: {str(s): r for s, r in per_seed.items()} for ds, per_seed in self.per_seed.items()},
                     names.RESULTS_ARTIFACT, self.artifact_uri)

    def ending(self) -> RunEnd:
        """Metrics and status tags of an evaluated run, or the reasons of a rejected one."""
        if not self.valid:
            return RunEnd(self.run_id, failed=True, tags=end_tags("invalid", self.reasons, {
                names.STAGE: self.stage, names.NOTE: note_of(self)}))
        metrics = {names.B_WR: self.b_wr, names.BSOTA_WR: self.bsota_wr, names.VAL_B_WR: self.val_b_wr,
                   names.VAL_BSOTA_WR: self.val_bsota_wr, names.SCREEN_SCORE: self.screen_score,
                   names.LOG_LOSS_RATIO: self.log_loss_ratio,
                   **self.uncertainty}
        for ds, m in self.datasets.items():
            for key in ("test_acc", "test_loss", "b_wr", "bsota_wr", "val_b_wr"):
                metrics[names.dataset_metric(ds, key)] = m[key]
        return RunEnd(self.run_id, metrics, {names.STATUS: "evaluated", names.NOTE: note_of(self),
                                             names.SCREEN_STATISTIC: SCREEN_STATISTIC,
                                             names.WIN_METRIC: self.metric})
