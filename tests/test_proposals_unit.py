"""Turning a generator's proposals into a round's hypotheses (no sandbox, no store): new ones are
accepted, repeats are duplicates, failures are recorded, and generation stops with its reason."""
from mlr_mlflow.generate import GenerationStopped, Proposal
from mlr_mlflow.round.proposals import collect
from mlr_mlflow.round.summary import RoundSummary

RELU = "def activation(x):\n    return x.clamp(min=0)\n"
RELU_RENAMED = "def activation(y):\n    return y.clamp(min=0)\n"  # the same normalised hash
TANH = "def activation(x):\n    return x.tanh()\n"


class Given:
    """A generator that proposes the given proposals, in order, then stops (or raises `then`)."""

    name = "given"

    def __init__(self, proposals, then=None):
        self.proposals, self.then = proposals, then

    def propose(self, context):
        yield from self.proposals
        if self.then:
            raise self.then


def run(proposals, n=10, seen=None, limit=100, then=None):
    summary = RoundSummary(round_run_id="r", round_id="x")
    hypotheses, records, metrics = collect(Given(proposals, then), None, "activation", n, seen or {},
                                           limit, summary)
    return summary, hypotheses, records, metrics


def test_new_sources_are_accepted_and_repeats_within_the_round_are_duplicates():
    summary, hypotheses, records, metrics = run([Proposal(RELU), Proposal(RELU_RENAMED), Proposal(TANH)])
    assert [h.source for h in hypotheses] == [RELU, TANH]
    assert [r["status"] for r in records] == ["accepted", "duplicate", "accepted"]
    assert records[1]["of_run"] == "this round" and records[1]["sha256"] == hypotheses[0].sha256
    assert (summary.generated, summary.duplicates, metrics["proposals"]) == (2, 1, 3)
    assert summary.stop_reason == "the generator had nothing more to propose"


def test_what_the_experiment_judged_before_is_a_duplicate_naming_its_run():
    first, *_ = run([Proposal(RELU)])[1]
    _, hypotheses, records, _ = run([Proposal(RELU), Proposal(TANH)], seen={first.sha256: "run-1"})
    assert [h.source for h in hypotheses] == [TANH]
    assert records[0]["status"] == "duplicate" and records[0]["of_run"] == "run-1"


def test_failed_proposals_are_recorded_with_their_error_and_reply():
    failed = Proposal(None, error="no code in the reply", origin={"artifacts": {"llm/reply.txt": "hello"}})
    summary, hypotheses, records, metrics = run([failed, Proposal(TANH)])
    assert records[0] == {"index": 0, "status": "failed", "error": "no code in the reply", "reply": "hello"}
    assert summary.generation_failures == metrics["generation_failures"] == 1 and len(hypotheses) == 1


def test_generation_stops_at_n_at_the_proposal_limit_or_when_the_generator_gives_up():
    summary, hypotheses, records, _ = run([Proposal(RELU), Proposal(TANH)], n=1)
    assert len(hypotheses) == len(records) == 1 and summary.stop_reason is None
    summary, _, records, _ = run([Proposal(RELU)] * 5, limit=3)
    assert len(records) == 3 and summary.stop_reason.startswith("the generator repeated itself")
    summary, hypotheses, _, _ = run([Proposal(RELU)], then=GenerationStopped("token budget spent"))
    assert len(hypotheses) == 1 and summary.stop_reason == "token budget spent"


def test_an_accepted_record_keeps_the_proposals_origin_and_tokens_are_summed():
    origin = {"tags": {"mlr.llm.model": "m"}, "metrics": {"llm.prompt_tokens": 10.0, "llm.completion_tokens": 4.0}}
    _, [h], records, metrics = run([Proposal(RELU, origin=origin),
                                    Proposal(None, error="x", origin={"metrics": {"llm.prompt_tokens": 5.0}})])
    assert h.origin == origin and records[0]["origin"] == origin and records[0]["tags"] == origin["tags"]
    assert (metrics["llm.prompt_tokens"], metrics["llm.completion_tokens"], metrics["llm.total_tokens"]) == (15.0, 4.0, 19.0)
    _, _, _, quiet = run([Proposal(TANH)])
    assert "llm.total_tokens" not in quiet  # a generator that spends no tokens logs none
