"""Batched training gives each model the result it would have alone."""
import dataclasses

import pytest

from mlr_mlflow.config import ModelConfig, SuiteConfig
from mlr_mlflow.evaluate.baselines import components_for
from mlr_mlflow.evaluate.datasets import load_suite
from mlr_mlflow.evaluate.training.job import train
from mlr_mlflow.kinds import get_kind

from .conftest import SWISH

ACT = get_kind("activation").components
PRE = get_kind("preprocessing").components
REG = get_kind("regularizer").components

MODELS = [
    {"key": "relu:0", "seed": 0, "components": components_for("activation", ACT["relu"])},
    {"key": "swish:1", "seed": 1, "components": components_for("activation", SWISH)},
    {"key": "quantile:2", "seed": 2, "components": components_for("preprocessing", PRE["quantile"])},
    {"key": "l2:0", "seed": 0, "components": components_for("regularizer", REG["l2"])},
]


def payload(models, variant, datasets=("iris", "xor"), **model):
    suite = load_suite(SuiteConfig(datasets=datasets))
    cfg = dataclasses.replace(ModelConfig(), **model)
    return {"datasets": [d.payload() for d in suite], "models": models,
            "model": dataclasses.asdict(cfg), "variant": variant}


@pytest.mark.parametrize("variant", ["one-pass", "full"])
def test_batched_equals_alone(variant):
    settings = {"max_epochs": 6, "patience": 2}
    together = train(payload(MODELS, variant, **settings))
    assert together["errors"] == {}
    for model in MODELS:
        alone = train(payload([model], variant, **settings))
        for ds, expected in alone["results"][model["key"]].items():
            got = together["results"][model["key"]][ds]
            assert got["test_acc"] == pytest.approx(expected["test_acc"], abs=1e-6), (model["key"], ds)
            assert got["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-4, abs=1e-6)
            assert got["epochs"] == expected["epochs"]


def test_full_training_equals_alone_exactly_in_any_batch():
    """Every number a model gets in full training is the one it gets alone, bit for bit: batched
    with other hypotheses, on all datasets or on a share of them, while its groups stop at different
    epochs (Adam's flat buffers keep every element in a vector lane, `evaluate.training.optim`)."""
    settings = {"max_epochs": 12, "patience": 2}
    datasets = ("iris", "wine", "xor")
    together = train(payload(MODELS, "full", datasets, **settings))
    assert together["errors"] == {}
    for model in MODELS:
        for share in (datasets, ("wine",), ("iris", "xor")):
            alone = train(payload([model], "full", share, **settings))
            assert alone["results"][model["key"]] == {d: together["results"][model["key"]][d] for d in share}


def test_scores_do_not_depend_on_a_model_s_place_in_the_batch():
    """digits: 10 classes and 203 validation rows, so the output block of every other model in a
    batch started off a 64-byte line, and the CPU matmul rounded its validation logits differently
    from the same model alone (last-bit changes of val_loss). Scores are now computed with each
    model's block aligned: equal bit for bit."""
    together = train(payload(MODELS, "one-pass", ("digits",)))
    for model in MODELS[1:]:
        alone = train(payload([model], "one-pass", ("digits",)))
        assert alone["results"][model["key"]] == together["results"][model["key"]]


def test_a_group_whose_models_all_stopped_takes_no_more_steps():
    """Once every model of a group has stopped, the group is left out: no forward pass and no Adam
    step (its step count is its own epochs' minibatches), while another group trains on."""
    import lightning.pytorch as pl

    from mlr_mlflow.evaluate.training.job import _build_groups, _fit
    from mlr_mlflow.evaluate.training.model import EnsembleModule, Guard
    from mlr_mlflow.hypothesis import load_function

    data = payload(MODELS[:1], "full", ("iris", "xor"))
    guard = Guard()
    specs = _build_groups(data, lambda source, kind: load_function(source, kind), guard)
    module = EnsembleModule(specs, (64, 64), 0.01, 8, patience=1, guard=guard)
    _fit(pl, module, True, 30, guard)
    optimizer = module.trainer.optimizers[0]
    trained = [max(module.epochs_trained(i, 30)) for i in range(len(module.groups))]
    assert len(set(trained)) > 1  # the groups stopped at different epochs
    for i, group in enumerate(module.groups):
        steps = optimizer.state[optimizer.flats[i].param]["step"]
        assert int(steps) == trained[i] * -(-group.n_train // 8), (group.spec.dataset, trained)


def test_one_pass_trains_and_seeds_matter():
    out = train(payload([{**MODELS[0], "key": f"r:{s}", "seed": s} for s in (0, 1)], "one-pass"))
    r0, r1 = out["results"]["r:0"]["xor"], out["results"]["r:1"]["xor"]
    assert r0["epochs"] == 1 and r0["test_acc"] > 0.6
    assert (r0["test_acc"], r0["test_loss"]) != (r1["test_acc"], r1["test_loss"])


def test_full_variant_stops_early_per_model():
    out = train(payload(MODELS[:2], "full", max_epochs=40, patience=1))
    epochs = [r["epochs"] for m in out["results"].values() for r in m.values()]
    assert all(1 <= e <= 40 for e in epochs) and min(epochs) < 40


def test_broken_preprocessing_fails_only_its_model():
    bad = {"key": "bad:0", "seed": 0, "components": components_for(
        "preprocessing", "def preprocess(X_train, X_test):\n    return X_train / 0, X_test / 0\n")}
    out = train(payload([MODELS[0], bad], "one-pass"))
    assert "bad:0" in out["errors"] and "NaN or inf" in out["errors"]["bad:0"]
    assert "relu:0" in out["results"]


def test_a_hypothesis_cannot_write_into_other_models(monkeypatch):
    """Defence in depth below the static checks (which refuse `out=`): each hypothesis gets its own
    memory, so writing past its slice of the stacked tensors reaches nobody else."""
    from mlr_mlflow.hypothesis import load_function

    monkeypatch.setattr("mlr_mlflow.validate.loader.load_checked", load_function)  # static layer bypassed
    hostile = ("import torch\n\ndef activation(x):\n    v = x.detach()\n"
               "    torch.cat([torch.zeros_like(x)] * 3, out=v)\n    return torch.relu(x)\n")
    sly_reg = ("import torch\n\ndef regularizer(params):\n    q = params[0].detach()\n"
               "    torch.cat([torch.zeros_like(q)] * 3, out=q)\n    return torch.zeros(())\n")
    attackers = [
        {"key": "act:0", "seed": 0, "components": components_for("activation", hostile)},
        {"key": "reg:0", "seed": 0, "components": components_for("regularizer", sly_reg)},
    ]
    victim = {"key": "victim:1", "seed": 1, "components": components_for("activation", ACT["relu"])}
    alone = train(payload([victim], "one-pass"))["results"]["victim:1"]
    batched = train(payload([*attackers, victim], "one-pass"))["results"]["victim:1"]
    for ds in alone:
        assert batched[ds]["test_acc"] == pytest.approx(alone[ds]["test_acc"], abs=1e-6)
        assert batched[ds]["test_loss"] == pytest.approx(alone[ds]["test_loss"], rel=1e-4)


def test_hypothesis_failing_during_training_fails_alone():
    """Exceptions, malformed outputs and a spent time budget inside the fit fail only their model;
    the others get exactly the result they get alone (no retry, no lost batch)."""
    hang = "def activation(x):\n    while x.shape[-1] == 64:\n        x = x + 0\n    return x\n"
    boom = "def activation(x):\n    if x.shape[0] == 8:\n        raise ValueError('boom')\n    return x\n"
    short = "def activation(x):\n    return x[:2] if x.shape[0] == 8 else x\n"
    reg = "import torch\n\ndef regularizer(params):\n    return params[0][100000]\n"
    bad = {"hang:0": ("activation", hang), "boom:0": ("activation", boom),
           "short:0": ("activation", short), "reg:0": ("regularizer", reg)}
    models = [MODELS[1], *({"key": k, "seed": 0, "components": components_for(kind, src)}
                           for k, (kind, src) in bad.items())]
    out = train({**payload(models, "one-pass"), "budget_s": 1.0})
    assert set(out["errors"]) == set(bad) and set(out["results"]) == {"swish:1"}
    assert "training time budget of 1 s" in out["errors"]["hang:0"]
    assert "ValueError: boom" in out["errors"]["boom:0"]
    assert "shape [2, 64]" in out["errors"]["short:0"]
    assert "IndexError" in out["errors"]["reg:0"]
    alone = train(payload([MODELS[1]], "one-pass"))
    assert out["results"]["swish:1"] == alone["results"]["swish:1"]


# --- grouped calls: one call per layer and step for a row-independent function ----------------
ROWWISE = "import torch\n\ndef activation(x):\n    return x - x.mean(-1, keepdim=True) + torch.relu(x)\n"
BATCHWISE = "import torch\n\ndef activation(x):\n    return torch.relu(x - x.mean(0))\n"


def _counting_loader(monkeypatch, calls, limits=None):
    """The restricted loader (static checks skipped), each function wrapped to count its calls
    and, past limits[source] calls, to raise."""
    from mlr_mlflow.hypothesis import load_function

    def load(source, kind):
        fn = load_function(source, kind)

        def counted(*args):
            calls[source] = calls.get(source, 0) + 1
            if limits and calls[source] > limits.get(source, float("inf")):
                raise RuntimeError("called after its model stopped")
            return fn(*args)
        return counted
    monkeypatch.setattr("mlr_mlflow.validate.loader.load_checked", load)


def test_grouped_calls_equal_per_model_calls_exactly():
    models = [*MODELS, {"key": "row:1", "seed": 1, "components": components_for("activation", ROWWISE)},
              {"key": "batch:0", "seed": 0, "components": components_for("activation", BATCHWISE)}]
    settings = {"max_epochs": 4, "patience": 1}
    grouped = train(payload(models, "full", **settings))
    per_model = train({**payload(models, "full", **settings), "grouped": False})
    assert grouped["errors"] == {} and grouped["results"] == per_model["results"]


def test_row_independent_functions_are_called_once_per_layer_and_step(monkeypatch):
    from mlr_mlflow.evaluate.training.calls import PROBE_CHUNKS

    calls = {}
    _counting_loader(monkeypatch, calls)
    models = [{"key": f"{name}:{s}", "seed": s, "components": components_for("activation", src)}
              for name, src in (("swish", SWISH), ("batch", BATCHWISE)) for s in (0, 1, 2)]
    job = payload(models, "one-pass")
    out = train(job)
    assert out["errors"] == {}
    steps = max(-(-len(d["X_train"]) // job["model"]["batch_size"]) for d in job["datasets"])
    layers = len(job["model"]["hidden"])
    probe = 1 + len(PROBE_CHUNKS)  # one width
    recheck = 2  # after training, its first and one drawn call again (calls.Recorded)
    assert calls[SWISH] == layers * (steps + 2) + probe + recheck  # training steps, then test and val
    per_model_steps = sum(-(-len(d["X_train"]) // 8) for d in job["datasets"]) * 3
    assert calls[BATCHWISE] == layers * (per_model_steps + 2 * 2 * 3) + probe + recheck


def test_a_grouped_hypothesis_that_fails_fails_alone():
    """It passes the probe (at most 52 rows), then raises on the stacked evaluation rows."""
    late = "import torch\n\ndef activation(x):\n    if x.shape[0] > 100:\n        raise ValueError('late')\n" \
           "    return torch.relu(x)\n"
    bad = [{"key": f"late:{s}", "seed": s, "components": components_for("activation", late)} for s in (0, 1, 2)]
    out = train(payload([*bad, MODELS[1]], "one-pass"))
    assert set(out["errors"]) == {"late:0", "late:1", "late:2"}
    assert all("ValueError: late" in reason for reason in out["errors"].values())
    assert out["results"]["swish:1"] == train(payload([MODELS[1]], "one-pass"))["results"]["swish:1"]


def test_a_stopped_model_calls_nothing(monkeypatch):
    """Batched with a model that trains longer, an early stopper makes exactly its calls alone;
    a failure after its stop (here: any call past that count) does not fail it."""
    stopper_src = "import torch\n\ndef activation(x):\n    return torch.relu(x) * 1.0\n"
    tanh = "import torch\n\ndef activation(x):\n    return torch.tanh(x)\n"
    stopper = {"key": "stop:5", "seed": 5, "components": components_for("activation", stopper_src)}
    longer = {"key": "long:2", "seed": 2, "components": components_for("activation", tanh)}
    settings = {"max_epochs": 30, "patience": 1}
    alone_calls = {}
    _counting_loader(monkeypatch, alone_calls)
    alone = train(payload([stopper], "full", **settings))
    batched_calls = {}
    _counting_loader(monkeypatch, batched_calls, limits={stopper_src: alone_calls[stopper_src]})
    batched = train(payload([stopper, longer], "full", **settings))
    epochs = {k: max(r["epochs"] for r in v.values()) for k, v in batched["results"].items()}
    assert epochs["stop:5"] < epochs["long:2"]
    assert batched["errors"] == {} and batched_calls[stopper_src] == alone_calls[stopper_src]
    assert batched["results"]["stop:5"] == alone["results"]["stop:5"]
