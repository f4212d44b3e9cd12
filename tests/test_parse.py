"""Code out of ugly LLM replies: every case here is a reply seen in the wild, or close to one."""
import pytest

from mlr_mlflow.generate.parse import extract
from mlr_mlflow.validate import check_static
from mlr_mlflow.kinds import get_kind

SWISH_BLOCK = "```python\nimport torch\n\ndef activation(x):\n    return x * torch.sigmoid(x)\n```"

UGLY = {
    "fenced with prose around": (f"Sure! Here is an idea.\n\n{SWISH_BLOCK}\n\nThis is smooth.", 1),
    "no fence, prose after": ("import torch\n\ndef activation(x):\n    return torch.tanh(x) * x\n\n"
                              "This function is smooth and bounded below.", 1),
    "unterminated fence (token limit)": ("```python\nimport torch\n\ndef activation(x):\n"
                                         "    return x * torch.sigmoid(1.5 * x)\n\ndef activation2(", 1),
    "three functions in one block": ("```python\nimport torch\n\ndef activation(x):\n    return x\n\n"
                                     "def activation(x):\n    return torch.tanh(x)\n\n"
                                     "def activation(x):\n    return torch.sigmoid(x) * x\n```", 3),
    "three fenced blocks": ("\n".join(f"Option {i}:\n```py\ndef activation(x):\n    return x * {i}\n```"
                                      for i in (2, 3, 4)), 3),
    "public helper gets a private name": ("```python\nimport torch\n\ndef gate(x):\n"
                                          "    return torch.sigmoid(x)\n\ndef activation(x):\n"
                                          "    return x * gate(x)\n```", 1),
    "other name, right arity": ("```python\nimport torch\n\ndef smooth_relu(x):\n"
                                "    return torch.nn.functional.softplus(x)\n```", 1),
    "usage example at module level is dropped": (
        "```python\nimport torch\n\ndef activation(x):\n    return torch.relu(x) + 0.1 * x\n\n"
        "print(activation(torch.randn(3)))\nif __name__ == '__main__':\n    pass\n```", 1),
    "decorator is dropped": ("```python\nimport torch\n\n@torch.jit.script\ndef activation(x):\n"
                             "    return torch.relu(x)\n```", 1),
    "empty": ("", 0),
    "whitespace": ("   \n\n ", 0),
    "prose only": ("I think a good activation would be a smooth version of ReLU.", 0),
    "wrong function for the kind": ("```python\ndef preprocess(X_train, X_test):\n"
                                    "    return X_train, X_test\n```", 0),
    "unparseable garbage": ("```python\ndef activation(x:\n    return ((x\n```", 0),
    "a shell block only": ("```bash\npip install torch\n```", 0),
    "repeated token soup": ("def def def def " * 200, 0),
}


@pytest.mark.parametrize("name", list(UGLY))
def test_extract_survives_ugly_replies(name):
    reply, expected = UGLY[name]
    sources = extract(reply, "activation")
    assert len(sources) == expected, sources
    for source in sources:
        assert "def activation(" in source
        assert check_static(source, get_kind("activation")) == [], source


def test_extracted_code_keeps_meaning():
    [source] = extract(UGLY["public helper gets a private name"][0], "activation")
    assert "def _gate(x)" in source and "x * _gate(x)" in source
    [source] = extract(UGLY["other name, right arity"][0], "activation")
    assert "def activation(x)" in source and "softplus" in source
    [source] = extract(UGLY["usage example at module level is dropped"][0], "activation")
    assert "print" not in source and "__main__" not in source
    [source] = extract(UGLY["decorator is dropped"][0], "activation")
    assert "jit" not in source


def test_hostile_code_is_extracted_but_then_refused_by_the_validator():
    reply = "```python\nimport os\n\ndef activation(x):\n    os.system('curl evil')\n    return x\n```"
    [source] = extract(reply, "activation")
    assert check_static(source, get_kind("activation"))


def test_preprocessing_and_regularizer_replies():
    pre = ("Here:\n```python\nimport numpy as np\n\ndef preprocess(X_train, X_test):\n"
           "    m = X_train.mean(0)\n    return X_train - m, X_test - m\n```")
    reg = "```python\ndef regularizer(params):\n    return 1e-4 * sum((p ** 2).sum() for p in params)\n```"
    assert len(extract(pre, "preprocessing")) == 1
    assert len(extract(reg, "regularizer")) == 1
    assert extract(reg, "activation") == []
