"""Every built-in component is itself a valid hypothesis, and each probe catches its kind's faults."""
import numpy as np
import pytest
from mlr_mlflow.hypothesis import Hypothesis, load_function
from mlr_mlflow.kinds import KINDS, get_kind
from mlr_mlflow.validate import validate

BUILTINS = [(k.name, n) for k in KINDS.values() for n in k.components]


@pytest.mark.parametrize("kind, name", BUILTINS)
def test_builtin_components_pass_validation(kind, name, sandbox):
    result = validate(Hypothesis(kind, get_kind(kind).component(name)), sandbox)
    assert result.valid, result.reasons


def test_unknown_component_names_the_known_ones():
    with pytest.raises(KeyError, match="relu"):
        get_kind("activation").component("swoosh")


def test_standardize_keeps_constant_columns_finite():
    fn = load_function(get_kind("preprocessing").component("standardize"), "preprocessing")
    X_train = np.array([[0.0, 1.0], [0.0, 3.0]])
    X_test = np.array([[5.0, 2.0]])
    _, out = fn(X_train, X_test)
    assert np.abs(out).max() < 10


@pytest.mark.parametrize("source, fragment", [
    ("def activation(x):\n    return x.sum()\n", "changed the shape"),
    ("def activation(x):\n    return x / 0\n", "NaN or inf"),
    ("import torch\ndef activation(x):\n    return torch.zeros_like(x)\n", "gradient"),
    ("def activation(x):\n    return (x > 0).long()\n", "dtype"),
    ("def activation(x):\n    return [x]\n", "must return a tensor"),
])
def test_activation_probe_rejects(source, fragment):
    reasons = get_kind("activation").probe(load_function(source, "activation"))
    assert any(fragment in r for r in reasons), reasons


@pytest.mark.parametrize("source, fragment", [
    ("def preprocess(X_train, X_test):\n    return X_train[:5], X_test\n", "row counts"),
    ("def preprocess(X_train, X_test):\n    return X_train\n", "pair"),
    ("def preprocess(X_train, X_test):\n    return X_train / 0, X_test / 0\n", "NaN or inf"),
    ("def preprocess(X_train, X_test):\n    m = X_test.mean(0)\n    return X_train - m, X_test - m\n",
     "statistics of X_test"),
    ("def preprocess(X_train, X_test):\n    X_train[:, 0] = 0\n    return X_train, X_test\n",
     "modified its input"),
    ("def preprocess(X_train, X_test):\n    return X_train[:, :2], X_test\n", "column counts"),
])
def test_preprocessing_probe_rejects(source, fragment):
    reasons = get_kind("preprocessing").probe(load_function(source, "preprocessing"))
    assert any(fragment in r for r in reasons), reasons


@pytest.mark.parametrize("source, fragment", [
    ("def regularizer(params):\n    return [p.sum() for p in params]\n", "scalar tensor"),
    ("def regularizer(params):\n    return params[0]\n", "scalar"),
    ("def regularizer(params):\n    return 0.1\n", "Python number"),
    ("def regularizer(params):\n    return params[0].sum() / 0 * 0\n", "NaN or inf"),
])
def test_regularizer_probe_rejects(source, fragment):
    reasons = get_kind("regularizer").probe(load_function(source, "regularizer"))
    assert any(fragment in r for r in reasons), reasons


def test_regularizer_probe_detects_weight_mutation():
    source = "import torch\ndef regularizer(params):\n    params[0].data.zero_()\n    return torch.zeros(())\n"
    reasons = get_kind("regularizer").probe(load_function(source, "regularizer"))
    assert any("modified" in r for r in reasons), reasons
