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
from mlr_mlflow.round.proposals import collect, open_dedup
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


def test_dedup_off_lets_relu_in_disguise_through():
    config = with_overrides(Config(), discover={"dedup": False})
    with open_dedup(None, config, "", "activation") as dedup:  # off: it never looks at a store
        assert dedup is None
        hypotheses, records, _ = collect(Fixed(RELU_SPELLINGS), Context("activation"), "activation",
                                         len(RELU_SPELLINGS), {}, 100, Summary(), dedup)
    assert len(hypotheses) == len(RELU_SPELLINGS) and {r["status"] for r in records} == {"accepted"}


def test_a_later_proposal_behaving_like_an_accepted_one_of_the_same_round_is_a_duplicate(shared_uri):
    import uuid

    client = connect(shared_uri)
    exp = client.create_experiment(f"fingerprint-{uuid.uuid4().hex[:8]}")
    other = "import torch\n\ndef activation(x):\n    return torch.atan(x) + 0.1 * x\n"
    other_rewrite = "import torch\n\ndef activation(x):\n    return 0.1 * x + torch.atan(x) * 1.0\n"
    summary = Summary()
    with open_dedup(client, Config(), exp, "activation") as dedup:
        hypotheses, records, metrics = collect(Fixed([other, other_rewrite, other]), Context("activation"),
                                               "activation", 3, {}, 100, summary, dedup)
    assert [r["status"] for r in records] == ["accepted", "duplicate", "duplicate"]
    assert records[1]["of_sha256"] == hypotheses[0].sha256 and records[1]["of_run"] == "this round"
    assert "source" in records[1] and "source" not in records[2]  # the third is the same text
    assert names.FINGERPRINT in hypotheses[0].origin["tags"]  # its runs will carry it
    assert (metrics["duplicates"], metrics["semantic_duplicates"], metrics["rediscoveries"]) == (2, 1, 0)


def test_a_round_records_duplicates_and_rediscoveries_without_training_them(shared_uri, tmp_path):
    import dataclasses
    import uuid

    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import create_run, experiment_id, finish, log_artifact_files

    config = with_overrides(Config(), suite={"datasets": ("iris",)},
                            discover={"screen": "one-pass", "parents": 0})
    config = dataclasses.replace(config, experiment_prefix=f"fp-{uuid.uuid4().hex[:8]}-")
    client = connect(shared_uri)
    exp = experiment_id(client, config.experiment_name("activation"))
    known, rewrite, _ = CASES["activation"]
    # a hypothesis evaluated before fingerprints existed (no mlr.fingerprint tag): a real run
    earlier = create_run(client, exp, "earlier", {
        names.ROLE: "hypothesis", names.KIND: "activation", names.VARIANT: "one-pass",
        names.HYPOTHESIS_SHA256: Hypothesis("activation", known).sha256})
    log_artifact_files(client, earlier, {names.HYPOTHESIS_ARTIFACT: known})
    finish(client, earlier, status_tag="evaluated")
    summary = Round(client, config, "activation", generator=Fixed([rewrite, RELU_SPELLINGS[0]])).run(
        n=2, top_k=0, seeds=1, seed=0)
    out = summary.to_dict()
    assert (out["generated"], out["duplicates"], out["semantic_duplicates"], out["rediscoveries"]) \
        == (0, 1, 1, 1)
    kids = MlflowClient(shared_uri).search_runs(
        [exp], f"tags.`{names.PARENT_RUN_ID}` = '{summary.round_run_id}'")
    assert sorted(r.data.tags[names.STATUS] for r in kids) == ["duplicate", "rediscovery"]  # nothing trained
    by_status = {r.data.tags[names.STATUS]: r for r in kids}
    assert by_status["duplicate"].data.tags[names.DUPLICATE_OF] == earlier
    assert by_status["rediscovery"].data.tags[names.REDISCOVERY_OF] == "relu"
    assert all(names.B_WR not in r.data.metrics and r.info.status == "FINISHED" for r in kids)
    path = client.download_artifacts(by_status["rediscovery"].info.run_id, names.HYPOTHESIS_ARTIFACT,
                                     str(tmp_path))
    assert Path(path).read_text() == RELU_SPELLINGS[0]
    # the earlier run got its fingerprint tag; the round's metrics count what was turned away
    assert decode(client.get_run(earlier).data.tags[names.FINGERPRINT]) is not None
    metrics = client.get_run(summary.round_run_id).data.metrics
    assert (metrics["semantic_duplicates"], metrics["rediscoveries"]) == (1, 1)
    gen = json.loads(Path(client.download_artifacts(summary.round_run_id, names.GENERATION_ARTIFACT,
                                                    str(tmp_path))).read_text())
    assert [r["status"] for r in gen] == ["duplicate", "rediscovery"]
    # a later round proposing the same text again: a plain (hash) duplicate of the earlier run
    again = Round(client, config, "activation", generator=Fixed([rewrite])).run(n=1, top_k=0, seeds=1)
    assert again.duplicates == 1 and again.semantic_duplicates == 0 and again.generated == 0


class Counted:
    """A real sandbox that counts the calls made into it."""

    def __init__(self, sandbox):
        self.sandbox, self.calls = sandbox, []

    def call(self, target, payload, timeout, limit=None):
        self.calls.append(len(payload.get("sources", ())))
        return self.sandbox.call(target, payload, timeout, limit)


def test_a_batch_of_proposals_is_fingerprinted_together_and_known_texts_are_never_sent(sandbox):
    """Generation asks for the texts still missing as a batch; only texts the round does not
    know by hash go to the sandbox (a round used to spend 5.2 s a hypothesis here)."""
    from mlr_mlflow.generate.symbolic import SymbolicGenerator

    counted = Counted(sandbox)
    dedup = Deduplicator("activation", counted, references("activation"))
    counted.calls.clear()  # the references' own calls
    first = next(iter(SymbolicGenerator().propose(Context("activation", seed=5)))).source
    from mlr_mlflow.hypothesis import normalized_sha256
    seen = {normalized_sha256(first): "an earlier run"}
    hypotheses, records, _ = collect(SymbolicGenerator(), Context("activation", seed=5), "activation",
                                     12, seen, 60, Summary(), dedup)
    assert len(hypotheses) == 12 and records[0]["status"] == "duplicate"
    assert sum(counted.calls) == sum(1 for r in records if r["status"] != "duplicate"
                                     or "source" in r)  # each fresh text measured once, no other


def test_a_source_that_breaks_a_batch_loses_only_its_own_fingerprint(sandbox):
    hang = "import torch\n\ndef activation(x):\n    while True:\n        x = x + 1\n    return x\n"
    good = CASES["activation"][0]
    dedup = Deduplicator("activation", sandbox, {})
    fps = dedup.fingerprint_many([good, hang, CASES["activation"][2]])
    assert fps[0] is not None and fps[1] is None and fps[2] is not None
