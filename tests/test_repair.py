"""The LLM's code repair: missing imports of allowed modules and the argument under another name
are fixed and recorded; nothing the validator refuses becomes acceptable through it."""
import pytest

from mlr_mlflow.generate.llm import LLMGenerator
from mlr_mlflow.config import LLMConfig
from mlr_mlflow.generate.repair import repair
from mlr_mlflow.generate.templates import PromptTemplate
from mlr_mlflow.kinds import get_kind
from mlr_mlflow.tracking import names
from mlr_mlflow.validate.static import check_static

from .hostile import CORPUS


def valid(source, kind="activation"):
    return not check_static(source, get_kind(kind))


@pytest.mark.parametrize("broken, kind, note", [
    ("import torch.nn.functional as F\n\ndef activation(x):\n    return torch.tanh(x) + F.relu(x)\n",
     "activation", "added import torch"),
    ("def activation(x):\n    return F.gelu(x) * math.pi\n", "activation",
     "added import torch.nn.functional as F; import math"),
    ("import torch\n\ndef activation(x):\n    return input * torch.sigmoid(input)\n", "activation",
     "renamed input to the argument x"),
    ("import torch\n\ndef activation(t):\n    return z.abs() * torch.tanh(z)\n", "activation",
     "renamed z to the argument t"),
    ("def preprocess(X_train, X_test):\n    m = np.mean(X_train, axis=0)\n    return X_train - m, X_test - m\n",
     "preprocessing", "added import numpy as np"),
])
def test_the_two_slips_are_repaired_into_code_the_validator_accepts(broken, kind, note):
    assert not valid(broken, kind)
    fixed, notes = repair(broken, kind)
    assert "; ".join(notes) == note
    assert valid(fixed, kind), check_static(fixed, get_kind(kind))


def test_sound_code_is_left_alone():
    source = "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(x)\n"
    assert repair(source, "activation") == (source, [])
    assert repair("def activation(x:\n", "activation") == ("def activation(x:\n", [])


def test_no_module_outside_the_kind_is_imported_and_no_module_name_becomes_the_argument():
    for source, kind in (("def activation(x):\n    return os.system(x)\n", "activation"),
                         ("def activation(x):\n    return np.tanh(x)\n", "activation"),  # numpy: not activation's
                         ("def preprocess(X_train, X_test):\n    return torch.tanh(X_train), X_test\n",
                          "preprocessing")):
        fixed, notes = repair(source, kind)
        assert (fixed, notes) == (source, []) and not valid(fixed, kind)


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_repair_never_turns_refused_code_into_accepted_code(case):
    _, kind, template, _ = case
    source = template.format(canary="/tmp/c", secret_file="/tmp/s", port=1)
    fixed, notes = repair(source, kind)
    if valid(source, kind):  # refused later (probes, training): repair has nothing to touch
        assert (fixed, notes) == (source, [])
    else:
        assert not valid(fixed, kind)


def test_an_llm_reply_is_repaired_and_the_repair_recorded():
    reply = "```python\nimport torch.nn.functional as F\n\ndef activation(x):\n    return torch.tanh(x) * F.silu(x)\n```"
    template = PromptTemplate("mlr-activation-novelty", "1", "novelty", "p")
    (proposal,) = LLMGenerator(LLMConfig(grammar="off"))._proposals("activation", template, "p", reply, {})
    assert proposal.origin["tags"][names.LLM_REPAIRED] == "added import torch"
    assert valid(proposal.source)
