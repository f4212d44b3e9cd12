"""The MLflow names of CONTRACT.md and the ones this package adds. Nothing else spells them."""

KIND = "mlr.kind"
HYPOTHESIS_SHA256 = "mlr.hypothesis.sha256"
GENERATOR = "mlr.generator"
ROUND_ID = "mlr.round_id"

ROLE = "mlr.role"  # "hypothesis", "baseline" or "round"
VARIANT = "mlr.variant"
STATUS = "mlr.status"  # "evaluated", "invalid" or "error"
REASONS = "mlr.reasons"  # why it was rejected or failed, one reason per line
STAGE = "mlr.validation.stage"
PROJECT_URI = "mlr.project.uri"
PROJECT_ENTRY_POINT = "mlr.project.entry_point"
PROJECT_PARAMS = "mlr.project.params"
SANDBOX = "mlr.sandbox"  # the backend that ran the hypothesis code
BASELINE_KEY = "mlr.baseline.key"
BASELINE_COMPONENT = "mlr.baseline.component"
SYMBOLIC_GENOME = "mlr.symbolic.genome"  # the expression tree a symbolic hypothesis was rendered from
ROUND_STOP_REASON = "mlr.round.stop_reason"  # why generation ended early (budget, endpoint error...)

PARENT_RUN_ID = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"

B_WR = "b_wr"
BSOTA_WR = "bsota_wr"
VAL_B_WR = "val_b_wr"  # the same win rates on the validation split: what selection uses
VAL_BSOTA_WR = "val_bsota_wr"
B_WR_P_VALUE = "b_wr_p_value"  # paired sign-flip test of b_wr > 0.5 (stats.sign_flip_pvalue)
B_WR_Q_VALUE = "b_wr_q_value"  # a confirmation's Benjamini-Hochberg adjusted p-value in its round
CONFIRMED = "mlr.confirmed"  # "true" / "false" on the runs of a round's selected hypotheses

HYPOTHESIS_ARTIFACT = "hypothesis.py"
RESULTS_ARTIFACT = "results.json"
CONFIG_ARTIFACT = "config.json"
LEADERBOARD_ARTIFACT = "leaderboard.json"
GENERATION_ARTIFACT = "generation.json"


def dataset_metric(dataset: str, name: str) -> str:
    return f"{dataset}.{name}"
