"""The MLflow names of CONTRACT.md and the ones this package adds. Nothing else spells them."""

KIND = "mlr.kind"
HYPOTHESIS_SHA256 = "mlr.hypothesis.sha256"
EXPRESSION = "mlr.hypothesis.expression"  # what it computes, one readable line (hypothesis.expression)
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
LLM_REPAIRED = "mlr.llm.repaired"  # what generate/repair.py changed in an LLM's code before validation
RERUN = "mlr.rerun"  # on a run a kill interrupted: the run that evaluated its hypothesis again
RERUN_OF = "mlr.rerun_of"  # ... and on that run: the interrupted run(s), comma-separated
GENERATION_SECONDS = "generation_s"  # a round's wall time generating and judging its proposals
ONE_PASS_SECONDS = "one_pass_s"  # ... and training them one-pass (one-pass screened rounds)
FULL_SECONDS = "full_s"  # ... training the chosen ones in full
CONFIRM_SECONDS = "confirm_s"  # ... confirming on fresh seeds and split
TRANSFER_SECONDS = "transfer_s"  # ... the transfer test on the held-out tasks
LLM_ARM = "mlr.llm.arm"  # ... and its portfolio arm, "<model label>.<prompt style>" ([[llm.models]])
LLM_ARM_METRIC_PREFIX = "llm.arm."  # round metrics llm.arm.<arm>.proposals|accepted|cost_usd|share
ROUND_NUMBER = "mlr.round.number"  # 1 for the kind's first round; the step of its round metrics
ROUND_HEARTBEAT = "mlr.round.heartbeat"  # a running round's "<time>|<host>|<pid>|<lease token>"
ROUND_OWNER = "mlr.round.owner"  # the lease's owner string (host, boot id, pid namespace, pid, start)
ROUND_RESUMED = "mlr.round.resumed"  # when the round was last resumed (epoch seconds)
SCREEN = "mlr.screen"  # a round's screen: "one-pass" or "reward", recorded before training
SCREEN_MODEL_RUN_ID = "mlr.screen.model_run_id"  # the reward model run that screened a round
SCREEN_WAVE = "mlr.screen.wave"  # on a reward-screened run: the wave (0, 1, ...) that picked it

# what a generator adds to its hypotheses' runs (resume keeps every tag under these prefixes)
LLM_PREFIX = "mlr.llm."
LLM_MODEL = "mlr.llm.model"
LLM_PROMPT_STYLE = "mlr.llm.prompt_style"
LLM_PROMPT_ARTIFACT = "llm/prompt.txt"
LLM_REPLY_ARTIFACT = "llm/reply.txt"
SYMBOLIC_PREFIX = "mlr.symbolic."
SYMBOLIC_OPERATOR = "mlr.symbolic.operator"  # how a symbolic hypothesis was bred (mutation, crossover...)

# confirmation, on a round run
CONFIRM = "mlr.confirm"  # "on" / "off"
CONFIRM_FDR = "mlr.confirm.fdr"
CONFIRM_SEEDS = "mlr.confirm.seeds"  # "<first>..<last>"
CONFIRM_SPLIT_SEED = "mlr.confirm.split_seed"

# audits
AUDIT_OF = "mlr.audit.of"  # on an audit and its re-execution: the audited run
AUDIT_ENV = "mlr.audit.env"  # "local" or "docker"
AUDIT_VERDICT = "mlr.audit.verdict"  # on an audit and on the audited run
AUDIT_RERUN = "mlr.audit.rerun"  # on an audit: its re-execution run
AUDITED_BY = "mlr.audited_by"  # on the audited run: its latest audit
AUDIT_MAX_ABS_DIFF = "max_abs_diff"  # an audit's metrics
AUDIT_REPRODUCED = "reproduced"
AUDIT_DIFFERENCES = "differences"
AUDIT_COMPARED = "compared"
AUDIT_ARTIFACT = "audit.json"
AUDIT_REPORT = "audit.md"

REWARD_MODEL_PREFIX = "mlr-reward-"  # the registered model mlr-reward-<kind>

# the reward model: tags of its training run and of its registered versions
REWARD_ALGORITHM = "mlr.reward.algorithm"
REWARD_ENCODER = "mlr.reward.encoder"
REWARD_HOLDOUT_ROUNDS = "mlr.reward.holdout_rounds"  # JSON list of the round ids held out
REWARD_TARGET = "mlr.reward.target"
REWARD_HOLDOUT_SPEARMAN = "mlr.reward.holdout_spearman"  # a version's
HOLDOUT_PREFIX = "holdout."  # a training run's metrics on held-out rounds: holdout.<statistic>,
HOLDOUT_TEST_PREFIX = "holdout.test_"  # ... and against the test B-WR (reported only)
HOLDOUT_SPEARMAN = "holdout.spearman"
CHAMPION_SINCE = "mlr.champion.since"  # a version's: when it became champion (ISO 8601 UTC; epoch ms before)
PROMOTION = "mlr.promotion"  # a version's: the promotion verdict; promotion_tag(...) its comparisons

# scheduled jobs (experiment mlr-jobs)
JOB_ID = "mlr.job.id"
JOB_RUN = "mlr.job.run"  # what the job runs
JOB_ERROR = "mlr.job.error"
JOB_RESULT_ARTIFACT = "result.json"
JOB_ERROR_ARTIFACT = "error.json"

LEASE_PREFIX = "mlr.lease."  # mlr.lease.<name>: a lease's experiment tag (tracking.lease)
MLR_PREFIX = "mlr."  # every tag this package writes
MLFLOW_PREFIX = "mlflow."  # MLflow's own tags

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
WIN_METRIC = "mlr.win.metric"  # what decided its win rates: "accuracy" or "loss" ([compare] metric)
LOG_LOSS_RATIO = "log_loss_ratio"  # test, against every reference (winrate.log_ratio_units)
LOG_LOSS_RATIO_P_VALUE = "log_loss_ratio_p_value"  # sign-flip test of log_loss_ratio > 0
B_WR_P_VALUE = "b_wr_p_value"  # paired sign-flip test of b_wr > 0.5 (stats.sign_flip_pvalue)
B_WR_Q_VALUE = "b_wr_q_value"  # a confirmation's Benjamini-Hochberg adjusted p-value in its round
SCREEN_PICK = "mlr.screen.pick"  # on a reward-screened round's runs: "explore", "reward", "screened-out"
CONFIRMED = "mlr.confirmed"  # "true" / "false" on the runs of a round's selected hypotheses
TRANSFERS = "mlr.transfers"  # "true" / "false": did a selected hypothesis pass on the held-out tasks
TRANSFERS_METRIC = "transfers"  # a round's count of selected hypotheses that transfer
INSTRUMENT_SOURCE = "mlr.instrument.source"  # a round's: where its suite's noise ceiling comes from
TRANSFER_TASKS = "mlr.transfer.tasks"  # a round's held-out tasks, comma-separated

# a round's metrics (step: the round number)
GENERATED = "generated"
DUPLICATES = "duplicates"
SEMANTIC_DUPLICATES = "semantic_duplicates"
REDISCOVERIES = "rediscoveries"
GENERATION_FAILURES = "generation_failures"
PROPOSALS = "proposals"  # every proposal: accepted, duplicate or failed
LLM_PROMPT_TOKENS = "llm.prompt_tokens"  # also on each llm hypothesis run: its share
LLM_COMPLETION_TOKENS = "llm.completion_tokens"
LLM_TOTAL_TOKENS = "llm.total_tokens"
VALID = "valid"
EVALUATED = "evaluated"
FULL_EVALUATED = "full_evaluated"
VALIDATOR_PASS_RATE = "validator_pass_rate"
BEST_B_WR = "best_b_wr"
SELECTED = "selected"  # confirmation: hypotheses selected
CONFIRMED_METRIC = "confirmed"  # ... and confirmed
EXPLORED = "explored"  # reward screen: picks made to explore
SCREENED_OUT = "screened_out"  # reward screen: hypotheses not trained
SCREEN_WAVES = "screen_waves"  # reward screen: waves of picks
ONE_PASS_TRAINED = "one_pass_trained"  # hypotheses trained at each rung ...
FULL_TRAINED = "full_trained"
CONFIRM_TRAINED = "confirm_trained"
COST_FULL_EQUIVALENTS = "cost_full_equivalents"  # ... and the round's cost in full trainings
DISCOVERY_BEST_B_WR = "discovery.best_b_wr"  # best B-WR of all the kind's rounds so far
DISCOVERY_EVALUATIONS = "discovery.evaluations"  # evaluations spent in all the kind's rounds so far
LLM_COST_USD = "llm.cost_usd"  # what an llm round's calls cost
INSTRUMENT_PREFIX = "instrument."  # instrument.<full_noise_ceiling|cheap_vs_full|relu_like_ceiling|verdict_...>
REWARD_SCORE = "reward.score"  # on a reward-screened hypothesis run: the score that picked it

HYPOTHESIS_ARTIFACT = "hypothesis.py"
RESULTS_ARTIFACT = "results.json"
CONFIG_ARTIFACT = "config.json"  # the effective configuration
ENVIRONMENT_ARTIFACT = "environment.json"  # versions, source revision, machine, trainer digest
LEADERBOARD_ARTIFACT = "leaderboard.json"
GENERATION_ARTIFACT = "generation.json"
SELECTION_ARTIFACT = "selection.json"  # a reward-screened round's picks, saved before training
HOLDOUT_PREDICTIONS_ARTIFACT = "holdout_predictions.json"  # a reward version's held-out scores
B_WR_FIGURE = "figures/b_wr_distribution.png"  # a round's
DISCOVERY_FIGURE = "figures/discovery_curve.png"  # a round's: the kind's discovery curve so far


def dataset_metric(dataset: str, name: str) -> str:
    return f"{dataset}.{name}"


def promotion_tag(challenger, champion) -> str:
    """A challenger version's tag holding its comparison with the champion (…`.sample` its sample)."""
    return f"{PROMOTION}.v{challenger}_vs_v{champion}"


def lease_tag(name: str) -> str:
    return f"{LEASE_PREFIX}{name}"


# `suite check`: one run per check in experiment <experiment_prefix><kind>-instrument
SUITE_CHECK_ROLE = "suite-check"  # its mlr.role
SUITE_DIGEST = "mlr.suite.digest"  # digest of the suite measured (suite_check.record.suite_digest)
SUITE_CHECK_ARTIFACT = "suite_check.json"  # every number of the check
SUITE_CHECK_REPORT = "suite_check.md"  # the readable report (also the run's description)
SUITE_CHECK_FIGURE = "suite_check.png"
# every model's per-task, per-seed results, so that a statistic added later can be measured on a
# recorded check without training again (`suite check --from RUN_ID`)
SUITE_CHECK_RESULTS = "suite_check_results.json"
FULL_NOISE_CEILING = "full_noise_ceiling"  # full-training B-WR between seed sets, non-degenerate panel
VERDICT_NOISE_CEILING = "verdict_noise_ceiling"  # the same for the kind's verdict statistic (evaluate/verdict.py)
CHEAP_VS_VERDICT = "cheap_vs_verdict"  # the screen vs the verdict statistic at full training, other seeds
CHEAP_VS_FULL = "cheap_vs_full"  # one-pass screening statistic vs full B-WR on the other seeds


def instrument_experiment(prefix: str, kind: str) -> str:
    """The experiment holding a kind's suite checks."""
    return f"{prefix}{kind}-instrument"


def ceiling_metric(rung: str, statistic: str, group: str) -> str:
    return f"ceiling.{rung}.{statistic}.{group}"


def agreement_metric(target: str, statistic: str, group: str) -> str:
    return f"agreement.{target}.{statistic}.{group}"

# Prompts in MLflow's Prompt Registry (generate/templates.py): the shipped templates are registered
# on first use as mlr-<kind>-<style>, with PROMPT_ALIAS naming the version rounds use.
PROMPT_ALIAS = "production"
PROMPT_STYLE_TAG = "mlr.prompt.style"  # on a registered prompt: which examples fill {{examples}}
PROMPT_NAME = "mlr.prompt.name"  # on a hypothesis run: the prompt it was generated from ...
PROMPT_VERSION = "mlr.prompt.version"  # ... and its version ("builtin" when no registry was at hand)
LLM_GRAMMAR = "mlr.llm.grammar"  # on a hypothesis run: the constrained decoding used (gbnf, json_schema, off)


def prompt_name(kind: str, style: str) -> str:
    """The registered name of a shipped prompt template."""
    return f"mlr-{kind}-{style}"

# Reviews (issue 30): tags a reviewer sets on a hypothesis's runs, in /mlr/review or the MLflow UI
REVIEW_VERDICT = "mlr.review.verdict"  # "approve" or "reject"
REVIEW_REASON = "mlr.review.reason"  # a rejection's reason: one of REVIEW_REASONS
REVIEW_NOTE = "mlr.review.note"  # the reviewer's free text
REVIEW_BY = "mlr.review.by"  # who reviewed (the logged-in user, or "anonymous")
REVIEW_AT = "mlr.review.at"  # when, in seconds since the epoch
REVIEW_VERDICTS = ("approve", "reject")
REVIEW_REASONS = ("shortcut", "duplicate", "not-novel", "invalid", "other")
REFERENCES = "mlr.references"  # an experiment's added references: JSON [{"name", "run_id", "sha256"}]
REWARD_SPREAD = "reward.spread"  # ... and the spread of its bootstrap ensemble (same units)
