import numpy as np
import pytest

from mlr_mlflow.config import SuiteConfig
from mlr_mlflow.evaluate.datasets import DATASETS, UnknownDatasetError, load_dataset, load_suite


@pytest.mark.parametrize("preset", ["tuned", "classic"])
def test_whole_suite_loads_offline_with_disjoint_stratified_splits(preset):
    suite = load_suite(SuiteConfig(preset=preset))
    assert [d.name for d in suite] == [t.name for t in SuiteConfig(preset=preset).task_list()]
    for d in suite:
        assert len(d.X_train) == len(d.y_train) and len(d.X_test) == len(d.y_test)
        assert d.X_train.shape[1] == d.X_test.shape[1] == d.X_val.shape[1]
        assert set(np.unique(d.y_test)) == set(range(d.n_classes))  # stratified: every class tested
        assert d.X_train.dtype == np.float64 and d.y_train.dtype == np.int64


def test_splits_and_digests_are_fixed_across_loads():
    a, b = load_dataset("moons", SuiteConfig()), load_dataset("moons", SuiteConfig())
    assert a.digest == b.digest
    assert np.array_equal(a.X_test, b.X_test)


def test_a_changed_split_changes_the_digest():
    a = load_dataset("iris", SuiteConfig())
    b = load_dataset("iris", SuiteConfig(split_seed=1))
    assert a.digest != b.digest


def test_unknown_dataset_is_named():
    with pytest.raises(UnknownDatasetError, match="'mnist'"):
        load_suite(SuiteConfig(datasets=("iris", "mnist")))


def test_synthetic_sets_reward_nonlinearity():
    """A linear classifier does far worse than chance-plus on xor and circles: they need a nonlinearity."""
    from sklearn.linear_model import LogisticRegression

    for name in ("xor", "circles"):
        d = load_dataset(name, SuiteConfig())
        acc = LogisticRegression().fit(d.X_train, d.y_train).score(d.X_test, d.y_test)
        assert acc < 0.7, (name, acc)
    assert set(DATASETS) >= {"iris", "wine", "breast_cancer", "digits", "moons", "circles", "xor"}


def test_the_classic_suite_is_each_dataset_on_the_mlp_as_before():
    """Stored baselines keep their meaning: the classic suite's (the default before the tuned one)
    tasks are its datasets under their own names, and a job receives exactly the payload it always
    did."""
    from mlr_mlflow.config.evaluation import CLASSIC_DATASETS

    classic = SuiteConfig(preset="classic")
    suite = load_suite(classic)
    assert [d.name for d in suite] == list(CLASSIC_DATASETS) and {d.family for d in suite} == {"mlp"}
    assert not classic.by_task and load_suite(SuiteConfig(datasets=CLASSIC_DATASETS))[0].digest == suite[0].digest
    assert set(suite[0].payload()) == {"name", "X_train", "y_train", "X_val", "y_val", "X_test",
                                       "y_test", "n_classes"}


def test_image_and_sequence_sets_carry_their_shape_for_their_family():
    from mlr_mlflow.config import TaskConfig

    image, sequence = load_suite(SuiteConfig(tasks=(TaskConfig("i", "shapes", "cnn"),
                                                    TaskConfig("s", "sequence_match", "attention"))))
    assert image.input_shape == (1, 8, 8) and image.X_train.shape[1] == 64 and image.n_classes == 3
    length, vocab = sequence.input_shape
    assert sequence.X_train.shape[1] == length and set(np.unique(sequence.X_train)) <= set(range(vocab))
    assert image.payload()["family"] == "cnn"
