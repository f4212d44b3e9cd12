import pytest

from mlr_mlflow.hypothesis import Hypothesis, HypothesisError, load_function, normalized_sha256

SWISH = "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(x)\n"


def test_hash_ignores_comments_docstrings_formatting_and_local_names():
    variant = ('import torch\n# a comment\n\ndef activation(inp):\n    """Swish."""\n'
               '    return inp*torch.sigmoid( inp )  # same function\n')
    assert normalized_sha256(SWISH) == normalized_sha256(variant)


def test_hash_separates_different_functions():
    other = "import torch\n\ndef activation(x):\n    return x * torch.tanh(x)\n"
    assert normalized_sha256(SWISH) != normalized_sha256(other)


def test_hash_of_unparsable_source_is_stable():
    assert normalized_sha256("def (") == normalized_sha256("def (")


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(HypothesisError, match="not found"):
        Hypothesis.from_file(tmp_path / "nope.py", "activation")


def test_unknown_kind_is_rejected(tmp_path):
    (tmp_path / "a.py").write_text(SWISH)
    with pytest.raises(ValueError, match="unknown kind"):
        Hypothesis.from_file(tmp_path / "a.py", "attention")


def test_loader_has_no_dangerous_builtins():
    fn = load_function("def activation(x):\n    return open\n", "activation")
    with pytest.raises(NameError):
        fn(1)


def test_loader_refuses_imports_outside_the_kind():
    with pytest.raises(ImportError, match="not allowed"):
        load_function("import os\ndef activation(x):\n    return x\n", "activation")
    with pytest.raises(ImportError, match="not allowed"):
        load_function("import numpy\ndef activation(x):\n    return x\n", "activation")
