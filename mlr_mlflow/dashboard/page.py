"""The dashboard as one HTML page and Plotly's bundle beside it (`plotly.min.js`): no request leaves
the folder (or the server), and the page itself stays light.

The markup lives in Jinja2 templates, package data under `mlr_mlflow/resources/dashboards/` (the
top-level `dashboards/` of a checkout links there): `page.html.j2` the page, `sections.html.j2` one
macro per section, `login.html.j2` the page of a store that needs a login. They autoescape: every
value from a run (tags, reasons, names) is text on the page, never markup. This module gathers each
section's numbers (data.py) and figures (charts.py) and hands them to its macro.

Sections (each `<section id=...>`): discoveries (confirmed hypotheses, first), leaderboard (grouped
by round, the newest open, each round's best rows), discovery, generators, reward, lineage, llm,
rejections, audit. A section without data says so in a `p.none` note. A kind filter at the top
hides table rows and plot traces of other kinds.
"""
from __future__ import annotations

import datetime as dt
import functools

from markupsafe import Markup

from .. import resources
from ..tracking import names
from ..tracking.dashboard_queries import Snapshot
from . import charts, data

SECTIONS = (("discoveries", "Discoveries"), ("leaderboard", "Leaderboard by round"), ("discovery", "Discovery curve"),
            ("generators", "Generators compared"), ("reward", "Reward model"),
            ("lineage", "Lineage"), ("llm", "LLM tokens and cost"),
            ("rejections", "Rejections by reason"), ("audit", "Audits, intervals, confirmations"))


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _when(ms) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M") if ms else ""


@functools.lru_cache(maxsize=1)
def templates():
    """The dashboards' Jinja2 environment: autoescaping, strict about missing values, None as ''."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resources.path("dashboards"))),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             finalize=lambda value: "" if value is None else value)
    env.filters.update(num=_num, when=_when)
    env.globals["names"] = names
    return env


def _macro(name: str):
    return getattr(templates().get_template("sections.html.j2").module, name)


class Page:
    def __init__(self, snap: Snapshot, ui_url: str):
        self.snap, self.ui = snap, ui_url

    @staticmethod
    def plot(fig) -> Markup:
        return Markup(fig.to_html(full_html=False, include_plotlyjs=False,
                                  config={"displaylogo": False, "responsive": True}))

    @staticmethod
    def none(text: str) -> str:
        return str(_macro("empty")(text))

    # sections: each returns its HTML -----------------------------------------------------
    def discoveries(self) -> str:
        rows = data.leaderboard(self.snap)
        return self.awaiting() + str(_macro("discoveries")(self.ui, data.discoveries(rows), rows[:3],
                                                           data.instrument(self.snap)))

    def leaderboard(self) -> str:
        rows = data.leaderboard(self.snap)
        return str(_macro("leaderboard")(self.ui, data.by_round(self.snap, rows)))

    def awaiting(self) -> str:
        """How many hypotheses wait for a person's review (served: /mlr/review)."""
        from markupsafe import escape

        waiting = data.awaiting_review(self.snap)
        if not waiting:
            return ""
        kinds = ", ".join(f"{k} {sum(r['kind'] == k for r in waiting)}"
                          for k in sorted({r["kind"] for r in waiting}))
        return (f'<p class="awaiting-review">{len(waiting)} hypotheses await review ({escape(kinds)}): '
                f'<a href="review">the review queue</a> (served under /mlr/review).</p>')

    def discovery(self) -> str:
        series = data.discovery(self.snap)
        return str(_macro("discovery")([self.plot(f) for f in charts.discovery(series)] if series else []))

    def generators(self) -> str:
        return str(_macro("generators")(data.generators(self.snap)))

    def reward(self) -> str:
        if "reward" in self.snap.problems:
            return self.none(self.snap.problems["reward"])
        r = data.reward(self.snap)
        plots = []
        if r["versions"]:
            plots.append(self.plot(charts.reward_spearman(r["versions"])))
            if any(v["predictions"] for v in r["versions"]):
                plots.append(self.plot(charts.reward_calibration(r["versions"])))
        diversity = self.plot(charts.diversity(r["diversity"])) if r["diversity"] else None
        return str(_macro("reward")(self.ui, r, plots, diversity))

    def lineage(self) -> str:
        graph = data.lineage(self.snap)
        plot = self.plot(charts.lineage(graph)) if graph["edges"] else None
        return str(_macro("lineage")(self.ui, graph, plot, data.LINEAGE_DIFFS))

    def llm(self) -> str:
        rows = data.llm_usage(self.snap)
        return str(_macro("llm")(self.ui, rows, self.plot(charts.llm_usage(rows)) if rows else None,
                                 data.portfolio(self.snap)))

    def rejections(self) -> str:
        rows = data.rejections(self.snap)
        return str(_macro("rejections")(rows, self.plot(charts.rejections(rows)) if rows else None))

    def audit(self) -> str:
        a = data.audits(self.snap)
        intervals = self.plot(charts.intervals(a["intervals"])) if a["intervals"] else None
        return str(_macro("audit")(self.ui, a, intervals))

    def render(self, plotly_src: str) -> str:
        bodies = []
        for sid, title in SECTIONS:
            body = (self.none(self.snap.problems["runs"]) if "runs" in self.snap.problems
                    and sid != "reward" else getattr(self, sid)())
            bodies.append((sid, title, Markup(body)))
        return templates().get_template("page.html.j2").render(
            plotly_src=plotly_src, tracking_uri=self.snap.tracking_uri,
            now=dt.datetime.now().strftime("%Y-%m-%d %H:%M"), ui=self.ui,
            kinds=sorted({r.get("kind") for r in self.snap.runs if r.get("kind")}),
            sections=SECTIONS, bodies=bodies,
            problems=[p for k, p in self.snap.problems.items() if k != "reward"])


def login_page(tracking_uri: str, why: str, ui_url: str) -> str:
    """What the page says when the server needs a login this process does not have."""
    return templates().get_template("login.html.j2").render(tracking_uri=tracking_uri, why=why,
                                                             sections=SECTIONS)
