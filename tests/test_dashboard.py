"""The dashboard's data and page on real stores: empty, only invalid hypotheses, real rounds."""
import json
import re
import socket

from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.dashboard import data
from mlr_mlflow.dashboard.page import SECTIONS
from mlr_mlflow.tracking.dashboard_queries import snapshot

from .conftest import write


def dashboard(capsys, uri, out, *extra):
    code = main(["dashboard", "--tracking-uri", uri, "--out", str(out), "--json", *extra])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out.strip().splitlines()[-1]) if code == 0 else None), captured


def sections(html: str) -> dict[str, str]:
    """section id -> its HTML."""
    return dict(re.findall(r'<section id="(\w+)">(.*?)</section>', html, flags=re.S))


def test_empty_store_gives_a_page_that_says_none_yet_in_every_section(tmp_path, tracking_uri, capsys):
    code, out, _ = dashboard(capsys, tracking_uri, tmp_path / "board")
    assert code == 0 and out["rounds"] == 0 and out["hypotheses"] == 0
    html = (tmp_path / "board" / "index.html").read_text()
    found = sections(html)
    assert list(found) == [sid for sid, _ in SECTIONS]
    assert all('<p class="none">' in body for body in found.values())
    # self-contained: Plotly's bundle is inlined, nothing is loaded from elsewhere
    assert "<script src" not in html and len(html) > 1_000_000  # Plotly's bundle is in the page
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html)


def test_unreachable_store_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, captured = dashboard(capsys, f"http://127.0.0.1:{port}", tmp_path / "board")
    assert code == 2
    assert len(captured.err.strip().splitlines()) == 1 and "cannot reach" in captured.err
    assert not (tmp_path / "board").exists()


def test_store_with_only_invalid_hypotheses_shows_their_rejections(tmp_path, tracking_uri, capsys):
    bad = write(tmp_path, "net.py", "import socket\n\ndef activation(x):\n    return x\n")
    assert main(["evaluate", str(bad), "--kind", "activation", "--tracking-uri", tracking_uri]) == 1
    capsys.readouterr()
    code, out, _ = dashboard(capsys, tracking_uri, tmp_path / "board")
    assert code == 0 and out["hypotheses"] == 1
    found = sections((tmp_path / "board" / "index.html").read_text())
    assert "No evaluated hypothesis yet" in found["leaderboard"]
    rows = data.rejections(snapshot(MlflowClient(tracking_uri)))
    assert [(r["kind"], r["stage"], r["count"]) for r in rows] == [("activation", "static", 1)]
    assert "<table>" in found["rejections"] and "static" in found["rejections"]
    assert "No reward model yet" in found["reward"]


def test_dashboard_data_of_real_rounds(rounds_store):
    snap = snapshot(MlflowClient(rounds_store["uri"]))
    board = data.leaderboard(snap)
    assert len(board) == 8 and len({r["sha256"] for r in board}) == 8  # one row per hypothesis
    assert [r["b_wr"] for r in board] == sorted((r["b_wr"] for r in board), reverse=True)
    assert {r["round"] for r in board} == {1, 2}
    [series] = data.discovery(snap)
    assert series["generator"] == "symbolic" and series["rounds"] == [1, 2]
    assert series["evaluations"] == list(range(1, 11))
    assert series["best"] == sorted(series["best"])  # a running best never falls
    [row] = data.generators(snap)
    assert row["hypotheses"] == 8 and row["pass_rate"] == 1.0 and row["evaluated"] == 8
    graph = data.lineage(snap)
    assert graph["edges"], "round 2 breeds from round 1: its mutations name their parents"
    edge = graph["edges"][0]
    assert edge["parent"]["round_id"] != edge["child"]["round_id"]
    assert edge["diff"].startswith(f"--- {edge['parent']['sha256'][:8]}")
    assert data.reward(snap)["versions"] == [] and data.llm_usage(snap) == []
    assert data.audits(snap) == {"verdicts": [], "intervals": [], "confirmed": []}


def test_dashboard_page_of_real_rounds_links_every_row_to_its_run(rounds_store, tmp_path, capsys):
    code, out, _ = dashboard(capsys, rounds_store["uri"], tmp_path / "board",
                             "--ui-url", "http://mlflow.example:5000/")
    assert code == 0 and out["rounds"] == 2
    found = sections((tmp_path / "board" / "index.html").read_text())
    links = re.findall(r'href="http://mlflow\.example:5000/#/experiments/(\d+)/runs/(\w+)\?',
                       found["leaderboard"])
    client = MlflowClient(rounds_store["uri"])
    assert len(links) == 8
    for exp_id, run_id in links:
        assert client.get_run(run_id).info.experiment_id == exp_id
    for sid in ("discovery", "lineage"):
        assert "plotly-graph-div" in found[sid]
