"""Plotly figures of the dashboard. Every trace carries its kind in `meta`, for the page's filter.

Titles, axis titles and the shared layout are package data (`dashboards/charts.toml`); this module
builds the traces from the runs' records."""
from __future__ import annotations

import functools

import plotly.graph_objects as go

from .. import resources

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@functools.lru_cache(maxsize=1)
def definitions() -> dict:
    """charts.toml: `layout` and, per figure, its `title`, `x` and `y`."""
    return tomllib.loads(resources.path("dashboards/charts.toml").read_text())


def _when(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000).isoformat(timespec="seconds")


def _figure(name: str, traces: list) -> go.Figure:
    spec = definitions()[name]
    fig = go.Figure(traces)
    fig.update_layout(title=spec["title"], xaxis_title=spec["x"], yaxis_title=spec["y"],
                      **definitions()["layout"])
    if "y_range" in spec:
        fig.update_yaxes(range=spec["y_range"])
    return fig


def discovery(series: list[dict]) -> tuple[go.Figure, go.Figure]:
    by_round = [go.Scatter(x=s["rounds"], y=s["round_curve"], mode="lines+markers", line_shape="hv",
                           name=f"{s['kind']} · {s['generator']}", meta=s["kind"]) for s in series]
    by_spent = [go.Scatter(x=s["evaluations"], y=s["best"], mode="lines", line_shape="hv",
                           name=f"{s['kind']} · {s['generator']}", meta=s["kind"]) for s in series]
    rounds = _figure("discovery_by_round", by_round)
    rounds.update_xaxes(dtick=1)
    return (rounds,
            _figure("discovery_by_spent", by_spent))


def reward_calibration(versions: list[dict]) -> go.Figure:
    traces = [go.Scatter(x=[p["predicted"] for p in v["predictions"]],
                         y=[p["measured"] for p in v["predictions"]], mode="markers",
                         name=f"{v['kind']} v{v['version']}", meta=v["kind"],
                         text=[p["sha256"][:8] for p in v["predictions"]])
              for v in versions if v["predictions"]]
    return _figure("reward_calibration", traces)


def reward_spearman(versions: list[dict]) -> go.Figure:
    kinds = sorted({v["kind"] for v in versions})
    traces = [go.Bar(x=[f"v{v['version']}" for v in versions if v["kind"] == k],
                     y=[v["holdout_spearman"] for v in versions if v["kind"] == k],
                     name=k, meta=k) for k in kinds]
    return _figure("reward_spearman", traces)


def diversity(rows: list[dict]) -> go.Figure:
    traces = []
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        traces += [go.Scatter(x=[r["round"] for r in mine], y=[r["selection"] for r in mine],
                              mode="lines+markers", name=f"{kind} selection", meta=kind),
                   go.Scatter(x=[r["round"] for r in mine], y=[r["pool"] for r in mine],
                              mode="lines+markers", name=f"{kind} pool", meta=kind,
                              line=dict(dash="dot"))]
    fig = _figure("diversity", traces)
    fig.update_xaxes(dtick=1)
    return fig


def lineage(graph: dict) -> go.Figure:
    traces = []
    for kind in sorted({n["kind"] for n in graph["nodes"]}):
        xs, ys = [], []
        for e in graph["edges"]:
            if e["kind"] != kind:
                continue
            for end in (e["parent"], e["child"]):
                xs.append(_when(end["start_time"]))
                ys.append(end["metrics"].get("b_wr"))
            xs.append(None)
            ys.append(None)
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", line=dict(width=1, color="#999"),
                                 name=f"{kind} parent → child", meta=kind, hoverinfo="skip"))
    fig = _figure("lineage", traces)
    fig.update_xaxes(type="date")
    for kind in sorted({n["kind"] for n in graph["nodes"]}):
        nodes = [e[end] for e in graph["edges"] if e["kind"] == kind for end in ("parent", "child")]
        fig.add_trace(go.Scatter(x=[_when(n["start_time"]) for n in nodes],
                                 y=[n["metrics"].get("b_wr") for n in nodes], mode="markers",
                                 name=f"{kind} hypotheses", meta=kind,
                                 text=[f"{n['sha256'][:8]} {n.get('expression') or ''} ({n.get('generator')})"
                                       for n in nodes]))
    fig.update_xaxes(type="date")
    return fig


def llm_usage(rows: list[dict]) -> go.Figure:
    traces = []
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        for key in ("prompt_tokens", "completion_tokens"):
            traces.append(go.Bar(x=[f"{kind} round {r['round']}" for r in mine],
                                 y=[r[key] for r in mine], name=f"{kind} {key.replace('_', ' ')}",
                                 meta=kind))
    fig = _figure("llm_usage", traces)
    fig.update_layout(barmode="stack")
    return fig


def rejections(rows: list[dict]) -> go.Figure:
    traces = []
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind][:15]
        traces.append(go.Bar(y=[f"{r['stage']}: {r['reason'][:50]}" for r in mine],
                             x=[r["count"] for r in mine], orientation="h", name=kind, meta=kind))
    fig = _figure("rejections", traces)
    fig.update_layout(height=max(360, 28 * sum(len(t.y) for t in traces) + 120))
    fig.update_yaxes(automargin=True)
    return fig


def intervals(rows: list[dict]) -> go.Figure:
    traces = []
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        traces.append(go.Scatter(
            x=[r["sha256"][:8] for r in mine], y=[r["b_wr"] for r in mine], mode="markers",
            name=kind, meta=kind, text=[r.get("expression") or "" for r in mine],
            error_y=dict(type="data", symmetric=False,
                         array=[r["ci_high"] - r["b_wr"] for r in mine],
                         arrayminus=[r["b_wr"] - r["ci_low"] for r in mine])))
    return _figure("intervals", traces)
