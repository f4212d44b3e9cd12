"""Reviews change what happens next: the tags, the prompt's feedback, the reward model's data, the
dashboard's discoveries, and references people add. Real sqlite stores in tmp_path."""
import json

import numpy as np
import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.generate import Context
from mlr_mlflow.generate.prompts import render
from mlr_mlflow.hypothesis import normalized_sha256
from mlr_mlflow.tracking import names, references, reviews

from .conftest import SWISH


def hypothesis_run(client, exp_id, source, *, variant="one-pass", round_id="r1", metrics=None,
                   tags=None):
    run = client.create_run(exp_id, tags={
        names.ROLE: "hypothesis", names.VARIANT: variant, names.STATUS: "evaluated",
        names.HYPOTHESIS_SHA256: normalized_sha256(source), names.KIND: "activation",
        names.ROUND_ID: round_id, **(tags or {})})
    client.log_text(run.info.run_id, source, names.HYPOTHESIS_ARTIFACT)
    for key, value in {names.B_WR: 0.5, names.VAL_B_WR: 0.5, **(metrics or {})}.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture
def store(tracking_uri):
    client = MlflowClient(tracking_uri)
    exp_id = client.create_experiment("mlr-activation", tags={
        names.EXPERIMENT_KIND: names.MODEL_DEVELOPMENT})
    return client, exp_id


def test_a_review_lands_on_every_run_of_the_hypothesis_and_one_set_in_the_ui_counts(store):
    client, exp_id = store
    one_pass = hypothesis_run(client, exp_id, SWISH)
    full = hypothesis_run(client, exp_id, SWISH, variant="full")
    reviews.write(client, [one_pass, full], "reject", "shortcut", "reads the labels", by="ana")
    for run_id in (one_pass, full):
        tags = client.get_run(run_id).data.tags
        assert (tags[names.REVIEW_VERDICT], tags[names.REVIEW_REASON], tags[names.REVIEW_NOTE],
                tags[names.REVIEW_BY]) == ("reject", "shortcut", "reads the labels", "ana")
        assert float(tags[names.REVIEW_AT]) > 0
    assert reviews.demoted(client, exp_id) == {normalized_sha256(SWISH)}
    # a tag typed in the MLflow UI on one run of another hypothesis: a review too
    other = "def activation(x):\n    return x * 0\n"
    ui_run = hypothesis_run(client, exp_id, other, variant="full")
    client.set_tag(ui_run, names.REVIEW_VERDICT, "Approve")
    assert reviews.reviews(client, exp_id)[normalized_sha256(other)].verdict == "approve"
    assert normalized_sha256(other) not in reviews.awaiting(client, exp_id)


def test_a_rejection_needs_one_of_the_reasons_and_a_review_needs_something(store):
    client, exp_id = store
    run_id = hypothesis_run(client, exp_id, SWISH)
    with pytest.raises(reviews.ReviewError, match="needs a reason"):
        reviews.write(client, [run_id], "reject", "", "no")
    with pytest.raises(reviews.ReviewError, match="unknown verdict"):
        reviews.write(client, [run_id], "maybe")
    with pytest.raises(reviews.ReviewError, match="nothing to record"):
        reviews.write(client, [run_id], "")
    assert names.REVIEW_VERDICT not in client.get_run(run_id).data.tags


def test_feedback_names_the_code_the_reason_and_the_note_and_reaches_the_prompt(store):
    client, exp_id = store
    run_id = hypothesis_run(client, exp_id, SWISH)
    reviews.write(client, [run_id], "reject", "not-novel", "this is SiLU, known since 2017")
    lines = reviews.feedback(client, exp_id)
    assert lines == ["reviewers rejected `return x * torch.sigmoid(x)` (not-novel) because: this is "
                     "SiLU, known since 2017"]
    for style in ("incremental", "novelty"):
        text = render(style, Context("activation", feedback=tuple(lines)))
        assert "this is SiLU, known since 2017" in text and "reviewers rejected" in text
    assert "reviewed" not in render("incremental", Context("activation"))


def test_a_shortcut_leaves_the_dashboards_discoveries_and_is_no_parent(store):
    from mlr_mlflow.dashboard import data
    from mlr_mlflow.round.proposals import known_hypotheses
    from mlr_mlflow.tracking.dashboard_queries import snapshot

    client, exp_id = store
    cheat = "def activation(x):\n    return x * 3.0\n"
    honest = hypothesis_run(client, exp_id, SWISH, metrics={names.B_WR: 0.6})
    shortcut = hypothesis_run(client, exp_id, cheat, metrics={names.B_WR: 0.9, names.VAL_B_WR: 0.9})
    before = [r["sha256"] for r in data.leaderboard(snapshot(client))]
    assert before == [normalized_sha256(cheat), normalized_sha256(SWISH)]
    reviews.write(client, [shortcut], "reject", "shortcut", "")
    assert [r["run_id"] for r in data.leaderboard(snapshot(client))] == [honest]
    _, known = known_hypotheses(client, exp_id, 4)
    assert [k.sha256 for k in known] == [normalized_sha256(SWISH)]
    # a rejection as a duplicate says nothing against the number: it stays a discovery
    reviews.write(client, [shortcut], "reject", "duplicate", "")
    assert len(data.leaderboard(snapshot(client))) == 2


def test_what_awaits_review_is_in_the_round_description_and_on_the_dashboard(store):
    from mlr_mlflow.dashboard import data
    from mlr_mlflow.round.report import description
    from mlr_mlflow.round.summary import RoundSummary
    from mlr_mlflow.tracking.dashboard_queries import snapshot

    client, exp_id = store
    hypothesis_run(client, exp_id, SWISH, variant="full", tags={names.CONFIRMED: "true"})
    hypothesis_run(client, exp_id, "def activation(x):\n    return x * 0\n")  # one-pass only
    assert reviews.awaiting(client, exp_id) == [normalized_sha256(SWISH)]
    assert reviews.awaiting_by_experiment(client) == {"mlr-activation": 1}
    text = description(RoundSummary(round_run_id="x", round_id="r"), exp_id, 1, awaiting=1)
    assert "1 hypotheses of this kind await review" in text and "/mlr/review" in text
    assert [r["sha256"] for r in data.awaiting_review(snapshot(client))] == [normalized_sha256(SWISH)]


def test_scheduler_status_says_what_awaits_review(store, tmp_path, capsys):
    from .test_scheduler import schedule_file

    client, exp_id = store
    hypothesis_run(client, exp_id, SWISH, variant="full")
    path = schedule_file(tmp_path, f"sqlite:///{tmp_path}/jobs.db",
                         [("touch", "tests.sched_jobs:append", "0 3 * * *", {"path": "x"})])
    args = ["scheduler", "status", "--schedule", str(path), "--tracking-uri", client.tracking_uri]
    assert main(args) == 0
    assert "awaiting review: 1 in mlr-activation (/mlr/review)" in capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["awaiting_review"] == {
        "mlr-activation": 1}


def test_references_add_refuses_what_is_not_approved_and_confirmed(store, capsys):
    client, exp_id = store
    uri = client.tracking_uri
    plain = hypothesis_run(client, exp_id, SWISH, variant="full")
    assert main(["references", "add", plain, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not approved and confirmed" in err[0]
    reviews.write(client, [plain], "approve")
    assert main(["references", "add", plain, "--tracking-uri", uri]) == 2
    assert "not confirmed" in capsys.readouterr().err
    confirmed = hypothesis_run(client, exp_id, "def activation(x):\n    return x * 2.0\n",
                               variant="confirm", tags={names.CONFIRMED: "true"})
    assert main(["references", "add", confirmed, "--tracking-uri", uri]) == 2
    assert "not approved" in capsys.readouterr().err
    reviews.write(client, [confirmed], "approve", note="a clean win")
    assert main(["references", "add", confirmed, "--tracking-uri", uri, "--json"]) == 0
    entry = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert entry["name"] == "reviewed-" + normalized_sha256("def activation(x):\n    return x * 2.0\n")[:8]
    assert references.added(client, exp_id) == [entry]
    assert references.sources(client, exp_id, "activation") == {
        entry["name"]: "def activation(x):\n    return x * 2.0\n"}


def test_reward_train_applies_the_measured_treatment_of_rejected_hypotheses(store, tmp_path):
    from mlr_mlflow.config import Config
    from mlr_mlflow.reward import reviewed
    from mlr_mlflow.reward.registry import train

    client, exp_id = store
    shas, runs = [], {}
    for i in range(30):  # rounds of 12, 12 and 6: the newest is the holdout
        source = f"def activation(x):\n    return x * {i + 1}.0 + {i % 5}.0\n"
        target = 0.2 + 0.6 * ((i * 7) % 12) / 11
        runs[normalized_sha256(source)] = hypothesis_run(
            client, exp_id, source, round_id=f"r{1 + i // 12}",
            metrics={names.SCREEN_SCORE: target, names.B_WR: target})
        shas.append(normalized_sha256(source))
    rejected = shas[25]  # in the holdout round, measured high
    reviews.write(client, [runs[rejected]], "reject", "shortcut", "leaks the labels")
    result = train(client, Config(), "activation", features=("structural",))
    run = client.get_run(result.run_id)
    assert run.data.params["reviewed_treatment"] == reviewed.TREATMENT
    assert run.data.params["reviewed_rejected"] == "1"
    path = client.download_artifacts(result.run_id, names.HOLDOUT_PREDICTIONS_ARTIFACT, str(tmp_path))
    table = json.loads(open(path).read())
    measured = dict(zip([row[0] for row in table["data"]],
                        [row[table["columns"].index("measured")] for row in table["data"]]))
    if reviewed.TREATMENT == "negative":
        assert measured[rejected] == pytest.approx(min(measured.values()))
        assert measured[rejected] < max(v for s, v in measured.items() if s != rejected)
    else:
        assert rejected not in measured


def test_hard_negatives_and_dropping_treat_only_the_rejected(store):
    from mlr_mlflow.reward import reviewed
    from mlr_mlflow.reward.ranker import Dataset

    data = Dataset("activation", ["a", "b", "c"], ["sa", "sb", "sc"], np.array([0.3, 0.9, 0.5]),
                   np.array([0.3, 0.9, 0.5]), ["r", "r", "r"], ["g", "g", "g"], ["", "", ""])
    negative = reviewed.apply(data, {"sb"}, "negative")
    assert negative.target.tolist() == pytest.approx([0.3, 0.3, 0.5])
    assert data.target.tolist() == pytest.approx([0.3, 0.9, 0.5])  # the caller's data is untouched
    assert reviewed.apply(data, {"sb"}, "drop").shas == ["sa", "sc"]


@pytest.mark.slow
def test_references_add_changes_the_next_evaluations_bsota_references(tracking_uri, small_config):
    """After `references add`, an evaluation trains the added reference once (a baseline run of its
    own, cached under its source's key) and counts it in BSOTA-WR; the baselines stay as they were."""
    from mlr_mlflow.config import with_overrides
    from mlr_mlflow.evaluate.baselines import get_references
    from mlr_mlflow.evaluate.datasets import load_suite
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect, experiment_id
    from mlr_mlflow.tracking.queries import search

    config = with_overrides(small_config, suite={"datasets": ("iris",)})
    client = connect(tracking_uri)
    exp_id = experiment_id(client, config.experiment_name("activation"))
    source = "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(1.5 * x)\n"
    run_id = hypothesis_run(client, exp_id, source, variant="confirm", tags={names.CONFIRMED: "true"})
    reviews.write(client, [run_id], "approve")
    suite = load_suite(config.suite)
    base_exp = experiment_id(client, config.baselines_experiment_name("activation"))
    _, before = get_references(client, base_exp, "activation", "one-pass", [0], suite, config)
    assert main(["references", "add", run_id, "--tracking-uri", tracking_uri]) == 0
    _, after = get_references(client, base_exp, "activation", "one-pass", [0], suite, config)
    added = "reviewed-" + normalized_sha256(source)[:8]
    assert set(after) == set(before) | {added}
    runs = search(client, [base_exp], f"tags.`{names.BASELINE_COMPONENT}` = '{added}'")
    assert len(runs) == 1 and runs[0].data.tags[names.BASELINE_KEY] not in {
        r.data.tags[names.BASELINE_KEY] for r in search(client, [base_exp], "")
        if r.data.tags.get(names.BASELINE_COMPONENT) != added}
    [ev] = Evaluator(client, config).evaluate([Hypothesis("activation", SWISH, "user")], "one-pass", 1)
    assert ev.valid and 0.0 <= ev.bsota_wr <= 1.0
    # the evaluation found the added reference's results in the cache, or trained them for its seeds
    assert search(client, [base_exp], f"tags.`{names.BASELINE_COMPONENT}` = '{added}'")


@pytest.mark.slow
def test_the_next_llm_prompt_holds_the_reviewers_note(tracking_uri, monkeypatch):
    """A real round with the llm generator, against a scripted OpenAI-compatible HTTP server: the
    prompt it sends carries what the reviewer wrote."""
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import connect, experiment_id

    from .openai_servers import ScriptedServer, chat_body
    from .test_llm import generator, small_round_config

    server = ScriptedServer([(200, chat_body("```python\nimport os\n\ndef activation(x):\n"
                                             "    return x\n```"))])
    try:
        gen = generator(server.url, monkeypatch)
        config = small_round_config(gen.config)
        client = connect(tracking_uri)
        exp_id = experiment_id(client, config.experiment_name("activation"))
        run_id = hypothesis_run(client, exp_id, SWISH)
        reviews.write(client, [run_id], "reject", "not-novel", "SiLU again: try something new")
        Round(client, config, "activation", generator=gen).run(n=1, top_k=0, seeds=1)
        prompt = server.requests[0]["messages"][0]["content"]
        assert "reviewers rejected `return x * torch.sigmoid(x)` (not-novel) because: SiLU again" in prompt
    finally:
        server.close()


def test_the_queue_flags_near_duplicates_of_a_reference_and_an_unsure_reward_model(store):
    from mlr_mlflow.fingerprint import encode
    from mlr_mlflow.plugins.review_queue import queue, reference_fingerprints
    from mlr_mlflow.tracking.dashboard_queries import artifact_reader

    client, exp_id = store
    relu = dict(reference_fingerprints("activation"))["relu"]
    near = "import torch\n\ndef activation(x):\n    return torch.relu(x) * 1.01\n"
    hypothesis_run(client, exp_id, near, tags={names.FINGERPRINT: encode(relu * 1.01)})
    hypothesis_run(client, exp_id, SWISH, metrics={names.REWARD_SCORE: 0.3, names.REWARD_SPREAD: 0.9})
    hypothesis_run(client, exp_id, "def activation(x):\n    return x * 0.5\n")  # nothing to see
    entries = {e["sha256"]: e for e in queue(client, {exp_id: "mlr-activation"}, artifact_reader(client))}
    assert set(entries) == {normalized_sha256(near), normalized_sha256(SWISH)}
    assert "near-duplicate of the reference relu" in entries[normalized_sha256(near)]["flags"][0]
    assert entries[normalized_sha256(SWISH)]["flags"] == ["reward model unsure: spread 0.90"]
    assert entries[normalized_sha256(SWISH)]["code"] == SWISH
