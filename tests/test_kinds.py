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


# State kept between calls (issue 26): each source passed the old probe, loaded without the static
# checks (which now refuse decorators), as code that slipped past them would be.
STATEFUL = [
    ("activation", "import torch\n\n@(lambda f: [])\ndef _calls():\n    pass\n\n"
                   "def activation(x):\n    _calls.append(1)\n"
                   "    return torch.relu(x) if len(_calls) < 9 else x * 0.0\n"),
    ("regularizer", "@(lambda f: [])\ndef _widths():\n    pass\n\n"
                    "def regularizer(params):\n    _widths.append(params[0].shape[1])\n"
                    "    n = len([w for i, w in enumerate(_widths) if w not in _widths[:i]])\n"
                    "    return 1e-4 * n * sum(p.pow(2).sum() for p in params)\n"),
    ("preprocessing", "import numpy as np\n\n@(lambda f: [])\ndef _n():\n    pass\n\n"
                      "def preprocess(X_train, X_test):\n    _n.append(1)\n"
                      "    fit = np.vstack([X_train, X_test]) if len(_n) > 2 else X_train\n"
                      "    m, s = fit.mean(0), fit.std(0) + 1e-8\n"
                      "    return (X_train - m) / s, (X_test - m) / s\n"),
]


@pytest.mark.parametrize("kind, source", STATEFUL, ids=[k for k, _ in STATEFUL])
def test_probe_calls_the_same_input_again_after_other_calls(kind, source):
    reasons = get_kind(kind).probe(load_function(source, kind), 7)
    assert reasons and "is not deterministic" in reasons[0], reasons


@pytest.mark.parametrize("kind, name", BUILTINS)
def test_probe_verdict_of_builtins_does_not_depend_on_the_seed(kind, name):
    for seed in (0, 1, 2 ** 40 + 3, 987654321):
        assert get_kind(kind).probe(load_function(get_kind(kind).component(name), kind), seed) == []


def test_preprocessing_probe_shape_is_drawn_afresh():
    """The probe used to be 60x4 and 25x4 always: code could recognise it."""
    from mlr_mlflow.kinds.preprocessing import probe_arrays
    from mlr_mlflow.validate.dynamic import probe_seed

    shapes = {tuple(a.shape for a in probe_arrays(probe_seed(f"# {i}"))) for i in range(20)}
    assert len(shapes) == 20
    assert probe_arrays(5)[0].tolist() == probe_arrays(5)[0].tolist()  # reproducible from the seed


SHAPE_SNIFFING = ("import numpy as np\n\ndef preprocess(X_train, X_test):\n"
                  "    fit = X_train if X_train.shape[1] == 4 and len(X_test) in (25, 10) "
                  "else np.vstack([X_train, X_test])\n"
                  "    m, s = fit.mean(0), fit.std(0) + 1e-8\n"
                  "    return (X_train - m) / s, (X_test - m) / s\n")


def test_preprocessing_probe_catches_code_that_recognises_the_old_fixed_shape(sandbox):
    result = validate(Hypothesis("preprocessing", SHAPE_SNIFFING), sandbox)
    assert not result.valid and "statistics of X_test" in result.reasons[0], result.reasons


def test_preprocessing_probe_requires_train_output_independent_of_test_rows():
    source = ("import numpy as np\n\ndef preprocess(X_train, X_test):\n"
              "    return X_train - X_test.mean(), X_test - X_train.mean(0)\n")
    reasons = get_kind("preprocessing").probe(load_function(source, "preprocessing"), 3)
    assert reasons == ["preprocess uses statistics of X_test (its output for the training rows "
                       "changed when test rows changed)"]
