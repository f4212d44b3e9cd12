"""A resumed round acts on what the killed one recorded: records that are not what a round writes
(generation.json, selection.json, its parameters) refuse the resume, and nothing is acted on."""
import json

import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.round.resume import (RecordRefused, check_generation, check_selection, round_number,
                               round_numbers)
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import connect, names
from mlr_mlflow.tracking.runs import log_json

from .resume_kit import dead_round, small_config

SHA = "a" * 64
OTHER = "b" * 64


def accepted(**extra) -> dict:
    return {"index": 0, "status": "accepted", "sha256": SHA, "generator": "symbolic",
            "source": "def activation(x):\n    return x\n", **extra}


def selection(**extra) -> dict:
    return {"model_run_id": "abc123", "scores": {SHA: 0.5}, "spreads": {SHA: 0.1}, "picks": [SHA],
            "explored": [], "metrics": {"selection_mean_similarity": None, "pool_mean_similarity": 0.2},
            "waves": [[SHA]],
            "wave_sizes": [1], "acquisition": {"rule": "mean", "beta": 0.0}, **extra}


def test_generation_records_as_a_round_writes_them_are_kept():
    records = [accepted(origin={"tags": {"mlr.llm.model": "m", names.PARENTS: OTHER,
                                         names.FINGERPRINT: "f1:xx", "my.generator.tag": "1"},
                                "metrics": {"llm.prompt_tokens": 3.0},
                                "artifacts": {"llm/prompt.txt": "p", "llm/reply.txt": "r"}}),
               {"index": 1, "status": "failed", "error": "no usable code", "reply": None},
               {"index": 2, "status": "duplicate", "sha256": SHA, "of_run": "this round"},
               {"index": 3, "status": "rediscovery", "sha256": OTHER, "source": "x", "generator": "llm",
                "fingerprint": "f1:yy", "of_reference": "relu", "origin": {}}]
    assert check_generation("r", records) == records
    assert check_generation("r", None) is None


@pytest.mark.parametrize("records", [
    {"not": "a list"},
    [7],
    [accepted(status="evaluated")],
    [accepted(source=["not", "text"])],
    [accepted(source="x" * 300_000)],
    [accepted(sha256="../../etc")],
    [accepted(origin={"tags": {names.ROLE: "baseline"}})],  # the package's own tags
    [accepted(origin={"tags": {names.PROJECT_ENTRY_POINT: "-cimport os;#.py"}})],
    [accepted(origin={"tags": {"mlflow.parentRunId": "elsewhere"}})],
    [accepted(origin={"artifacts": {"../../outside.txt": "x"}})],
    [accepted(origin={"artifacts": {names.CONFIG_ARTIFACT: "{}"}})],  # overwrite the run's own
    [accepted(origin={"metrics": {"m": "1"}})],
    [accepted(origin={"code": "x"})],
    [accepted(tags={names.STATUS: "evaluated"})],
])
def test_tampered_generation_records_are_refused(records):
    with pytest.raises(RecordRefused, match="generation.json"):
        check_generation("r", records)


def test_selection_as_a_round_writes_it_is_kept():
    assert check_selection("r", selection(), {SHA}) == selection()
    old = {k: v for k, v in selection().items() if k not in ("waves", "wave_sizes")}  # before waves
    assert check_selection("r", old, {SHA}) == old


@pytest.mark.parametrize("changed", [
    {"picks": [OTHER], "waves": [[OTHER]]},  # a hash that is not one of the round's hypotheses
    {"scores": {SHA: 0.5, OTHER: 0.9}},
    {"picks": SHA},  # not a list
    {"picks": [SHA, SHA]},
    {"scores": [SHA]},
    {"scores": {SHA: "high"}},
    {"wave_sizes": [10 ** 9]},  # more than the round scored
    {"wave_sizes": list(range(50))},
    {"waves": [[OTHER]]},
    {"metrics": {"x": [1]}},
    {"model_run_id": {"$ne": 1}},
    {"refits": "many"},
])
def test_tampered_selection_is_refused(changed):
    with pytest.raises(RecordRefused, match="selection.json"):
        check_selection("r", selection(**changed), {SHA})
    with pytest.raises(RecordRefused):
        check_selection("r", [selection()], {SHA})


def test_round_parameters_must_be_numbers_in_range():
    assert round_numbers("r", {"n": "4", "top_k": "1", "seeds": "1", "seed": "5"}) == (4, 1, 1, 5)
    for key, value in [("n", "4; rm"), ("n", "0"), ("top_k", "-1"), ("seeds", "10000"), ("seed", "1e3"),
                       ("n", "٣")]:
        params = {"n": "4", "top_k": "1", "seeds": "1", "seed": "5", key: value}
        with pytest.raises(RecordRefused, match=key):
            round_numbers("r", params)
    assert round_number("r", {names.ROUND_NUMBER: "7"}) == 7 and round_number("r", {}) == 0
    with pytest.raises(RecordRefused, match=names.ROUND_NUMBER):
        round_number("r", {names.ROUND_NUMBER: "7 or more"})


def _children(client, run_id):
    exp = client.get_run(run_id).info.experiment_id
    return client.search_runs([exp], f"tags.`{names.PARENT_RUN_ID}` = '{run_id}'")


def test_resume_on_a_tampered_generation_json_refuses_and_runs_nothing(tracking_uri, tmp_path, capsys):
    config = small_config()
    round_id = dead_round(tracking_uri, config, n=2)
    client = MlflowClient(tracking_uri)
    records = json.loads(open(client.download_artifacts(round_id, names.GENERATION_ARTIFACT,
                                                       str(tmp_path))).read())
    [first, *_] = [r for r in records if r["status"] == "accepted"]
    first.setdefault("origin", {}).setdefault("tags", {})[names.PROJECT_ENTRY_POINT] = "-cimport os;#.py"
    log_json(client, round_id, records, names.GENERATION_ARTIFACT)
    with pytest.raises(RecordRefused, match="mlr.project.entry_point"):
        Round(connect(tracking_uri), config, "activation").resume()
    assert _children(client, round_id) == []  # nothing evaluated, no run carries the injected tag
    assert client.get_run(round_id).info.status == "FAILED"
    # the command line: exit 2, one line
    toml = tmp_path / "c.toml"
    toml.write_text('[suite]\ndatasets = ["iris", "xor"]\n[discover]\nscreen = "one-pass"\nparents = 0\n')
    code = main(["discover", "--resume", "--tracking-uri", tracking_uri, "--config", str(toml)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "refusing to resume" in err.splitlines()[-1] and "Traceback" not in err, err
    assert _children(client, round_id) == []


@pytest.mark.slow
def test_resume_on_a_selection_naming_foreign_hashes_refuses_and_trains_nothing(tracking_uri, tmp_path):
    from .faults import register_champion

    config = small_config(screen="reward", explore=0.0, eta=1)
    register_champion(tracking_uri, "activation", sign=1.0)
    round_id = dead_round(tracking_uri, config, n=4, top_k=1)
    client = MlflowClient(tracking_uri)
    saved = json.loads(open(client.download_artifacts(round_id, names.SELECTION_ARTIFACT,
                                                     str(tmp_path))).read())
    log_json(client, round_id, {**saved, "picks": [OTHER], "waves": [[OTHER]]}, names.SELECTION_ARTIFACT)
    with pytest.raises(RecordRefused, match="not the round's own hypotheses"):
        Round(connect(tracking_uri), config, "activation").resume()
    assert _children(client, round_id) == []
