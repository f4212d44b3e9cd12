"""Ideas from papers (`discover --context DIR`): which files are read, which passages are chosen,
and that they reach the prompt and are recorded on the hypotheses they inspired."""
import dataclasses
import json

import pytest
from mlflow import MlflowClient

from mlr_mlflow import cli
from mlr_mlflow.config import with_overrides
from mlr_mlflow.generate import passages
from mlr_mlflow.generate.passages import context_files, passages_of, retrieve
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import connect, names

from .openai_servers import ScriptedServer, chat_body
from .test_llm import GOOD, generator, small_round_config

PDF_TEXT = ("A smooth activation function with a small negative slope keeps gradients alive for "
            "negative inputs; unlike ReLU it does not saturate on the positive side.")
MARKDOWN = ("# Gated units\n\nMultiplying the input by a sigmoid gate of itself gives a smooth, "
            "non-monotonic activation function that trains deep networks well.\n\n"
            "## Acknowledgements\n\nWe thank the reviewers and our funding agency.\n")
COOKING = "Knead the dough for ten minutes, let it rise overnight, and bake at 220 degrees."


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica, written by hand with a correct xref table."""
    stream = f"BT /F1 10 Tf 40 700 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture
def papers(tmp_path):
    where = tmp_path / "papers"
    (where / "sub").mkdir(parents=True)
    (where / "slope.pdf").write_bytes(tiny_pdf(PDF_TEXT))
    (where / "sub" / "gates.md").write_text(MARKDOWN)
    (where / "bread.txt").write_text(COOKING)
    (where / "train.py").write_text("print('not a paper')\n")
    (tmp_path / "secret.txt").write_text("a file outside the context directory " * 3)
    (where / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return where


def test_only_regular_paper_files_inside_the_directory_are_read(papers, monkeypatch):
    names_read = [p.relative_to(papers).as_posix() for p in context_files(papers)]
    assert names_read == ["bread.txt", "slope.pdf", "sub/gates.md"]  # no .py, no link out
    monkeypatch.setattr(passages, "MAX_FILE_BYTES", 200)
    assert "slope.pdf" not in [p.name for p in context_files(papers)]  # larger than the limit


def test_a_pdf_is_read_and_a_broken_one_is_skipped(papers):
    (papers / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF at all")
    found = {p.id: p.text for p in passages_of(papers)}
    assert found["slope.pdf#0"] == PDF_TEXT
    assert not any(i.startswith("broken.pdf") for i in found)
    assert found["sub/gates.md#0"].startswith("# Gated units")


def test_the_passages_closest_to_the_kind_are_chosen_and_unrelated_ones_left_out(papers):
    chosen = retrieve(papers, "activation")
    assert {p.id for p in chosen} == {"slope.pdf#0", "sub/gates.md#0"}
    assert chosen[0].score >= chosen[1].score > 0
    assert [p.id for p in retrieve(papers, "activation", shown=1)] == [chosen[0].id]


def test_passages_reach_the_prompt_and_are_recorded_on_the_runs_they_inspired(
        papers, tracking_uri, monkeypatch):
    server = ScriptedServer([(200, chat_body(GOOD))])
    try:
        gen = generator(server.url, monkeypatch, prompt="incremental")
        llm = dataclasses.replace(gen.config, context=str(papers))
        gen.config = llm
        config = with_overrides(small_round_config(llm), discover={"max_attempts_factor": 1})
        summary = Round(connect(tracking_uri), config, "activation", generator=gen).run(
            n=1, top_k=0, seeds=1)
        prompt = server.requests[0]["messages"][0]["content"]
    finally:
        server.close()
    assert PDF_TEXT in prompt and "sigmoid gate of itself" in prompt and COOKING not in prompt
    client = MlflowClient(tracking_uri)
    exp = client.get_run(summary.round_run_id).info.experiment_id
    [run] = client.search_runs([exp], f"tags.`{names.STATUS}` = 'evaluated'")
    inspired = run.data.tags[names.INSPIRED_BY].split(",")
    assert sorted(inspired) == ["slope.pdf#0", "sub/gates.md#0"]  # the bread recipe inspires nothing
    recorded = json.loads(open(client.download_artifacts(run.info.run_id, names.PASSAGES_ARTIFACT,
                                                         str(papers.parent))).read())
    assert [p["id"] for p in recorded] == inspired and recorded[0]["text"] in prompt


def test_prompt_show_prints_the_passages_chosen(papers, tracking_uri, capsys):
    code = cli.main(["prompt", "show", "--kind", "activation", "--context", str(papers),
                     "--tracking-uri", tracking_uri, "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and PDF_TEXT in out["prompt"]
    assert sorted(p["id"] for p in out["passages"]) == ["slope.pdf#0", "sub/gates.md#0"]


def test_a_scheduled_discover_job_takes_the_context_too(papers, tmp_path, tracking_uri):
    from mlr_mlflow.scheduling.jobs import execute

    config = tmp_path / "small.toml"
    config.write_text('[suite]\ndatasets = ["iris"]\n[discover]\nmax_attempts_factor = 1\n'
                      '[llm]\ntrace = false\nmax_retries = 0\n')
    server = ScriptedServer([(200, chat_body(GOOD))])
    try:
        outcome = execute("papers-night", "discover", {
            "kind": "activation", "generator": "llm", "base_url": server.url, "model": "m",
            "prompt": "novelty", "context": str(papers), "n": 1, "top_k": 0, "seeds": 1},
            tracking_uri, str(config))
        prompt = server.requests[0]["messages"][0]["content"]
    finally:
        server.close()
    assert outcome["ok"], outcome.get("error")
    assert PDF_TEXT in prompt
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("mlr-activation").experiment_id
    [run] = client.search_runs([exp], f"tags.`{names.STATUS}` = 'evaluated'")
    assert "slope.pdf#0" in run.data.tags[names.INSPIRED_BY]
