"""The MLflow names of CONTRACT.md and the ones this package adds. Nothing else spells them."""

KIND = "mlr.kind"
HYPOTHESIS_SHA256 = "mlr.hypothesis.sha256"
GENERATOR = "mlr.generator"
ROUND_ID = "mlr.round_id"

TASKS = "mlr.tasks"  # a hypothesis run's tasks, comma-separated (the dataset names in the default suite)
TASK_PREFIX = "mlr.task."  # mlr.task.<name>: "<dataset> on <model family>"
ROLE = "mlr.role"  # "hypothesis", "baseline" or "round"
VARIANT = "mlr.variant"
STATUS = "mlr.status"  # "evaluated", "invalid", "error", "duplicate" or "rediscovery"
REASONS = "mlr.reasons"  # why it was rejected or failed, one reason per line
STAGE = "mlr.validation.stage"
PROJECT_URI = "mlr.project.uri"
PROJECT_ENTRY_POINT = "mlr.project.entry_point"
PROJECT_PARAMS = "mlr.project.params"
PROJECT_VERSION = "mlr.project.version"  # the version of mlr-mlflow whose Project the run names
SANDBOX = "mlr.sandbox"  # the backend that ran the hypothesis code
EXECUTOR_NODE = "mlr.executor.node"  # the Ray node that evaluated a hypothesis run (ray executor)
BASELINE_KEY = "mlr.baseline.key"
BASELINE_COMPONENT = "mlr.baseline.component"
SYMBOLIC_GENOME = "mlr.symbolic.genome"  # the expression tree a symbolic hypothesis was rendered from
ROUND_STOP_REASON = "mlr.round.stop_reason"  # why generation ended early (budget, endpoint error...)

FINGERPRINT = "mlr.fingerprint"  # the behavioural fingerprint (fingerprint.encode), for dedup
DUPLICATE_OF = "mlr.duplicate_of"  # a semantic duplicate's status: the run it behaves like
DUPLICATE_OF_SHA256 = "mlr.duplicate_of.sha256"  # ... and that hypothesis's normalised hash
REDISCOVERY_OF = "mlr.rediscovery_of"  # a rediscovery's status: the reference (baseline/SOTA) name

PARENTS = "mlr.parents"  # sha256s of the hypotheses a generator built this one from, comma-separated
ROUND_NUMBER = "mlr.round.number"  # 1 for the kind's first round; the step of its round metrics
ARCHIVE_CELLS = "archive.cells"  # a round's: occupied cells of the behaviour archive it drew parents from
ARCHIVE_COVERAGE = "archive.coverage"  # ... and their share of the grid (generate/archive.py)
INSPIRED_BY = "mlr.llm.inspired_by"  # passages of `--context` files in the prompt: "file#n", comma-separated
PASSAGES_ARTIFACT = "llm/passages.json"  # those passages: [{"id", "file", "text", "score"}]

PARENT_RUN_ID = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"  # the markdown description MLflow shows on a run or experiment page
EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow 3 opens an experiment on the runs table for:
MODEL_DEVELOPMENT = "custom_model_development"

B_WR = "b_wr"
BSOTA_WR = "bsota_wr"
VAL_B_WR = "val_b_wr"  # the same win rates on the validation split: what selection uses
VAL_BSOTA_WR = "val_bsota_wr"
SCREEN_SCORE = "screen_score"  # the screening statistic (evaluate.screen), higher is better
SCREEN_STATISTIC = "mlr.screen.statistic"  # which statistic screen_score is
B_WR_P_VALUE = "b_wr_p_value"  # paired sign-flip test of b_wr > 0.5 (stats.sign_flip_pvalue)
B_WR_Q_VALUE = "b_wr_q_value"  # a confirmation's Benjamini-Hochberg adjusted p-value in its round
SCREEN_PICK = "mlr.screen.pick"  # on a reward-screened round's runs: "explore", "reward", "screened-out"
CONFIRMED = "mlr.confirmed"  # "true" / "false" on the runs of a round's selected hypotheses
TRANSFERS = "mlr.transfers"  # "true" / "false": did a selected hypothesis pass on the held-out tasks
TRANSFERS_METRIC = "transfers"  # a round's count of selected hypotheses that transfer
INSTRUMENT_SOURCE = "mlr.instrument.source"  # a round's: where its suite's noise ceiling comes from
TRANSFER_TASKS = "mlr.transfer.tasks"  # a round's held-out tasks, comma-separated

HYPOTHESIS_ARTIFACT = "hypothesis.py"
RESULTS_ARTIFACT = "results.json"
CONFIG_ARTIFACT = "config.json"  # the effective configuration
ENVIRONMENT_ARTIFACT = "environment.json"  # versions, source revision, machine, trainer digest
LEADERBOARD_ARTIFACT = "leaderboard.json"
GENERATION_ARTIFACT = "generation.json"
SELECTION_ARTIFACT = "selection.json"  # a reward-screened round's picks, saved before training
HOLDOUT_PREDICTIONS_ARTIFACT = "holdout_predictions.json"  # a reward version's held-out scores


def dataset_metric(dataset: str, name: str) -> str:
    return f"{dataset}.{name}"

# `suite check`: one run per check in experiment <experiment_prefix><kind>-instrument
SUITE_CHECK_ROLE = "suite-check"  # its mlr.role
SUITE_DIGEST = "mlr.suite.digest"  # digest of the suite measured (suite_check.record.suite_digest)
SUITE_CHECK_ARTIFACT = "suite_check.json"  # every number of the check
SUITE_CHECK_REPORT = "suite_check.md"  # the readable report (also the run's description)
SUITE_CHECK_FIGURE = "suite_check.png"
FULL_NOISE_CEILING = "full_noise_ceiling"  # full-training B-WR between seed sets, non-degenerate panel
CHEAP_VS_FULL = "cheap_vs_full"  # one-pass screening statistic vs full B-WR on the other seeds


def instrument_experiment(prefix: str, kind: str) -> str:
    """The experiment holding a kind's suite checks."""
    return f"{prefix}{kind}-instrument"


def ceiling_metric(rung: str, statistic: str, group: str) -> str:
    return f"ceiling.{rung}.{statistic}.{group}"


def agreement_metric(target: str, statistic: str, group: str) -> str:
    return f"agreement.{target}.{statistic}.{group}"
