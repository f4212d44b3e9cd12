"""Plotly figures of the dashboard. Every trace carries its kind in `meta`, for the page's filter."""
from __future__ import annotations

import plotly.graph_objects as go

LAYOUT = dict(template="plotly_white", height=360, margin=dict(l=50, r=20, t=40, b=45),
              legend=dict(orientation="h", y=-0.2))


def _when(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000).isoformat(timespec="seconds")


def _figure(title: str, x: str, y: str, traces: list) -> go.Figure:
    fig = go.Figure(traces)
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, **LAYOUT)
    return fig


def discovery(series: list[dict]) -> tuple[go.Figure, go.Figure]:
    by_round = [go.Scatter(x=s["rounds"], y=s["round_curve"], mode="lines+markers", line_shape="hv",
                           name=f"{s['kind']} · {s['generator']}", meta=s["kind"]) for s in series]
    by_spent = [go.Scatter(x=s["evaluations"], y=s["best"], mode="lines", line_shape="hv",
                           name=f"{s['kind']} · {s['generator']}", meta=s["kind"]) for s in series]
    rounds = _figure("Best B-WR against rounds", "round", "best B-WR so far", by_round)
    rounds.update_xaxes(dtick=1)
    return (rounds,
            _figure("Best B-WR against evaluations spent", "evaluations", "best B-WR so far",
                    by_spent))


def reward_calibration(versions: list[dict]) -> go.Figure:
    traces = [go.Scatter(x=[p["predicted"] for p in v["predictions"]],
                         y=[p["measured"] for p in v["predictions"]], mode="markers",
                         name=f"{v['kind']} v{v['version']}", meta=v["kind"],
                         text=[p["sha256"][:8] for p in v["predictions"]])
              for v in versions if v["predictions"]]
    # "measured" is the reward model's validation target (reward/ranker.py), not the test B-WR
    return _figure("Predicted against measured validation win rate, each version's held-out round",
                   "predicted", "measured (mean of val B-WR and val BSOTA-WR)", traces)


def reward_spearman(versions: list[dict]) -> go.Figure:
    kinds = sorted({v["kind"] for v in versions})
    traces = [go.Bar(x=[f"v{v['version']}" for v in versions if v["kind"] == k],
                     y=[v["holdout_spearman"] for v in versions if v["kind"] == k],
                     name=k, meta=k) for k in kinds]
    return _figure("Held-out Spearman per version", "version", "Spearman", traces)


def diversity(rows: list[dict]) -> go.Figure:
    traces = []
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        traces += [go.Scatter(x=[r["round"] for r in mine], y=[r["selection"] for r in mine],
                              mode="lines+markers", name=f"{kind} selection", meta=kind),
                   go.Scatter(x=[r["round"] for r in mine], y=[r["pool"] for r in mine],
                              mode="lines+markers", name=f"{kind} pool", meta=kind,
                              line=dict(dash="dot"))]
    fig = _figure("Mean pairwise similarity: the selection against the pool", "round",
                  "cosine similarity", traces)
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
    fig = _figure("Lineage: parents to children", "time", "B-WR", traces)
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
    fig = _figure("LLM tokens per round", "round", "tokens", traces)
    fig.update_layout(barmode="stack")
    return fig


def rejections(rows: list[dict]) -> go.Figure:
    traces = []
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind][:15]
        traces.append(go.Bar(y=[f"{r['stage']}: {r['reason'][:50]}" for r in mine],
                             x=[r["count"] for r in mine], orientation="h", name=kind, meta=kind))
    fig = _figure("Sandbox and validator rejections by reason", "hypotheses", "", traces)
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
    return _figure("B-WR with its 95 % interval", "hypothesis", "B-WR", traces)
