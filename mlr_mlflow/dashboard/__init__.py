"""One HTML page per tracking store (all kinds, every round, the reward model) and Plotly's bundle
beside it, so the page stays light and still opens offline from its folder.

`write(client, out_dir)` is `mlr-mlflow dashboard`; `render(snapshot, ui_url)` is what the MLflow
server's `mlr` app serves under /mlr/. See page.py for the sections and data.py for the numbers.
"""
from __future__ import annotations

from pathlib import Path

from ..tracking.dashboard_queries import NeedsLogin, Snapshot, snapshot
from .page import Page, login_page

DEFAULT_OUT = "mlr-dashboard"
DEFAULT_UI = "http://127.0.0.1:5000/"  # where `mlflow ui` serves a local store


PLOTLY_FILE = "plotly.min.js"  # beside index.html (and served at /mlr/plotly.min.js)


def plotly_js() -> str:
    """Plotly's JavaScript bundle (about 4.6 MB): one file beside the page, not inside it."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def render(snap: Snapshot, ui_url: str) -> str:
    return Page(snap, ui_url).render(PLOTLY_FILE)


def _write_whole(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def ui_url_for(tracking_uri: str) -> str:
    """An HTTP tracking server serves its own UI; a local store's is `mlflow ui` on port 5000."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/") + "/"
    return DEFAULT_UI


def write(client, out_dir: str | Path = DEFAULT_OUT, ui_url: str | None = None) -> dict:
    """Write `index.html` (and `plotly.min.js`, unless it holds this bundle already) into `out_dir` -> {"path", "hypotheses", "rounds", "problems", "ui_url",
    "ui_url_from"}: its links open the MLflow UI at `ui_url`, taken from where `ui_url_from` says.

    The page is written whole (a temporary file renamed into place), never half."""
    ui = ui_url or ui_url_for(str(client.tracking_uri))
    source = ("--ui-url" if ui_url else "the tracking server" if ui != DEFAULT_UI
              else "a local store's `mlflow ui` (pass --ui-url if it runs elsewhere)")
    out = Path(out_dir)
    try:
        snap = snapshot(client)
        text, problems = render(snap, ui), dict(snap.problems)
        rounds = snap.role("round")
        counts = {"hypotheses": len(snap.role("hypothesis")), "rounds": len(rounds),
                  "rounds_running": sum(r.get("run_status") == "RUNNING" for r in rounds)}
    except NeedsLogin as exc:
        text, problems = login_page(str(client.tracking_uri), str(exc), ui), {"login": str(exc)}
        counts = {"hypotheses": 0, "rounds": 0, "rounds_running": 0}
    out.mkdir(parents=True, exist_ok=True)
    bundle = plotly_js()
    js = out / PLOTLY_FILE
    if not js.is_file() or js.read_text(encoding="utf-8", errors="replace") != bundle:
        _write_whole(js, bundle)  # the bundle first: a page never refers to a missing one
    path = out / "index.html"
    _write_whole(path, text)
    return {"path": str(path.resolve()), **counts, "problems": problems, "ui_url": ui,
            "ui_url_from": source}
