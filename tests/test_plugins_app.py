"""The MLflow UI and the dashboard in a real browser (Debian's chromium through Playwright), against
a real `mlflow server --app-name mlr` (and `mlr-basic-auth`) on a store with two real rounds.

Assertions are on the DOM. Each page's screenshot is kept in $MLR_SCREENSHOTS (default: a
`screenshots` directory under pytest's base temporary directory).
"""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlr_mlflow.cli import main
from mlr_mlflow.dashboard.page import SECTIONS

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
RUN_NAME = re.compile(r"^[0-9a-f]{8} (one-pass|full|confirm)$")


def _entry_points(where: Path) -> str:
    """A directory to put on the server's PYTHONPATH so that it finds our `mlflow.app` entry
    points even where the package's metadata predates them (an editable install made before)."""
    if {"mlr", "mlr-basic-auth"} <= {ep.name for ep in metadata.entry_points(group="mlflow.app")}:
        return ""
    info = where / "mlr_mlflow_test_entry_points-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlr-mlflow-test-entry-points\n"
                                   "Version: 0\n")
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split('[project.entry-points."mlflow.app"]', 1)[1].split("\n[", 1)[0]
    (info / "entry_points.txt").write_text("[mlflow.app]\n" + block.replace('"', ""))
    return str(where)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(store: dict, app: str, tmp: Path, env: dict | None = None):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    paths = [str(ROOT), _entry_points(tmp / "entry-points"), os.environ.get("PYTHONPATH", "")]
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **(env or {})}
    log = open(tmp / f"server-{app}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             store["uri"], "--app-name", app, "--workers", "1", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=store["dir"], env=full_env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert proc.poll() is None, (tmp / f"server-{app}.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded machine: do not leave it behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = Path(os.environ.get("MLR_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(rounds_store, tmp_path_factory):
    with mlflow_server(rounds_store, "mlr", tmp_path_factory.mktemp("server")) as url:
        yield url


def _context(browser, **options):
    """A browser context that waits as long as a loaded CI machine needs: a fresh server's first
    /mlr/ took 1.4-3.4 s on a quiet 2-CPU machine, and under basic auth every request also checks a
    password hash; beside two training test workers, Playwright's default 30 s once ran out."""
    context = browser.new_context(**options)
    context.set_default_timeout(180_000)
    context.set_default_navigation_timeout(180_000)
    return context


@pytest.fixture
def page(browser):
    context = _context(browser, viewport={"width": 1600, "height": 1000})
    yield context.new_page()
    context.close()


def _open_leaderboard_link(page, rounds_store, shots, name):
    link = page.locator("section#leaderboard a.run-link").first
    run_id = link.get_attribute("data-run-id")
    link.click()
    expected = MlflowClient(rounds_store["uri"]).get_run(run_id).info.run_name
    page.wait_for_url(re.compile(f"/runs/{run_id}"))
    page.get_by_role("heading", name=expected).first.wait_for(timeout=60_000)
    page.screenshot(path=shots / name, full_page=True)
    assert RUN_NAME.match(expected)


def test_experiment_opens_on_the_runs_table_with_b_wr_visible(server, page, rounds_store, shots):
    page.goto(f"{server}/#/experiments/{rounds_store['exp_id']}")
    header = page.get_by_text("b_wr", exact=True).first
    header.wait_for(timeout=60_000)
    page.get_by_text("round 2 · symbolic · 4").first.wait_for()
    page.screenshot(path=shots / "experiment.png", full_page=True)
    assert "/runs" in page.url and "workflowType=machine_learning" in page.url
    box = header.bounding_box()
    assert box and 0 <= box["x"] < 1600 and 0 <= box["y"] < 1000  # on screen, not scrolled away
    for column in ("bsota_wr", "mlr.generator", "mlr.status"):
        assert page.get_by_text(column, exact=True).first.is_visible()
    assert page.get_by_text("round 1 · symbolic · 4").first.is_visible()
    # the newest round is expanded: its hypothesis runs show, each with its own name
    assert page.get_by_text(RUN_NAME).count() >= 5


def test_round_page_shows_its_description_and_distinct_child_runs(server, page, rounds_store, shots):
    round_run = rounds_store["rounds"][-1]["round_run_id"]
    page.goto(f"{server}/#/experiments/{rounds_store['exp_id']}/runs/{round_run}")
    page.get_by_text("Round 2", exact=True).first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"4 generated, 4 valid")).first.wait_for()
    children = page.get_by_role("link", name=RUN_NAME)
    children.first.wait_for()
    page.screenshot(path=shots / "round.png", full_page=True)
    names = [children.nth(i).inner_text().strip() for i in range(children.count())]
    assert len(set(names)) == 6, names  # 4 one-pass, 1 full and 1 confirmation run, all distinct


def test_served_dashboard_renders_every_section_and_links_open_the_run(server, page, rounds_store,
                                                                       shots):
    page.goto(f"{server}/mlr/")
    for sid, title in SECTIONS:
        assert page.locator(f"section#{sid} h2").inner_text() == title
    page.locator(".js-plotly-plot .main-svg").first.wait_for()
    assert page.locator("section#discovery .js-plotly-plot").count() == 2
    assert page.locator("section#lineage details").count() >= 1
    assert page.locator("section#leaderboard tbody tr").count() == 8
    page.screenshot(path=shots / "dashboard-served.png", full_page=True)
    _open_leaderboard_link(page, rounds_store, shots, "dashboard-served-link.png")


def test_dashboard_file_works_offline_and_links_open_the_run(server, page, rounds_store, shots,
                                                            tmp_path, capsys):
    assert main(["dashboard", "--tracking-uri", rounds_store["uri"], "--out", str(tmp_path),
                 "--ui-url", server + "/"]) == 0
    capsys.readouterr()
    fetched = []
    page.route("**/*", lambda route: (fetched.append(route.request.url),
                                      route.abort() if not route.request.url.startswith("file:")
                                      else route.continue_()))
    page.goto((tmp_path / "index.html").as_uri())
    page.locator("section#discovery .js-plotly-plot .main-svg").first.wait_for()
    assert [u for u in fetched if not u.startswith("file:")] == []  # nothing from a network
    for sid, _ in SECTIONS:
        assert page.locator(f"section#{sid}").is_visible()
    page.select_option("#kind-filter", "activation")
    assert page.locator("section#leaderboard tbody tr:visible").count() == 8
    page.screenshot(path=shots / "dashboard-file.png", full_page=True)
    page.unroute("**/*")
    _open_leaderboard_link(page, rounds_store, shots, "dashboard-file-link.png")


def test_basic_auth_app_needs_a_login_then_serves_the_dashboard(rounds_store, browser, shots,
                                                                 tmp_path, capsys, monkeypatch):
    ini = tmp_path / "auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = NO_PERMISSIONS\ndatabase_uri = sqlite:///{tmp_path}/auth.db\n"
                   "admin_username = admin\nauthorization_function = "
                   "mlflow.server.auth:authenticate_request_basic_auth\n")
    secret = "a-long-test-password-42"
    # fail-closed off: MLflow then lets any logged-in user reach /mlr/ (by default only admins
    # may open a route MLflow does not know), and the page shows what that user may read
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret",
           "MLFLOW_AUTH_ADMIN_PASSWORD": secret, "MLFLOW_BASIC_AUTH_FAIL_CLOSED": "false"}
    with mlflow_server(rounds_store, "mlr-basic-auth", tmp_path, env) as url:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/mlr/", timeout=180)
        assert refused.value.code == 401
        # the CLI without a login: a page that says so, in place of every section
        assert main(["dashboard", "--tracking-uri", url, "--out", str(tmp_path / "anon"),
                     "--json"]) == 0
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert "login" in out["problems"]
        assert (tmp_path / "anon" / "index.html").read_text().count("needs a login") >= len(SECTIONS)
        context = _context(browser, viewport={"width": 1600, "height": 1000},
                           http_credentials={"username": "admin", "password": secret})
        page = context.new_page()
        page.goto(f"{url}/mlr/")
        page.locator("section#leaderboard tbody tr").first.wait_for()
        assert page.locator("section#leaderboard tbody tr").count() == 8
        page.screenshot(path=shots / "dashboard-basic-auth.png", full_page=True)
        context.close()
        # a user who may read nothing sees the dashboard, but none of the runs
        import base64

        admin = base64.b64encode(f"admin:{secret}".encode()).decode()
        create = urllib.request.Request(
            f"{url}/api/2.0/mlflow/users/create", method="POST",
            data=json.dumps({"username": "reader", "password": secret + "-reader"}).encode(),
            headers={"Authorization": f"Basic {admin}", "Content-Type": "application/json"})
        urllib.request.urlopen(create, timeout=180).close()
        context = _context(browser, http_credentials={"username": "reader",
                                                      "password": secret + "-reader"})
        page = context.new_page()
        page.goto(f"{url}/mlr/")
        page.locator("section#leaderboard p.none").wait_for()
        assert page.locator("section#leaderboard tbody tr").count() == 0
        assert "No evaluated hypothesis yet" in page.locator("section#leaderboard").inner_text()
        context.close()


def test_basic_auth_index_page_seeds_only_what_the_user_may_read(tmp_path):
    """The index page's seeding script names experiments and their newest round run: a user sees
    only those of experiments they may read (it used to list every id to anyone logged in)."""
    import base64

    from mlr_mlflow.tracking import names

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    ids = {}
    for name in ("mlr-granted", "mlr-secret"):
        exp = client.create_experiment(name, tags={names.EXPERIMENT_KIND: names.MODEL_DEVELOPMENT})
        run = client.create_run(exp, tags={names.ROLE: "round"})
        client.set_terminated(run.info.run_id)
        ids[name] = (exp, run.info.run_id)
    ini = tmp_path / "auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = NO_PERMISSIONS\ndatabase_uri = sqlite:///{tmp_path}/auth.db\n"
                   "admin_username = admin\nauthorization_function = "
                   "mlflow.server.auth:authenticate_request_basic_auth\n")
    secret = "a-long-test-password-42"
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret",
           "MLFLOW_AUTH_ADMIN_PASSWORD": secret}

    def call(url, path, user, body=None):
        auth = base64.b64encode(f"{user}:{secret}".encode()).decode()
        request = urllib.request.Request(url + path, method="POST" if body else "GET",
                                         data=json.dumps(body).encode() if body else None,
                                         headers={"Authorization": f"Basic {auth}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.read().decode()

    def seeded(url, user) -> dict:
        page = call(url, "/", user)
        return json.loads(re.search(r"seed=(\{.*?\});", page).group(1))

    with mlflow_server({"uri": uri, "dir": tmp_path}, "mlr-basic-auth", tmp_path, env) as url:
        for user in ("reader", "outsider"):
            call(url, "/api/2.0/mlflow/users/create", "admin", {"username": user, "password": secret})
        call(url, "/api/3.0/mlflow/users/permissions/grant", "admin",
             {"username": "reader", "resource_type": "experiment",
              "resource_id": ids["mlr-granted"][0], "permission": "READ"})
        everything = {exp: run for exp, run in ids.values()}
        assert seeded(url, "admin") == everything
        assert seeded(url, "reader") == {ids["mlr-granted"][0]: ids["mlr-granted"][1]}
        page = call(url, "/", "outsider")
        assert seeded(url, "outsider") == {}
        assert not any(run in page for _, run in ids.values())
