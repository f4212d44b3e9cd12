"""Hostile hypotheses, on every sandbox backend available here: each is rejected with its reason,
and its side effect (a canary file, a loopback connection, a secret) never happens.

The second half proves each backend's process layer alone, running attacks through a target that
skips the static allow-list and the restricted loader.
"""
import os
import socket
import threading

import pytest

from mlr_mlflow.config import SandboxConfig
from mlr_mlflow.hypothesis import Hypothesis
from mlr_mlflow.sandbox import SandboxCrash, SandboxError, available_backends, open_sandbox
from mlr_mlflow.sandbox.selftest import SELFTEST_TARGET
from mlr_mlflow.validate import validate

from .hostile import CORPUS, ESCAPE, HANG_IN_TRAINING_PREPROCESSING, LOADER_CORPUS

BACKENDS = available_backends()
ISOLATING = {"bwrap", "namespace", "docker"}  # the subprocess backend shares the network and file system
SECRET = "sk-canary-0123456789"
CONFIG = dict(probe_timeout_s=6, memory_mb=3072)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    config = SandboxConfig(backend=request.param, **CONFIG)
    with open_sandbox(config) as sb:
        yield request.param, sb, config


@pytest.fixture(scope="module")
def listener():
    """A loopback TCP server that records every connection it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn.recv(100))
                conn.close()
            except OSError:
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def traps(tmp_path, listener, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    port, accepted = listener
    before = len(accepted)
    values = {"canary": str(tmp_path / "canary"), "secret_file": str(secret_file), "port": port}
    yield values
    assert not (tmp_path / "canary").exists(), "a canary file was written"
    assert len(accepted) == before, "the loopback listener was reached"


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25
    assert len({case[0] for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_hypothesis_is_rejected_without_effect(case, backend, traps):
    _, kind, template, fragment = case
    _, sandbox, config = backend
    result = validate(Hypothesis(kind, template.format(**traps)), sandbox, config)
    assert not result.valid
    reasons = " ".join(result.reasons)
    assert fragment.lower() in reasons.lower(), result.reasons
    assert SECRET not in reasons


@pytest.mark.parametrize("case", LOADER_CORPUS, ids=[c[0] for c in LOADER_CORPUS])
def test_restricted_loader_admits_only_the_kinds_modules(case):
    """Below the static checks: an import of an already-loaded torch/numpy submodule that is not
    one of the kind's modules fails inside the hypothesis."""
    import numpy as np
    import torch
    import torch.utils.data  # noqa: F401  (loaded, as in a training worker)

    from mlr_mlflow.hypothesis import load_function

    _, kind, source, fragment = case
    fn = load_function(source, kind)
    with pytest.raises(ImportError, match=fragment):
        fn(torch.ones(3)) if kind == "activation" else fn(np.ones((4, 2)), np.ones((2, 2)))


def test_reward_grid_never_runs_code_that_fails_validation(tmp_path):
    """The reward model's behaviour features (also what `RewardModel.predict` computes for any
    DataFrame it is sent) run code only after the static checks: an escape from the restricted
    builtins gets NaN features and its side effect never happens, even on the subprocess backend."""
    import math

    from mlr_mlflow.reward.features.grid import behaviour_matrix

    canary = tmp_path / "grid-canary"
    sources = [ESCAPE.format(canary=canary), "def activation(x):\n    return x\n"]
    features = behaviour_matrix("activation", sources, SandboxConfig(backend="subprocess", **CONFIG))
    assert not canary.exists()
    assert all(math.isnan(v) for v in features[0]) and not any(math.isnan(v) for v in features[1])


def test_reward_features_treat_state_keeping_code_as_invalid():
    """The reward model's validity (`RewardModel._invalid`: the static checks, then all behaviour
    features missing) used to score a decorator that keeps state as a valid hypothesis; its
    behaviour features were measured by running it."""
    import math

    from mlr_mlflow.kinds import get_kind
    from mlr_mlflow.reward.features.grid import behaviour_matrix
    from mlr_mlflow.validate import check_static

    cases = [c for c in CORPUS if c[0].startswith("decorator_")]
    assert len(cases) >= 3
    for _, kind, template, _ in cases:
        source = template.format(canary="", secret_file="", port=0)
        assert check_static(source, get_kind(kind))  # what `_invalid` asks first
        features = behaviour_matrix(kind, [source], SandboxConfig(backend="subprocess", **CONFIG))
        assert all(math.isnan(v) for v in features[0])  # never run: no behaviour, invalid


def test_preprocessing_that_hangs_in_training_fails_alone_within_its_budget():
    """Preprocessing runs under the per-model guard: one that hangs only at training size fails its
    own models on its time budget, the rest of the batch trains, the job returns well inside its
    wall clock (before, the whole batch hung until the sandbox killed it)."""
    import dataclasses

    from mlr_mlflow.config import ModelConfig, SuiteConfig
    from mlr_mlflow.evaluate.baselines import components_for
    from mlr_mlflow.evaluate.datasets import load_suite
    from mlr_mlflow.evaluate.training.job import TRAIN_TARGET

    suite = load_suite(SuiteConfig(datasets=("iris",)))
    models = [{"key": "hang:0", "seed": 0,
               "components": components_for("preprocessing", HANG_IN_TRAINING_PREPROCESSING)},
              {"key": "hang:1", "seed": 1,
               "components": components_for("preprocessing", HANG_IN_TRAINING_PREPROCESSING)},
              {"key": "fine:0", "seed": 0,
               "components": components_for("activation", "def activation(x):\n    return x\n")}]
    payload = {"datasets": [d.payload() for d in suite], "models": models,
               "model": dataclasses.asdict(ModelConfig()), "variant": "one-pass", "budget_s": 1.0}
    with open_sandbox(SandboxConfig(backend="subprocess", **CONFIG)) as sandbox:
        out = sandbox.call(TRAIN_TARGET, payload, timeout=120)
    assert set(out["errors"]) == {"hang:0", "hang:1"}
    assert all("time budget of 1 s" in reason for reason in out["errors"].values())
    assert set(out["results"]) == {"fine:0"}


def unrestricted(sandbox, code: str, timeout: float = 30):
    return sandbox.call(SELFTEST_TARGET, {"code": code}, timeout)


def test_process_layer_scrubs_secrets(backend, traps):
    _, sandbox, _ = backend
    out = unrestricted(sandbox, "import os\nresult = dict(os.environ)")
    assert SECRET not in str(out) and "OPENAI_API_KEY" not in out["result"]


def test_process_layer_bounds_memory(backend):
    _, sandbox, _ = backend
    out = unrestricted(sandbox, "x = bytearray(40 * 1024 ** 3)\nresult = len(x)")
    assert "MemoryError" in out.get("error", ""), out


def test_process_layer_bounds_output(backend):
    """Past the cap a write fails (Python ignores SIGXFSZ, so it is EFBIG rather than a kill)."""
    _, sandbox, config = backend
    try:
        out = unrestricted(sandbox, "import sys\nfor _ in range(10 ** 6):\n    sys.stderr.write('x' * 1000)\n"
                                    "    sys.stderr.flush()")
        assert "File too large" in out["error"]
    except SandboxCrash as crash:
        assert "output size limit" in crash.reason
    assert len(sandbox.stderr_tail(limit=10 ** 7)) <= config.output_kb * 1024


def test_process_layer_bounds_wall_time(backend):
    _, sandbox, _ = backend
    with pytest.raises(SandboxError, match="timed out"):
        unrestricted(sandbox, "while True:\n    pass", timeout=3)


@pytest.fixture
def isolating(backend):
    name, sandbox, _ = backend
    if name not in ISOLATING:
        pytest.skip(f"the {name} backend does not isolate network, files or processes (by design)")
    return sandbox


def test_process_layer_cannot_reach_host_loopback(isolating, traps, listener):
    out = unrestricted(isolating, (
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=3).send(b'hi')\n"
        "    result = 'connected'\nexcept OSError as e:\n    result = str(e)") % traps["port"])
    assert out["result"] != "connected"


def test_process_layer_cannot_read_or_write_host_files(isolating, traps):
    out = unrestricted(isolating, (
        "import os\nresult = {}\n"
        "try:\n    result['read'] = open(%r).read()\nexcept OSError as e:\n    result['read'] = 'denied'\n"
        "try:\n    open(%r, 'w').write('x'); result['write'] = 'written'\nexcept OSError:\n    result['write'] = 'denied'\n"
        "try:\n    open('/usr/pwned', 'w'); result['root'] = 'written'\nexcept OSError:\n    result['root'] = 'denied'\n"
        "result['home'] = os.path.exists('/root/.ssh') or os.path.exists('/work')")
        % (traps["secret_file"], traps["canary"]))["result"]
    assert out == {"read": "denied", "write": "denied", "root": "denied", "home": False}


def test_process_layer_bounds_processes(isolating):
    out = unrestricted(isolating, (
        "import os, time\nn = 0\ntry:\n    for _ in range(500):\n        if os.fork() == 0:\n"
        "            time.sleep(3)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nresult = n"))
    assert out["result"] < 100


def test_private_tmp_does_not_outlive_the_worker(isolating):
    unrestricted(isolating, "open('/tmp/left-behind', 'w').write('x')\nresult = 1")
    isolating.close()  # the next call starts a fresh worker
    out = unrestricted(isolating, "import os\nresult = os.path.exists('/tmp/left-behind')")
    assert out["result"] is False
    assert not os.path.exists("/tmp/left-behind")
