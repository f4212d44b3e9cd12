"""What a hypothesis is evaluated on and how results are judged: the model, the suite of datasets
or tasks, the comparison with baselines and the confirmation stage (tables `[model]`, `[suite]`,
`[[suite.tasks]]`, `[compare]`, `[confirm]`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .checks import above, at_least, between, checked, one_of
from .errors import ConfigError


# The one-pass rung's learning rate where [model] one_pass_lr is unset, by kind. Activations: 0.02,
# measured with bench/screen_rungs.py against fresh full training on two disjoint draws of seeds
# (docs/benchmarks.md, "A learning rate for the cheap rung"): one epoch at twice the full-training
# rate ranks the panel closer to full training and reverses fewer of its orderings, at no cost.
# A kind not listed screens at `lr`, where its screen was measured.
ONE_PASS_LR = {"activation": 0.02}


@dataclass(frozen=True)
@checked("model", hidden=at_least(1), lr=above(0), batch_size=at_least(1), max_epochs=at_least(1),
         patience=at_least(1), one_pass_lr=above(0))
class ModelConfig:
    """The MLP every hypothesis plugs into, and how it is trained.

    Attributes:
        hidden: widths of the hidden layers.
        lr: Adam learning rate (full training, confirmation, the transfer test).
        batch_size: examples per step; one-pass sees each training example exactly once.
        max_epochs: epoch cap of the full-training variant.
        patience: epochs without a better validation loss before a model stops (full variant).
        one_pass_lr: Adam learning rate of the one-pass variant (the cheap rung that screening
            ranks by); unset: the kind's measured default (`ONE_PASS_LR`), else `lr`. A recorded
            config from before this key ran one-pass at its `lr` (`recorded_config`).
    """

    hidden: tuple[int, ...] = (64, 64)
    lr: float = 1e-2
    batch_size: int = 8
    max_epochs: int = 30
    patience: int = 4
    one_pass_lr: float | None = None

    def for_kind(self, kind: str) -> "ModelConfig":
        """With `one_pass_lr` resolved for `kind` (what a run records and its numbers depend on)."""
        if self.one_pass_lr is not None:
            return self
        return dataclasses.replace(self, one_pass_lr=ONE_PASS_LR.get(kind, self.lr))


MODEL_FAMILIES = ("mlp", "cnn", "attention")
# kinds whose hypothesis slot a family lacks: preprocessing works on feature tables only
FAMILY_REFUSES = {"cnn": frozenset({"preprocessing"}), "attention": frozenset({"preprocessing"})}


@dataclass(frozen=True)
@checked("[[suite.tasks]]")
class TaskConfig:
    """One task of the suite: a dataset and the model family trained on it.

    Attributes:
        name: names the task's metrics (`<name>.b_wr`, `<name>.test_acc`, ...) and its entry in the
            tag `mlr.tasks`; letters, digits, `_` and `-`.
        dataset: a bundled name (`mlr_mlflow.evaluate.datasets.DATASETS`), "csv:PATH" or "parquet:PATH".
        model: the family, "mlp", "cnn" (image datasets) or "attention" (sequence datasets).
        target: csv/parquet only: the label column (empty: the last column).
    """

    name: str
    dataset: str
    model: str = "mlp"
    target: str = ""

    def __post_init__(self):
        if not self.name or not all(c.isalnum() or c in "_-" for c in self.name):
            raise ConfigError(f"[[suite.tasks]] name {self.name!r}: use letters, digits, '_' and '-'")
        if self.model not in MODEL_FAMILIES:
            raise ConfigError(f"[[suite.tasks]] {self.name}: unknown model {self.model!r} "
                              f"(choose {', '.join(MODEL_FAMILIES)})")
        if self.target and not self.dataset.startswith(("csv:", "parquet:")):
            raise ConfigError(f"[[suite.tasks]] {self.name}: target applies to csv: and parquet: datasets only")


CLASSIC_DATASETS = ("iris", "wine", "breast_cancer", "digits", "moons", "circles", "xor",
                    "hard_classification")
# Named suites. "tuned" is the default, chosen with `mlr-mlflow suite check` (docs/benchmarks.md,
# "The instrument"): tasks whose full-training results tell a panel of activations apart the same
# way on disjoint seeds. "classic" is the eight bundled tables on the MLP, the default before it
# (saturated under full training: wine, circles, xor and breast_cancer barely separate anything).
SUITES = {
    "classic": tuple(TaskConfig(name=d, dataset=d) for d in CLASSIC_DATASETS),
    "tuned": (TaskConfig(name="hastie", dataset="hastie"), TaskConfig(name="checkerboard", dataset="checkerboard"),
              TaskConfig(name="classes6", dataset="classes6"),
              TaskConfig(name="sine_boundary", dataset="sine_boundary"), TaskConfig(name="digits", dataset="digits"),
              TaskConfig(name="digits-cnn", dataset="digits", model="cnn"),
              TaskConfig(name="match-attention", dataset="sequence_match", model="attention")),
}
# Held out from the tuned suite for the transfer test (confirm.holdout_tasks): datasets selection
# never sees, one MLP and one CNN task.
HOLDOUT_TASKS = (TaskConfig(name="spirals", dataset="spirals"),
                 TaskConfig(name="shapes-cnn", dataset="shapes", model="cnn"))


@dataclass(frozen=True)
@checked("suite", split_seed=at_least(0), first_seed=at_least(0), test_fraction=between(0, 1, open_=True),
         val_fraction=between(0, 1, open_=True))
class SuiteConfig:
    """The datasets (or tasks) and their fixed splits.

    Attributes:
        datasets: names from `mlr_mlflow.evaluate.datasets.DATASETS`, each trained on the MLP; when
            given, the suite is these (and `preset` is not used).
        tasks: when given, the suite is these tasks instead (and `datasets`, `preset` are not used).
        preset: the named suite used when neither `datasets` nor `tasks` is given (SUITES: "tuned",
            the default, or "classic").
        split_seed: seeds the stratified train/val/test split (not the training seeds).
        first_seed: training seeds are first_seed, first_seed + 1, ... (the confirmation stage uses
            seeds and a split of its own, see ConfirmConfig).
        test_fraction: share of each dataset held out for the test metrics.
        val_fraction: share of the remainder held out for early stopping (full variant).
    """

    datasets: tuple[str, ...] = ()
    tasks: tuple[TaskConfig, ...] = ()
    preset: str = "tuned"
    split_seed: int = 0
    first_seed: int = 0
    test_fraction: float = 0.25
    val_fraction: float = 0.15

    def __post_init__(self):
        if len({t.name for t in self.tasks}) != len(self.tasks):
            raise ConfigError("[[suite.tasks]]: task names must be unique")
        if self.preset not in SUITES:
            raise ConfigError(f"[suite] preset {self.preset!r}: choose one of {', '.join(SUITES)}")

    def task_list(self) -> tuple[TaskConfig, ...]:
        """The suite as tasks: the configured ones, else each dataset on the MLP under its own
        name, else the preset's."""
        if self.tasks:
            return self.tasks
        if self.datasets:
            return tuple(TaskConfig(name=d, dataset=d) for d in self.datasets)
        return SUITES[self.preset]

    def for_kind(self, kind: str) -> "SuiteConfig":
        """The suite a kind is evaluated on: a preset drops the tasks whose family has no slot for
        `kind` (preprocessing: the MLP tasks only); a configured suite is the user's to fix."""
        if self.tasks or self.datasets:
            return self
        fitting = tuple(t for t in SUITES[self.preset] if kind not in FAMILY_REFUSES.get(t.model, ()))
        return self if len(fitting) == len(SUITES[self.preset]) else \
            dataclasses.replace(self, tasks=fitting)

    @property
    def by_task(self) -> bool:
        """Whether references are cached per task (task suites and presets) rather than over the
        whole suite at once (a list of datasets: the keys the default suite always had)."""
        return bool(self.tasks) or (not self.datasets and self.preset != "classic")


@dataclass(frozen=True)
@checked("compare", loss_tol=at_least(0), ci_level=between(0, 1, open_=True), bootstrap=at_least(1),
         metric=one_of("accuracy", "loss"))
class CompareConfig:
    """How one (dataset, seed) result is judged against a baseline's.

    Attributes:
        loss_tol: a test-loss difference within this absolute tolerance is a tie (under "accuracy":
            when both models classify the same number of test examples correctly); otherwise the
            lower loss wins.
        ci_level: confidence level of the bootstrap intervals of b_wr and bsota_wr.
        bootstrap: resamples drawn for those intervals.
        metric: what decides a win (evaluate/winrate.py): "accuracy" (the count of correct test
            examples, the loss breaking ties: the paper's rule) or "loss" (the test loss alone).
            Measured for regularizers, whose accuracy B-WR barely repeats: the loss rule repeats
            no better (docs/benchmarks.md, "The other kinds"), so the default stays accuracy.
    """

    loss_tol: float = 1e-3
    ci_level: float = 0.95
    bootstrap: int = 2000
    metric: str = "accuracy"

    def __post_init__(self):
        if not 0.0 < self.ci_level < 1.0 or self.bootstrap < 1:
            raise ConfigError("[compare] ci_level must be in (0, 1) and bootstrap at least 1")


@dataclass(frozen=True)
@checked("confirm", fdr=between(0, 1, open_=True), seeds=at_least(1), first_seed=at_least(0),
         split_seed=at_least(0))
class ConfirmConfig:
    """The confirmation stage of a round: the selected hypotheses trained again, on data that took
    no part in selecting them, and tested against the baselines with false-discovery control.

    Attributes:
        enabled: run the stage (off: a round selects but never calls anything confirmed).
        fdr: the Benjamini-Hochberg level across a round's selected hypotheses.
        seeds: training seeds of the confirmation (first_seed, first_seed + 1, ...).
        first_seed: must leave the round's own seeds (suite.first_seed + its --seeds) untouched.
        split_seed: the fresh train/val/test split; must differ from suite.split_seed.
        holdout_tasks: tasks selection never sees (none of their datasets in the suite): the
            selected are also tested there, on the same fresh seeds and split, for the separate
            verdict `transfers` (transfer.py). Unset: with the default (tuned) suite, spirals on
            the MLP and shapes on the CNN (HOLDOUT_TASKS), which it does not hold; with any other
            suite none. Empty: no transfer test.
    """

    enabled: bool = True
    fdr: float = 0.1
    seeds: int = 3
    first_seed: int = 1000
    split_seed: int = 1
    holdout_tasks: tuple[TaskConfig, ...] | None = None

    def held_out(self, suite: SuiteConfig) -> tuple[TaskConfig, ...]:
        """The held-out tasks: the configured ones, else the preset's when the suite is a preset
        (the tuned suite: HOLDOUT_TASKS), else none."""
        if self.holdout_tasks is not None:
            return self.holdout_tasks
        return HOLDOUT_TASKS if not suite.tasks and not suite.datasets and suite.preset == "tuned" else ()

    def __post_init__(self):
        if not 0.0 < self.fdr < 1.0 or self.seeds < 1:
            raise ConfigError("[confirm] fdr must be in (0, 1) and seeds at least 1")
