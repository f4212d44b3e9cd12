"""The `mlflow.app` plugins: `mlflow server --app-name mlr` (or `mlr-basic-auth`).

Both give MLflow's own UI and API unchanged, plus the dashboard under `/mlr/`, built live from the
server's backend store on each request. MLflow 3.17 runs an app name's factory in each uvicorn
worker (`--factory`) and serves the Flask app inside FastAPI, so a factory adds its route to
MLflow's Flask app and hands back what `mlflow.server.fastapi_app.create_fastapi_app` makes of it
(the Flask app itself under gunicorn or waitress). `mlr-basic-auth` hands the same Flask app to
MLflow's basic-auth factory, which wraps it likewise: `/mlr/` then needs a login like every page.
MLflow fails closed on routes it does not know (only admins may open `/mlr/`) unless
MLFLOW_BASIC_AUTH_FAIL_CLOSED=false; then a user who is not an admin sees only the experiments and
reward models they may read.

MLflow's server internals are reached only through tracking/mlflow_internals.py.
"""
from __future__ import annotations

import os
from urllib.parse import urlparse

from ..tracking import mlflow_internals as internals

ROUTE = "/mlr/"
# MLflow 3.17's UI keeps its page settings in the browser's localStorage. It chooses between its
# GenAI pages and the runs table from `mlflow.workflowType_v1` (default GenAI), not from the
# experiment tag `mlflow.experimentKind`, and shows no metric column until one is picked. So the
# index page seeds, where the browser has no setting of its own yet: "Model training", and for each
# of our experiments the columns B-WR, BSOTA-WR, generator, variant and status with the newest
# round expanded. A user's own later choices are kept.
COLUMNS = ["metrics.`b_wr`", "metrics.`bsota_wr`", "tags.`mlr.generator`", "tags.`mlr.variant`",
           "tags.`mlr.status`"]
SEED_JS = """<script>(function(){try{var s=window.localStorage,seed=%s;
function put(k,v){if(s.getItem(k)===null)s.setItem(k,v);}
put('mlflow.workflowType_v1','"machine_learning"');
put('mlflow.assistant.panelOpen_v1','false');put('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1','true');
Object.keys(seed).forEach(function(id){var st={selectedColumns:%s,runsExpanded:{}};
if(seed[id])st.runsExpanded[seed[id]]=true;
put('MLflowLocalStorage-1.1-ExperimentPage-'+JSON.stringify([id])+'-ReactComponentState',JSON.stringify(st));});
}catch(e){}})();</script>"""


def _seed_script() -> str:
    """The seeding script, with our experiments and each one's newest round."""
    import json

    from ..tracking import names
    from ..tracking.queries import round_runs

    seed = {}
    try:
        client = _store_client()
        may_read = internals.read_filter()
        for exp in client.search_experiments(
                filter_string=f"tags.`{names.EXPERIMENT_KIND}` = '{names.MODEL_DEVELOPMENT}'"):
            if may_read and not may_read.experiment(exp.experiment_id):
                continue  # under basic auth: not even the ids of what this user may not read
            rounds = round_runs(client, exp.experiment_id, newest_first=True, limit=1)
            seed[exp.experiment_id] = rounds[0].info.run_id if rounds else ""
    except Exception:  # the UI still opens; only the seeded columns are missing
        pass
    return SEED_JS % (json.dumps(seed), json.dumps(COLUMNS))


def _store_client():
    from mlflow import MlflowClient

    uri, registry_uri = internals.server_store_uris()
    return MlflowClient(tracking_uri=uri, registry_uri=registry_uri)


def _reader(client):
    """Artifacts as the server itself reads them (`mlflow-artifacts:` URIs name its destination)."""
    def read(run_id: str, path: str) -> str | None:
        import tempfile
        from pathlib import Path

        try:
            uri = client.get_run(run_id).info.artifact_uri
            if uri.startswith("mlflow-artifacts:"):
                repo, rel = internals.served_artifact_repository(), urlparse(uri).path.lstrip("/")
                path = f"{rel}/{path}"
            else:
                repo = internals.artifact_repository(uri)
            with tempfile.TemporaryDirectory() as tmp:
                return Path(repo.download_artifacts(path, tmp)).read_text()
        except Exception:  # the page says the code is not readable
            return None
    return read


def _visible_to_user(snap) -> None:
    """Under basic auth: keep what the logged-in user may read (admins read everything)."""
    may_read = internals.read_filter()
    if may_read is None:
        return
    readable = {e for e in snap.experiments if may_read.experiment(e)}
    snap.experiments = {e: n for e, n in snap.experiments.items() if e in readable}
    snap.runs = [r for r in snap.runs if r["experiment_id"] in readable]
    snap.reward_versions = [v for v in snap.reward_versions if may_read.model(v["model"])]


def dashboard_view():
    from flask import Response

    from ..dashboard import render
    from ..tracking.dashboard_queries import snapshot

    client = _store_client()
    snap = snapshot(client, _reader(client))
    _visible_to_user(snap)
    # relative: the MLflow UI is one level up, behind any host name or --static-prefix
    return Response(render(snap, "../"), mimetype="text/html")


def plotly_view():
    """Plotly's bundle, which the dashboard page loads beside it (cached: it changes with plotly only)."""
    from flask import Response

    from ..dashboard import plotly_js

    response = Response(plotly_js(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def index_view():
    """MLflow's own index.html, opening experiments on the runs table by default."""
    from pathlib import Path

    from flask import Response, current_app

    page = Path(current_app.static_folder, "index.html").read_text()
    return Response(page.replace("<head>", "<head>" + _seed_script(), 1), mimetype="text/html")


def _add_routes(flask_app) -> None:
    from flask import redirect

    if "mlr_dashboard" in flask_app.view_functions:  # a second factory call in one process
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    route = internals.with_static_prefix(ROUTE)
    flask_app.add_url_rule(route, "mlr_dashboard", dashboard_view)
    flask_app.add_url_rule(route.rstrip("/"), "mlr_dashboard_slash", lambda: redirect(route))
    from ..dashboard import PLOTLY_FILE

    flask_app.add_url_rule(route + PLOTLY_FILE, "mlr_plotly", plotly_view)
    from .review import register as review_queue

    review_queue(flask_app, route + "review", _store_client, _reader, internals.ReviewAccess)
    if "serve" in flask_app.view_functions:
        flask_app.view_functions["serve"] = index_view


def create_app():
    """`mlflow server --app-name mlr`: the MLflow UI plus the dashboard under /mlr/."""
    flask_app = internals.server_flask_app()
    _add_routes(flask_app)
    return internals.served(flask_app)


def create_basic_auth_app():
    """`mlflow server --app-name mlr-basic-auth`: the same, behind MLflow's basic auth."""
    flask_app = internals.server_flask_app()
    _add_routes(flask_app)
    return internals.basic_auth_app(flask_app)
