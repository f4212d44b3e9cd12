"""Semantic duplicates: behavioural fingerprints (computed in the sandbox) tell a rewrite of a known
hypothesis, or of one of the kind's references, from a genuinely different one; a round records
those without training them."""
import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlr_mlflow.config import Config, with_overrides
from mlr_mlflow.fingerprint import Deduplicator, compute, decode, encode, matches
from mlr_mlflow.generate import Context, Proposal
from mlr_mlflow.kinds import get_kind
from mlr_mlflow.proposals import collect, open_dedup
from mlr_mlflow.tracking import connect, names

# per kind: a known hypothesis, an identity rewrite of it, and a genuinely different one
CASES = {
    "activation": (
        "import torch\n\ndef activation(x):\n    return x * torch.tanh(x)\n",
        "import torch\n\ndef activation(x):\n    y = torch.tanh(x) * x\n    return (x - x) + y * 1.0\n",
        "import torch\n\ndef activation(x):\n    return x * torch.tanh(2.0 * x)\n"),
    "preprocessing": (
        "import numpy as np\n\ndef preprocess(X_train, X_test):\n    m = X_train.mean(0)\n"
        "    s = X_train.std(0) + 1e-8\n    return np.tanh((X_train - m) / s), np.tanh((X_test - m) / s)\n",
        "import numpy as np\n\ndef preprocess(X_train, X_test):\n    mu = np.mean(X_train, axis=0)\n"
        "    sd = np.std(X_train, axis=0) + 1e-8\n    f = lambda X: np.tanh(X / sd - mu / sd)\n"
        "    return f(X_train), f(X_test)\n",
        "import numpy as np\n\ndef preprocess(X_train, X_test):\n    m = np.median(X_train, axis=0)\n"
        "    s = X_train.std(0) + 1e-8\n    return np.tanh((X_train - m) / s), np.tanh((X_test - m) / s)\n"),
    "regularizer": (
        "def regularizer(params):\n    return 1e-4 * sum(p.abs().pow(3).sum() for p in params)\n",
        # a constant offset changes nothing training sees
        "def regularizer(params):\n    return sum(1e-4 * (p * p * p.abs()).sum() for p in params) + 2.0\n",
        "def regularizer(params):\n    return 3e-4 * sum(p.abs().pow(3).sum() for p in params)\n"),
}
RELU_SPELLINGS = [
    "import torch.nn.functional as F\n\ndef activation(x):\n    return F.relu(x)\n",
    "import torch\n\ndef activation(x):\n    return torch.relu(x)\n",
    "import torch\n\ndef activation(x):\n    return (x - x) + torch.relu(x)\n",
    "import torch\n\ndef activation(x):\n    return torch.clamp(x, min=0)\n",
]
DETACHED_L2 = ("def regularizer(params):\n"
               "    return (1e-4 * sum(p.pow(2).sum() for p in params)).detach()\n")


def references(kind: str, config: Config = Config()) -> dict:
    sets, component = config.kinds[kind], get_kind(kind).component
    return {n: component(n) for n in (*sets.baselines, *sets.sota)}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_an_identity_rewrite_is_a_duplicate_and_a_different_hypothesis_is_not(kind, sandbox):
    known, rewrite, different = compute(kind, list(CASES[kind]), sandbox)
    assert known is not None and rewrite is not None and different is not None
    assert matches(known, rewrite) and matches(rewrite, known)
    assert not matches(known, different)
    # the tag a run carries decodes to the same verdict
    assert matches(decode(encode(known)), rewrite) and not matches(decode(encode(known)), different)


def test_reference_spellings_are_rediscoveries_and_new_behaviour_is_remembered(sandbox):
    dedup = Deduplicator("activation", sandbox, references("activation"))
    for source in RELU_SPELLINGS:
        assert dedup.check(source)[1] == ("rediscovery", "relu"), source
    swish = "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(x)\n"
    assert dedup.check(swish)[1] == ("rediscovery", "silu")
    known, rewrite, different = CASES["activation"]
    fingerprint, verdict = dedup.check(known)
    assert verdict is None
    dedup.remember("run:abc", fingerprint)
    assert dedup.check(rewrite)[1] == ("duplicate", "run:abc")
    assert dedup.check(different)[1] is None
    assert dedup.check("def activation(x):\n    return open('x')\n") == (None, None)  # invalid: no verdict


def test_a_detached_or_constant_penalty_is_the_none_regularizer(sandbox):
    dedup = Deduplicator("regularizer", sandbox, references("regularizer"))
    assert dedup.check(DETACHED_L2)[1] == ("rediscovery", "none")
    assert dedup.check("import torch\n\ndef regularizer(params):\n    return torch.ones(()) * 3\n")[1] \
        == ("rediscovery", "none")
    assert dedup.check(CASES["regularizer"][0])[1] is None


class Fixed:
    name = "fixed"

    def __init__(self, sources):
        self.sources = sources

    def propose(self, context):
        for source in self.sources:
            yield Proposal(source=source)


class Summary:
    stop_reason = None
    duplicates = semantic_duplicates = rediscoveries = generation_failures = generated = 0


def test_dedup_off_lets_relu_in_disguise_through(tracking_uri):
    config = with_overrides(Config(), discover={"dedup": False})
    client = connect(tracking_uri)
    exp = client.create_experiment("x")
    with open_dedup(client, config, exp, "activation") as dedup:
        assert dedup is None
        hypotheses, records, _ = collect(Fixed(RELU_SPELLINGS), Context("activation"), "activation",
                                         len(RELU_SPELLINGS), {}, 100, Summary(), dedup)
    assert len(hypotheses) == len(RELU_SPELLINGS) and {r["status"] for r in records} == {"accepted"}


def test_a_round_records_duplicates_and_rediscoveries_without_training_them(tracking_uri, tmp_path):
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.rounds import Round

    config = with_overrides(Config(), suite={"datasets": ("iris",)},
                            discover={"screen": "one-pass", "parents": 0},
                            confirm={"enabled": False})
    client = connect(tracking_uri)
    known, rewrite, _ = CASES["activation"]
    # evaluated outside any round (so its run has no fingerprint tag yet: the round adds it)
    [earlier] = Evaluator(client, config).evaluate([Hypothesis("activation", known)], "one-pass", 1)
    assert earlier.valid
    other = "import torch\n\ndef activation(x):\n    return torch.atan(x) + 0.1 * x\n"
    other_rewrite = "import torch\n\ndef activation(x):\n    return 0.1 * x + torch.atan(x) * 1.0\n"
    sources = [rewrite, RELU_SPELLINGS[0], other, other_rewrite]
    summary = Round(client, config, "activation", generator=Fixed(sources)).run(
        n=4, top_k=0, seeds=1, seed=0)
    out = summary.to_dict()
    assert (out["generated"], out["semantic_duplicates"], out["rediscoveries"]) == (1, 2, 1)
    assert out["duplicates"] == 2
    exp = client.get_run(summary.round_run_id).info.experiment_id
    kids = MlflowClient(tracking_uri).search_runs(
        [exp], f"tags.`{names.PARENT_RUN_ID}` = '{summary.round_run_id}'")
    by_status = {}
    for run in kids:
        by_status.setdefault(run.data.tags[names.STATUS], []).append(run)
    [trained] = [r for r in kids if r.data.tags[names.VARIANT] == "one-pass"]
    assert names.FINGERPRINT in trained.data.tags  # carried for the next rounds
    dups = {r.data.tags[names.DUPLICATE_OF]: r for r in by_status["duplicate"]}
    assert set(dups) == {earlier.run_id, trained.info.run_id}
    assert all(names.B_WR not in r.data.metrics for r in by_status["duplicate"])
    [rediscovery] = by_status["rediscovery"]
    assert rediscovery.data.tags[names.REDISCOVERY_OF] == "relu"
    assert names.B_WR not in rediscovery.data.metrics
    path = client.download_artifacts(rediscovery.info.run_id, names.HYPOTHESIS_ARTIFACT, str(tmp_path))
    assert Path(path).read_text() == RELU_SPELLINGS[0]
    # the earlier run got its fingerprint tag; the round's metrics count what was turned away
    assert decode(client.get_run(earlier.run_id).data.tags[names.FINGERPRINT]) is not None
    metrics = client.get_run(summary.round_run_id).data.metrics
    assert (metrics["semantic_duplicates"], metrics["rediscoveries"]) == (2, 1)
    gen = json.loads(Path(client.download_artifacts(summary.round_run_id, names.GENERATION_ARTIFACT,
                                                    str(tmp_path))).read_text())
    assert [r["status"] for r in gen] == ["duplicate", "rediscovery", "accepted", "duplicate"]
