"""Each rejection path, with a reason a person understands, and the CLI's exit statuses."""
import json

import pytest

from mlr_mlflow.cli import main
from mlr_mlflow.config import SandboxConfig
from mlr_mlflow.hypothesis import Hypothesis
from mlr_mlflow.kinds import get_kind
from mlr_mlflow.validate import check_static, validate, validate_many

from .conftest import SWISH, write

STATIC_CASES = [
    ("def activation(x:\n    return x\n", "syntax error at line 1"),
    ("", "empty"),
    ("import torch\n\ndef act(x):\n    return x\n", "no function named 'activation'"),
    ("def activation(x, y):\n    return x\n", "takes 2 parameter(s)"),
    ("def activation(*xs):\n    return xs[0]\n", "no *args"),
    ("import os\n\ndef activation(x):\n    return x\n", "import of 'os' is not allowed"),
    ("from subprocess import run\n\ndef activation(x):\n    return x\n", "not allowed"),
    ("import numpy as np\n\ndef activation(x):\n    return x\n", "import of 'numpy' is not allowed"),
    ("import torch\nprint('hi')\n\ndef activation(x):\n    return x\n", "module level"),
    ("STATE = []\n\ndef activation(x):\n    return x\n", "module level"),
    ("import torch\ntorch.relu = lambda x: x\n\ndef activation(x):\n    return x\n", "module level"),
    ("import torch\n\ndef activation(x):\n    torch.relu = None\n    return x\n", "assigning to an attribute"),
    ("def activation(x):\n    return x.__class__\n", "dunder attribute"),
    ("def activation(x):\n    return open('/etc/passwd')\n", "name 'open' is not allowed"),
    ("def activation(x):\n    return eval('x')\n", "name 'eval' is not allowed"),
    ("import torch\n\ndef activation(x):\n    torch.save(x, 'f')\n    return x\n", "torch.save is not in the allow-list"),
    ("def activation(x):\n    return x\n\ndef helper(x):\n    return x\n", "only one public function"),
    ("def activation(x):\n    class A:\n        pass\n    return x\n", "class definitions"),
    # load-time code that binds state every call shares (issue 26)
    ("@(lambda f: [])\ndef _seen():\n    pass\n\ndef activation(x):\n    _seen.append(1)\n    return x\n",
     "decorators are not allowed"),
    ("def activation(x):\n    @(lambda f: x)\n    def _g():\n        pass\n    return _g\n",
     "decorators are not allowed"),
    ("def _h(a: (_s := [])):\n    return a\n\ndef activation(x):\n    _s.append(1)\n    return x\n",
     "annotations may only name types"),
    ("def _h(a) -> (_s := {}):\n    return a\n\ndef activation(x):\n    return x\n",
     "':=' is allowed only inside a function body"),
    ("_K: (_s := []) = 1\n\ndef activation(x):\n    _s.append(1)\n    return x\n",
     "annotations may only name types"),
    ("def activation(x: (lambda: 0)()):\n    return x\n", "annotations may only name types"),
]


@pytest.mark.parametrize("source, fragment", STATIC_CASES)
def test_static_rejections_name_the_problem(source, fragment):
    reasons = check_static(source, get_kind("activation"))
    assert reasons and any(fragment in r for r in reasons), reasons


def test_private_helpers_and_constants_are_allowed():
    source = ("import math\nimport torch\n\nBETA = 1.5\n\ndef _gate(x):\n    return torch.sigmoid(BETA * x)\n\n"
              "def activation(x):\n    return x * _gate(x) + 0 * math.pi\n")
    assert check_static(source, get_kind("activation")) == []


def test_annotations_that_name_types_and_walrus_in_bodies_are_allowed():
    source = ("def activation(x: float) -> 'torch.Tensor':\n    y: list[float] = 2.0\n"
              "    return (z := x * y) + z + (lambda a: (b := a) * b)(x)\n")
    assert check_static(source, get_kind("activation")) == []


def test_deep_nesting_is_an_invalid_hypothesis_not_a_crash(tmp_path, capsys):
    deep = write(tmp_path, "deep.py", "X = " + "+".join(["1"] * 6000) + "\n\ndef activation(x):\n    return x\n")
    assert main(["validate", str(deep), "--kind", "activation", "--json"]) == 1
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["stage"] == "static" and "too deeply nested" in out["reasons"][0]
    assert len(Hypothesis("activation", deep.read_text()).sha256) == 64


def test_static_failure_never_runs_the_code(tmp_path, sandbox):
    canary = tmp_path / "canary"
    source = f"import os\nos.system('touch {canary}')\n\ndef activation(x):\n    return x\n"
    result = validate(Hypothesis("activation", source), sandbox)
    assert not result.valid and result.stage == "static"
    assert not canary.exists()


def test_dynamic_rejection_reports_the_stage(sandbox):
    result = validate(Hypothesis("activation", "def activation(x):\n    return x[0]\n"), sandbox)
    assert (result.valid, result.stage) == (False, "dynamic")
    assert "changed the shape" in result.reasons[0]


def test_exception_in_hypothesis_is_a_reason(sandbox):
    source = "def activation(x):\n    raise ValueError('boom')\n"
    result = validate(Hypothesis("activation", source), sandbox)
    assert not result.valid and "ValueError: boom" in result.reasons[0]


def test_infinite_loop_is_rejected_by_the_wall_clock():
    source = "def activation(x):\n    while True:\n        pass\n"
    result = validate(Hypothesis("activation", source), config=SandboxConfig(probe_timeout_s=4))
    assert not result.valid and "timed out" in result.reasons[0]


def test_validate_many_probes_in_one_call_with_a_limit_each():
    """One hanging hypothesis in a batch times out alone; the others keep their verdicts."""
    from mlr_mlflow.sandbox import SubprocessSandbox

    batch = [Hypothesis("activation", SWISH),
             Hypothesis("activation", "import os\n\ndef activation(x):\n    return x\n"),
             Hypothesis("activation", "def activation(x):\n    while True:\n        x = x + 0\n"),
             Hypothesis("activation", "def activation(x):\n    return x[0]\n"),
             Hypothesis("activation", "def activation(x):\n    return x * 2\n")]
    config = SandboxConfig(probe_timeout_s=2)
    with SubprocessSandbox(config) as sb:
        results = validate_many(batch, sb, config)
        assert sb._proc is not None and sb._proc.poll() is None  # the worker survived the hang
    assert [r.valid for r in results] == [True, False, False, False, True]
    assert [r.stage for r in results] == [None, "static", "dynamic", "dynamic", None]
    assert results[2].reasons == ["probe timed out after 2 s"]
    assert "changed the shape" in results[3].reasons[0]


def test_cli_validate_exit_statuses(tmp_path, capsys):
    good = write(tmp_path, "good.py", SWISH)
    bad = write(tmp_path, "bad.py", "def activation(x):\n    return x.sum()\n")
    assert main(["validate", str(good), "--kind", "activation", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"valid": True, "reasons": [], "stage": None}
    assert main(["validate", str(bad), "--kind", "activation", "--json"]) == 1
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["valid"] is False and out["stage"] == "dynamic" and out["reasons"]
    assert main(["validate", str(tmp_path / "missing.py"), "--kind", "activation", "--json"]) == 2
    captured = capsys.readouterr()
    assert "not found" in captured.err and "Traceback" not in captured.err
    assert "not found" in json.loads(captured.out.splitlines()[-1])["error"]


def test_cli_rejects_an_unknown_kind(tmp_path, capsys):
    good = write(tmp_path, "good.py", SWISH)
    with pytest.raises(SystemExit) as exit_:
        main(["validate", str(good), "--kind", "attention"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
