"""The dashboard as one self-contained HTML page: Plotly's JavaScript inlined, no request anywhere.

Sections (each `<section id=...>`): leaderboard, discovery, generators, reward, lineage, llm,
rejections, audit. A section without data says so in a `p.none` note. A kind filter at the top
hides table rows and plot traces of other kinds.
"""
from __future__ import annotations

import datetime as dt
import html

from ..tracking.dashboard_queries import Snapshot
from . import charts, data

SECTIONS = (("leaderboard", "Leaderboard across rounds"), ("discovery", "Discovery curve"),
            ("generators", "Generators compared"), ("reward", "Reward model"),
            ("lineage", "Lineage"), ("llm", "LLM tokens and cost"),
            ("rejections", "Rejections by reason"), ("audit", "Audits, intervals, confirmations"))

CSS = """
body{font-family:system-ui,sans-serif;margin:0 2rem 3rem;color:#222}
header{position:sticky;top:0;background:#fff;padding:.6rem 0;border-bottom:1px solid #ddd;z-index:9}
h1{font-size:1.4rem;margin:.2rem 0} h2{margin-top:2rem;border-bottom:2px solid #0194e2}
nav a{margin-right:1rem} table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .45rem;text-align:left} th{background:#f4f6f8}
td.num{text-align:right;font-variant-numeric:tabular-nums} p.none{color:#777;font-style:italic}
.problem{background:#fff4e5;border:1px solid #f0b35b;padding:.5rem;margin:.5rem 0}
pre.diff{background:#f8f8f8;padding:.5rem;font-size:.8rem;overflow:auto}
"""

FILTER_JS = """
function mlrFilter(kind){
  document.querySelectorAll('[data-kind]').forEach(function(el){
    el.style.display = (!kind || el.dataset.kind === kind) ? '' : 'none';});
  document.querySelectorAll('.js-plotly-plot').forEach(function(div){
    var vis = div.data.map(function(t){return (!kind || t.meta === kind) ? true : false;});
    Plotly.restyle(div, {visible: vis});});
}
"""


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


class Page:
    def __init__(self, snap: Snapshot, ui_url: str):
        self.snap, self.ui = snap, ui_url
        self._first_plot = True

    def run_link(self, exp_id, run_id, text) -> str:
        return (f'<a class="run-link" data-run-id="{_esc(run_id)}" '
                f'href="{_esc(self.ui)}#/experiments/{_esc(exp_id)}/runs/{_esc(run_id)}'
                f'?workflowType=machine_learning">'
                f"{_esc(text)}</a>")

    def plot(self, fig) -> str:
        return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})

    @staticmethod
    def none(text: str) -> str:
        return f'<p class="none">{_esc(text)}</p>'

    def table(self, head: list[str], rows: list[tuple[str, list[str]]]) -> str:
        """rows: (kind, cells already HTML)."""
        out = ["<table><thead><tr>", *(f"<th>{_esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
        for kind, cells in rows:
            out.append(f'<tr data-kind="{_esc(kind)}">' + "".join(cells) + "</tr>")
        return "".join(out) + "</tbody></table>"

    # sections -----------------------------------------------------------------------------
    def leaderboard(self) -> str:
        rows = data.leaderboard(self.snap)
        if not rows:
            return self.none("No evaluated hypothesis yet: run `mlr-mlflow discover` (or every "
                             "hypothesis so far was invalid; see Rejections).")
        td = lambda v, cls="": f'<td class="{cls}">{v}</td>'  # noqa: E731
        body = [(r["kind"], [td(i, "num"), td(_esc(r["kind"])),
                             td(self.run_link(r["experiment_id"], r["run_id"], r["sha256"][:8])),
                             td(_esc(r["generator"])), td(_esc(r["prompt_style"])),
                             td(_esc(r["model"])), td(_esc(r["inspired_by"].replace(",", ", "))),
                             td(_esc(r["round"]), "num"), td(_esc(r["variant"])),
                             td(_num(r["b_wr"]), "num"), td(_num(r["one_pass_b_wr"]), "num"),
                             td(_num(r["bsota_wr"]), "num"),
                             td(f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
                                if r["ci_low"] is not None else "–"),
                             td("yes" if r["confirmed"] else ""), td(_esc(r["audit"]))])
                for i, r in enumerate(rows[:200], start=1)]
        return self.instrument() + self.table(["#", "kind", "hypothesis", "generator", "prompt", "model",
                                               "inspired by", "round", "variant", "B-WR", "one-pass B-WR", "BSOTA-WR", "B-WR 95 %",
                                               "confirmed", "audit"], body)

    def instrument(self) -> str:
        """What the B-WR below can be trusted to: each kind's suite noise ceiling, stated first."""
        lines = []
        for r in data.instrument(self.snap):
            if r["ceiling"] is None:
                lines.append(f"<li>{_esc(r['kind'])}: suite repeatability {_esc(r['source'])}</li>")
                continue
            extra = f", {_num(r['relu_like'])} among ReLU-like variants" if r["relu_like"] is not None else ""
            cheap = f"; one-pass screen vs full training {_num(r['cheap_vs_full'])}" \
                if r["cheap_vs_full"] is not None else ""
            lines.append(f"<li>{_esc(r['kind'])}: full-training B-WR repeats at Spearman "
                         f"{_num(r['ceiling'])} between disjoint seed sets{extra}{cheap} "
                         f"<span class=\"none\">({_esc(r['source'])})</span></li>")
        if not lines:
            return ""
        return ('<p class="instrument">Noise ceiling of the suite (differences in B-WR smaller than its '
                f'noise are not findings):</p><ul class="instrument">{"".join(lines)}</ul>')

    def discovery(self) -> str:
        series = data.discovery(self.snap)
        if not series:
            return self.none("No evaluated hypothesis yet, so no discovery curve.")
        by_round, by_spent = charts.discovery(series)
        return self.plot(by_round) + self.plot(by_spent)

    def generators(self) -> str:
        rows = data.generators(self.snap)
        if not rows:
            return self.none("No generated hypothesis yet.")
        body = [(r["kind"], [f"<td>{_esc(r[k])}</td>" for k in ("kind", "generator", "prompt_style",
                                                                  "model")]
                 + [f'<td class="num">{r["hypotheses"]}</td>',
                    f'<td class="num">{100 * r["pass_rate"]:.0f} %</td>',
                    f'<td class="num">{r["evaluated"]}</td>']
                 + [f'<td class="num">{_num(r[k])}</td>' for k in (
                     "mean_b_wr", "best_b_wr", "mean_bsota_wr", "best_bsota_wr", "best_full_b_wr")])
                for r in rows]
        return self.table(["kind", "generator", "prompt style", "model", "hypotheses",
                           "validator pass rate", "evaluated", "mean B-WR", "best B-WR",
                           "mean BSOTA-WR", "best BSOTA-WR", "best full B-WR"], body)

    def reward(self) -> str:
        if "reward" in self.snap.problems:
            return self.none(self.snap.problems["reward"])
        r = data.reward(self.snap)
        if not r["versions"] and not r["diversity"]:
            return self.none("No reward model yet: `mlr-mlflow reward train` needs evaluated "
                             "hypotheses from at least three rounds of a kind.")
        parts = []
        if r["versions"]:
            body = [(v["kind"], [f"<td>{_esc(v['model'])}</td>",
                                 f"<td>{self.run_link(v['experiment_id'], v['run_id'], 'v' + str(v['version']))}</td>",
                                 f"<td>{_esc(v['alias'])}</td>",
                                 f'<td class="num">{_num(v["holdout_spearman"])}</td>',
                                 f"<td>{_esc(', '.join(v['holdout_rounds']))}</td>",
                                 f"<td>{_esc(_when(v['champion_since']))}</td>",
                                 f"<td>{_esc(v['promotion'])}</td>"]) for v in r["versions"]]
            parts.append(self.table(["model", "version", "alias", "held-out Spearman",
                                     "held-out round(s)", "champion since", "promotion"], body))
            plots = [self.plot(charts.reward_spearman(r["versions"]))]
            if any(v["predictions"] for v in r["versions"]):
                plots.append(self.plot(charts.reward_calibration(r["versions"])))
            else:
                parts.append(self.none("No held-out predictions recorded for these versions."))
            parts.extend(plots)
            history = " → ".join(f"{v['kind']} v{v['version']} ({_when(v['champion_since'])})"
                                 for v in r["champions"])
            parts.append(f"<p><b>Champion history:</b> {_esc(history) or 'no champion yet'}</p>")
        else:
            parts.append(self.none("No reward model version registered yet."))
        if r["diversity"]:
            parts.append(self.plot(charts.diversity(r["diversity"])))
        else:
            parts.append(self.none("No round was screened by a reward model yet (selection "
                                   "diversity appears once one is)."))
        return "".join(parts)

    def lineage(self) -> str:
        graph = data.lineage(self.snap)
        if not graph["edges"]:
            return self.none("No lineage yet: symbolic mutations and crossovers and incremental LLM "
                             "prompts record their parents from the second round of a kind on.")
        out = [self.plot(charts.lineage(graph)), "<h3>Newest children and their diff to the parent</h3>"]
        for e in graph["edges"][:data.LINEAGE_DIFFS]:
            p, c = e["parent"], e["child"]
            diff = (f'<pre class="diff">{_esc(e["diff"])}</pre>' if e.get("diff") is not None
                    else self.none("code not readable from here"))
            out.append(f'<details data-kind="{_esc(e["kind"])}"><summary>'
                       f'{self.run_link(p["experiment_id"], p["run_id"], p["sha256"][:8])} → '
                       f'{self.run_link(c["experiment_id"], c["run_id"], c["sha256"][:8])} '
                       f'({_esc(e["how"])}; B-WR {_num(p["metrics"].get("b_wr"))} → '
                       f'{_num(c["metrics"].get("b_wr"))})</summary>{diff}</details>')
        return "".join(out)

    def llm(self) -> str:
        rows = data.llm_usage(self.snap)
        if not rows:
            return self.none("No LLM round yet (the symbolic generator uses no tokens).")
        body = [(r["kind"], ["<td>" + self.run_link(r["experiment_id"], r["run_id"], f"round {r['round']}") + "</td>",
                             f'<td class="num">{r["prompt_tokens"]:.0f}</td>',
                             f'<td class="num">{r["completion_tokens"]:.0f}</td>',
                             f'<td class="num">{_num(r["cost_usd"], 4)}</td>']) for r in rows]
        return self.plot(charts.llm_usage(rows)) + self.table(
            ["round", "prompt tokens", "completion tokens", "cost (USD)"], body)

    def rejections(self) -> str:
        rows = data.rejections(self.snap)
        if not rows:
            return self.none("No rejected hypothesis yet.")
        body = [(r["kind"], [f"<td>{_esc(r['kind'])}</td>", f"<td>{_esc(r['stage'])}</td>",
                             f"<td>{_esc(r['reason'])}</td>", f'<td class="num">{r["count"]}</td>'])
                for r in rows]
        return self.plot(charts.rejections(rows)) + self.table(["kind", "stage", "reason",
                                                                 "hypotheses"], body)

    def audit(self) -> str:
        a = data.audits(self.snap)
        parts = []
        if a["verdicts"]:
            body = [(r.get("kind") or "", [f"<td>{self.run_link(r['experiment_id'], r['run_id'], r['run_id'][:8])}</td>",
                                           f"<td>{_esc(r['audit_verdict'])}</td>",
                                           f"<td>{_esc(r.get('audit_of') or '')}</td>"])
                    for r in a["verdicts"]]
            parts.append(self.table(["audit run", "verdict", "audited run"], body))
        else:
            parts.append(self.none("No audit yet (`mlr-mlflow audit`)."))
        if a["intervals"]:
            parts.append(self.plot(charts.intervals(a["intervals"])))
        else:
            parts.append(self.none("No win-rate intervals recorded yet (b_wr_ci_low / b_wr_ci_high)."))
        if a["confirmed"]:
            body = [(r["kind"], [f"<td>{self.run_link(r['experiment_id'], r['run_id'], r['sha256'][:8])}</td>",
                                 f'<td class="num">{_num(r["b_wr"])}</td>'])
                    for r in a["confirmed"]]
            parts.append("<h3>Confirmed discoveries</h3>" + self.table(["hypothesis", "B-WR"], body))
        else:
            parts.append(self.none("No confirmed discovery yet (mlr.confirmed=true)."))
        return "".join(parts)

    def render(self, plotly_js: str) -> str:
        kinds = sorted({r.get("kind") for r in self.snap.runs if r.get("kind")})
        options = "".join(f'<option value="{_esc(k)}">{_esc(k)}</option>' for k in kinds)
        problems = "".join(f'<div class="problem">{_esc(p)}</div>'
                           for k, p in self.snap.problems.items() if k != "reward")
        sections = []
        for sid, title in SECTIONS:
            body = (self.none(self.snap.problems["runs"]) if "runs" in self.snap.problems
                    and sid != "reward" else getattr(self, sid)())
            sections.append(f'<section id="{sid}"><h2>{_esc(title)}</h2>{body}</section>')
        nav = "".join(f'<a href="#{sid}">{_esc(t)}</a>' for sid, t in SECTIONS)
        return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>mlr-mlflow dashboard</title><style>{CSS}</style>
<script>{plotly_js}</script><script>{FILTER_JS}</script></head><body>
<header><h1>mlr-mlflow dashboard</h1>
<div>store <code>{_esc(self.snap.tracking_uri)}</code> · {_esc(dt.datetime.now().strftime('%Y-%m-%d %H:%M'))}
· kind <select id="kind-filter" onchange="mlrFilter(this.value)"><option value="">all kinds</option>{options}</select>
· <a href="{_esc(self.ui)}">MLflow UI</a></div><nav>{nav}</nav></header>
{problems}{''.join(sections)}</body></html>"""


def _when(ms) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M") if ms else ""


def login_page(tracking_uri: str, why: str, ui_url: str) -> str:
    """What the page says when the server needs a login this process does not have."""
    note = (f"The tracking server {tracking_uri} needs a login ({why}). Set MLFLOW_TRACKING_USERNAME "
            "and MLFLOW_TRACKING_PASSWORD and run `mlr-mlflow dashboard` again, or open the "
            "dashboard the server itself serves under /mlr/.")
    sections = "".join(f'<section id="{sid}"><h2>{_esc(t)}</h2><p class="none">{_esc(note)}</p></section>'
                       for sid, t in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>mlr-mlflow dashboard'
            f'</title><style>{CSS}</style></head><body><header><h1>mlr-mlflow dashboard</h1></header>'
            f'<div class="problem">{_esc(note)}</div>{sections}</body></html>')
