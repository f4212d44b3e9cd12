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
    # a local store's links go to `mlflow ui`, and the output says so and how to change it
    assert out["ui_url"] == "http://127.0.0.1:5000/" and "--ui-url" in out["ui_url_from"]
    code, out, _ = dashboard(capsys, tracking_uri, tmp_path / "board", "--ui-url", "http://h:8123/")
    assert out["ui_url"] == "http://h:8123/" and out["ui_url_from"] == "--ui-url"
    html = (tmp_path / "board" / "index.html").read_text()
    found = sections(html)
    assert list(found) == [sid for sid, _ in SECTIONS]
    assert all('<p class="none">' in body for body in found.values())
    # light: Plotly's bundle is one file beside the page, which loads it from there, nothing from elsewhere
    assert '<script src="plotly.min.js">' in html and len(html) < 100_000
    bundle = tmp_path / "board" / "plotly.min.js"
    assert bundle.stat().st_size > 1_000_000 and "Plotly" in bundle.read_text()[:5000]
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
    rows = data.rejections(snapshot(MlflowClient(tracking_uri, registry_uri=tracking_uri)))
    assert [(r["kind"], r["stage"], r["count"]) for r in rows] == [("activation", "static", 1)]
    assert "<table>" in found["rejections"] and "static" in found["rejections"]
    assert "No reward model yet" in found["reward"]


def test_dashboard_data_of_real_rounds(rounds_store):
    # the registry named explicitly, as connect() does: another test of this process may have left
    # MLflow's global registry URI on its own store (which holds a champion)
    snap = snapshot(MlflowClient(rounds_store["uri"], registry_uri=rounds_store["uri"]))
    board = data.leaderboard(snap)
    assert len(board) == 8 and len({r["sha256"] for r in board}) == 8  # one row per hypothesis
    trained = [r for r in board if r["variant"] in ("confirm", "full")]
    # each round's selected hypothesis shows its confirmation, and ranks above the rest
    assert board[:len(trained)] == trained and [r["variant"] for r in trained] == ["confirm"] * 2
    order = [(not r["confirmed"], -data.STAGES.get(r["variant"], 0), -r["b_wr"]) for r in board]
    assert order == sorted(order)  # confirmed first, then by stage reached, then by B-WR
    assert all(r["one_pass_b_wr"] is not None for r in board)
    assert {r["round"] for r in board} == {1, 2}
    [series] = data.discovery(snap)
    assert series["generator"] == "symbolic" and series["rounds"] == [1, 2]
    assert series["evaluations"] == list(range(1, 13))  # per round 4 one-pass, 1 full, 1 confirmation
    assert series["best"] == sorted(series["best"])  # a running best never falls
    [row] = data.generators(snap)
    assert row["hypotheses"] == 8 and row["pass_rate"] == 1.0 and row["evaluated"] == 8
    graph = data.lineage(snap)
    assert graph["edges"], "round 2 breeds from round 1: its mutations name their parents"
    edge = graph["edges"][0]
    assert edge["parent"]["round_id"] != edge["child"]["round_id"]
    assert edge["diff"].startswith(f"--- {edge['parent']['sha256'][:8]}")
    assert data.reward(snap)["versions"] == [] and data.llm_usage(snap) == []
    found = data.audits(snap)
    assert found["verdicts"] == []  # nothing audited in these rounds
    assert len(found["intervals"]) == 8  # every evaluated hypothesis carries its interval
    assert all(r["ci_low"] <= r["b_wr"] <= r["ci_high"] for r in found["intervals"])
    assert found["confirmed"] == [r for r in board if r["confirmed"]]
    assert all(r["variant"] == "confirm" for r in found["confirmed"])


def test_dashboard_page_of_real_rounds_links_every_row_to_its_run(rounds_store, tmp_path, capsys):
    code, out, _ = dashboard(capsys, rounds_store["uri"], tmp_path / "board",
                             "--ui-url", "http://mlflow.example:5000/")
    assert code == 0 and out["rounds"] == 2
    found = sections((tmp_path / "board" / "index.html").read_text())
    links = re.findall(r'class="run-link" data-run-id="\w+" href="http://mlflow\.example:5000/#/experiments/(\d+)/runs/(\w+)\?',
                       found["leaderboard"])
    client = MlflowClient(rounds_store["uri"])
    assert len(links) == 8
    for exp_id, run_id in links:
        assert client.get_run(run_id).info.experiment_id == exp_id
    for sid in ("discovery", "lineage"):
        assert "plotly-graph-div" in found[sid]
    # grouped by round, the newest first, each group opening its round's run
    rounds = re.findall(r'class="round-link" href="http://mlflow\.example:5000/#/experiments/\d+/runs/(\w+)\?[^"]*">round (\d+)<',
                        found["leaderboard"])
    assert [n for _, n in rounds] == ["2", "1"]
    for run_id, n in rounds:
        assert client.get_run(run_id).data.tags["mlr.round.number"] == n


def _run(run_id, role, metrics, **tags):
    return {"run_id": run_id, "experiment_id": "1", "role": role, "kind": "activation",
            "start_time": int(run_id[-1]) * 1000, "metrics": metrics, "params": {},
            "run_status": "FINISHED", **tags}


def test_sections_for_reward_llm_and_audits_render_from_what_the_runs_record():
    """Records shaped as `dashboard_queries` flattens runs (a reward model needs three rounds of
    real training, so these sections are checked on hand-made records of the same shape)."""
    from mlr_mlflow.dashboard.page import Page
    from mlr_mlflow.tracking.dashboard_queries import Snapshot

    runs = [
        _run("r1", "round", {"llm.prompt_tokens": 900.0, "llm.completion_tokens": 300.0,
                             "llm.total_tokens": 1200.0, "llm.cost_usd": 0.0021,
                             "selection_mean_similarity": 0.4, "pool_mean_similarity": 0.3},
             round_id="a", round_number="1", generator="llm"),
        _run("h1", "hypothesis", {"b_wr": 0.8, "bsota_wr": 0.6, "b_wr_ci_low": 0.7,
                                  "b_wr_ci_high": 0.9}, sha256="ab" * 32, round_id="a",
             variant="full", status="evaluated", generator="llm", prompt_style="novelty",
             llm_model="qwen", confirmed="true"),
        _run("a1", "audit", {}, audit_verdict="reproduced", audit_of="h1"),
    ]
    versions = [{"model": "mlr-reward-activation", "kind": "activation", "version": 1,
                 "run_id": "t1", "experiment_id": "1", "created": 1, "alias": "champion",
                 "champion_since": 5000, "promotion": "first champion", "holdout_spearman": 0.42,
                 "holdout_rounds": ["a"],
                 "predictions": [{"sha256": "ab" * 32, "predicted": 0.7, "measured": 0.8}]}]
    snap = Snapshot(tracking_uri="sqlite:///x.db", experiments={"1": "mlr-activation"}, runs=runs,
                    reward_versions=versions)
    page = Page(snap, "http://ui/")
    reward, llm, audit = page.reward(), page.llm(), page.audit()
    assert "champion" in reward and "0.420" in reward and reward.count("plotly-graph-div") == 3
    assert "Champion history" in reward and "activation v1" in reward
    assert "900" in llm and "0.0021" in llm and "round 1" in llm
    assert "reproduced" in audit and "Confirmed discoveries" in audit and "plotly-graph-div" in audit
    [row] = data.leaderboard(snap)
    assert row["confirmed"] and row["audit"] == "reproduced" and (row["ci_low"], row["ci_high"]) == (0.7, 0.9)
    assert data.generators(snap) == []  # only full runs: no one-pass hypothesis to rate


def test_markup_in_what_runs_record_shows_as_text_never_as_markup():
    """Tags, reasons and names come from whoever wrote to the store: the templates escape them all,
    in text and in attributes alike, on the page and on the login page."""
    from mlr_mlflow.dashboard.page import Page, login_page
    from mlr_mlflow.tracking.dashboard_queries import Snapshot

    attack = '<script>alert("x")</script>'
    runs = [
        _run("h1", "hypothesis", {"b_wr": 0.8, "bsota_wr": 0.6}, sha256="ab" * 32, round_id="a",
             variant="full", status="evaluated", generator=attack, prompt_style='" onmouseover="x',
             kind='act"><img src=x>', audit_verdict=attack),
        _run("h2", "hypothesis", {}, sha256="cd" * 32, round_id="a", variant="one-pass",
             status="invalid", stage="static", reasons=f"imports os {attack}", generator="symbolic"),
    ]
    snap = Snapshot(tracking_uri=f"sqlite:///{attack}.db", experiments={"1": "mlr-activation"},
                    runs=runs, reward_versions=[], problems={"registry": attack})
    html = Page(snap, 'http://ui/"><script>').render('plotly"></script><script>alert(1)</script>')
    login = login_page(attack, attack, "http://ui/")
    for page in (html, login):
        assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert '<img src=x>' not in html and 'data-kind="act&#34;&gt;&lt;img src=x&gt;"' in html
    assert 'href="http://ui/&#34;&gt;&lt;script&gt;' in html
    assert '<script src="plotly&#34;&gt;' in html  # even the bundle's address is escaped


def test_win_rate_charts_keep_the_win_rate_scale_and_champion_times_read_both_formats():
    from mlr_mlflow.dashboard import charts
    from mlr_mlflow.tracking.dashboard_queries import since_ms

    series = [{"kind": "activation", "generator": "symbolic", "rounds": [1], "round_curve": [0.79],
               "evaluations": [32], "best": [0.79]}]
    for fig in charts.discovery(series):
        assert tuple(fig.layout.yaxis.range) == (0, 1.02)  # one round is not a dot on a zoomed axis
    assert since_ms("1700000000000") == 1700000000000  # written by earlier versions
    assert since_ms("2023-11-14T22:13:20.000+00:00") == 1700000000000
    assert since_ms("not a time") is None and since_ms(None) is None


def test_the_leaderboard_shows_which_passages_inspired_a_hypothesis():
    from mlr_mlflow.dashboard.page import Page
    from mlr_mlflow.tracking.dashboard_queries import Snapshot

    runs = [_run("h1", "hypothesis", {"b_wr": 0.8, "bsota_wr": 0.6}, sha256="ab" * 32, round_id="a",
                 variant="one-pass", status="evaluated", generator="llm",
                 inspired_by="slope.pdf#0,notes/gates.md#2")]
    snap = Snapshot(tracking_uri="sqlite:///x.db", experiments={"1": "mlr-activation"}, runs=runs,
                    reward_versions=[])
    board = Page(snap, "http://ui/").leaderboard()
    assert "inspired by" in board and "slope.pdf#0, notes/gates.md#2" in board


def test_the_leaderboard_groups_by_round_newest_first_and_discoveries_come_first():
    """Rounds fold (the newest three open), each shows its best ROWS_PER_ROUND rows and says how
    many more it holds; confirmed hypotheses lead the page; with none, the best are said unconfirmed."""
    from mlr_mlflow.dashboard.page import Page
    from mlr_mlflow.tracking.dashboard_queries import Snapshot

    runs = []
    for number in range(1, 6):  # five rounds, 12 one-pass hypotheses each
        runs.append(_run(f"r{number}", "round", {}, round_id=f"id{number}", round_number=str(number),
                         generator="symbolic"))
        for i in range(12):
            runs.append(_run(f"h{number}x{i:02d}{number}", "hypothesis", {"b_wr": 0.3 + 0.01 * i + 0.05 * number,
                                                                        "screen_score": 0.5},
                             sha256=f"{number}{i:02d}".ljust(64, "a"), round_id=f"id{number}",
                             variant="one-pass", status="evaluated", generator="symbolic"))
    snap = Snapshot(tracking_uri="sqlite:///x.db", experiments={"1": "mlr-activation"}, runs=runs,
                    reward_versions=[])
    groups = data.by_round(snap, data.leaderboard(snap))
    assert [g["round"] for g in groups] == [5, 4, 3, 2, 1]
    assert [g["open"] for g in groups] == [True, True, True, False, False]
    assert all(g["n"] == 12 and len(g["rows"]) == data.ROWS_PER_ROUND and g["more"] == 2 for g in groups)
    assert all(g["rows"][0]["b_wr"] == g["best"] for g in groups)
    found = sections(Page(snap, "http://ui/").render("plotly.min.js"))
    assert found["leaderboard"].count("<details") == 5 and found["leaderboard"].count(" open>") == 3
    assert "2 more in this round" in found["leaderboard"]
    assert "No discovery confirmed yet" in found["discoveries"]
    assert found["discoveries"].count('class="run-link"') == 3  # the best three, unconfirmed
    assert "0.500" in found["leaderboard"]  # the screening statistic beside the test numbers

    runs[-1]["confirmed"] = "true"
    runs[-1]["variant"] = "confirm"
    found = sections(Page(snap, "http://ui/").render("plotly.min.js"))
    assert "1 confirmed" in found["discoveries"] and found["discoveries"].count('class="run-link"') == 1
    assert runs[-1]["run_id"] in found["discoveries"]


def test_the_instrument_line_names_what_a_regularizer_is_ranked_by():
    from mlr_mlflow.dashboard.page import _macro

    html = str(_macro("instrument")([
        {"kind": "activation", "ceiling": 0.84, "relu_like": 0.81, "cheap_vs_full": 0.7, "verdict_ceiling": None,
         "source": "s"},
        {"kind": "regularizer", "ceiling": 0.3, "relu_like": None, "cheap_vs_full": 0.77, "verdict_ceiling": 0.76,
         "source": "s"}]))
    lines = html.split("<li>")
    assert "log-loss" not in lines[1] and "0.84" in lines[1]
    assert "ranked instead by the test log-loss ratio, which repeats at 0.76" in lines[2]


def test_the_dashboards_leaderboard_ranks_regularizers_by_the_log_loss_ratio():
    from mlr_mlflow.dashboard.data import leaderboard
    from mlr_mlflow.tracking.dashboard_queries import Snapshot

    def run(kind, sha, b_wr, ratio):
        return {"role": "hypothesis", "kind": kind, "sha256": sha, "status": "evaluated", "variant": "full",
                "run_id": f"r-{sha}", "experiment_id": "1", "start_time": 0,
                "metrics": {"b_wr": b_wr, "log_loss_ratio": ratio}}

    snap = Snapshot("sqlite://", runs=[run("regularizer", "a", 0.9, -0.2), run("regularizer", "b", 0.4, 0.1),
                                        run("activation", "c", 0.9, -0.2), run("activation", "d", 0.4, 0.1)])
    order = [r["sha256"] for r in leaderboard(snap)]
    assert order.index("b") < order.index("a")  # regularizers: the ratio
    assert order.index("c") < order.index("d")  # activations: B-WR
