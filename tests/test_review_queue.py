"""The review queue at /mlr/review in a real browser (Debian's chromium through Playwright), against a
real `mlflow server --app-name mlr-basic-auth`: who may review, what lands, and CSRF."""
import base64
import json
import urllib.request

import pytest
from mlflow import MlflowClient

from mlr_mlflow.hypothesis import normalized_sha256
from mlr_mlflow.tracking import names

from .test_plugins_app import browser, mlflow_server, shots  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
SECRET = "a-long-test-password-42"
PARENT = "import torch\n\ndef activation(x):\n    return torch.relu(x)\n"
GOOD = "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(1.5 * x)\n"
CHEAT = "import torch\n\ndef activation(x):\n    return torch.relu(x) + 0.01\n"


def _run(client, exp_id, source, variant, metrics, tags=None):
    run = client.create_run(exp_id, run_name=f"{normalized_sha256(source)[:8]} {variant}", tags={
        names.ROLE: "hypothesis", names.VARIANT: variant, names.STATUS: "evaluated",
        names.HYPOTHESIS_SHA256: normalized_sha256(source), names.KIND: "activation",
        names.GENERATOR: "symbolic", names.ROUND_ID: "r1", **(tags or {})})
    client.log_text(run.info.run_id, source, names.HYPOTHESIS_ARTIFACT)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two hypotheses to review: one confirmed (bred from a parent), one whose rungs disagree."""
    where = tmp_path_factory.mktemp("review")
    uri = f"sqlite:///{where}/mlflow.db"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("mlr-activation", artifact_location=str(where / "artifacts"),
                                      tags={names.EXPERIMENT_KIND: names.MODEL_DEVELOPMENT})
    _run(client, exp_id, PARENT, "one-pass", {names.B_WR: 0.5})
    parents = {names.PARENTS: normalized_sha256(PARENT)}
    good = [_run(client, exp_id, GOOD, "one-pass", {names.B_WR: 0.62, "b_wr_ci_low": 0.55,
                                                    "b_wr_ci_high": 0.7, names.REWARD_SCORE: 0.8,
                                                    names.REWARD_SPREAD: 0.1}, parents),
            _run(client, exp_id, GOOD, "full", {names.B_WR: 0.66, names.BSOTA_WR: 0.6}, parents),
            _run(client, exp_id, GOOD, "confirm", {names.B_WR: 0.64}, {names.CONFIRMED: "true"})]
    cheat = [_run(client, exp_id, CHEAT, "one-pass", {names.B_WR: 0.95}),
             _run(client, exp_id, CHEAT, "full", {names.B_WR: 0.4})]
    return {"dir": where, "uri": uri, "exp_id": exp_id, "good": good, "cheat": cheat}


def _call(url, path, user, body):
    auth = base64.b64encode(f"{user}:{SECRET}".encode()).decode()
    request = urllib.request.Request(url + path, method="POST", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Basic {auth}",
                                              "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=60).close()


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review-server")
    ini = tmp / "auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = NO_PERMISSIONS\ndatabase_uri = sqlite:///{tmp}/auth.db\n"
                   "admin_username = admin\nauthorization_function = "
                   "mlflow.server.auth:authenticate_request_basic_auth\n")
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret",
           "MLFLOW_AUTH_ADMIN_PASSWORD": SECRET, "MLFLOW_BASIC_AUTH_FAIL_CLOSED": "false"}
    with mlflow_server(store, "mlr-basic-auth", tmp, env) as url:
        for user, permission in (("reviewer", "EDIT"), ("reader", "READ")):
            _call(url, "/api/2.0/mlflow/users/create", "admin", {"username": user, "password": SECRET})
            _call(url, "/api/3.0/mlflow/users/permissions/grant", "admin",
                  {"username": user, "resource_type": "experiment", "resource_id": store["exp_id"],
                   "permission": permission})
        yield url


def _page(browser, user):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  http_credentials={"username": user, "password": SECRET})
    context.set_default_timeout(180_000)  # a busy machine: each request checks a password hash
    context.set_default_navigation_timeout(180_000)
    return context, context.new_page()


def _article(page, source):
    return page.locator(f'article[data-sha="{normalized_sha256(source)}"]')


def test_a_reviewer_approves_one_and_rejects_another_with_a_note(server, store, browser, shots):  # noqa: F811
    context, page = _page(browser, "reviewer")
    page.goto(f"{server}/mlr/review")
    good, cheat = _article(page, GOOD), _article(page, CHEAT)
    good.wait_for()
    # confirmed first, then the suspicious one, each with what a reviewer needs
    shas = page.locator("article.hypothesis").evaluate_all("els => els.map(e => e.dataset.sha)")
    assert shas == [normalized_sha256(GOOD), normalized_sha256(CHEAT)]
    assert "rungs disagree" in cheat.locator(".flags").inner_text()
    assert "x * torch.sigmoid(1.5 * x)" in good.locator("pre.code").inner_text()
    good.locator("summary", has_text="diff to its parent").click()
    assert "+    return x * torch.sigmoid(1.5 * x)" in good.locator("pre.diff").inner_text()
    assert "0.620" in good.locator("table.rungs").inner_text() and "[0.550, 0.700]" in good.inner_text()
    assert "score 0.800" in good.inner_text()
    page.screenshot(path=shots / "review-queue.png", full_page=True)

    good.get_by_role("button", name="Approve").click()
    _article(page, GOOD).locator("p.review[data-verdict=approve]").wait_for()
    cheat = _article(page, CHEAT)
    cheat.locator("select[name=reason]").select_option("shortcut")
    cheat.locator("textarea[name=note]").fill("adds a constant that the test split rewards")
    cheat.get_by_role("button", name="Reject").click()
    _article(page, CHEAT).locator("p.review[data-verdict=reject]").wait_for()
    page.screenshot(path=shots / "review-queue-reviewed.png", full_page=True)
    context.close()

    client = MlflowClient(store["uri"])
    for run_id in store["good"]:
        tags = client.get_run(run_id).data.tags
        assert tags[names.REVIEW_VERDICT] == "approve" and tags[names.REVIEW_BY] == "reviewer"
    for run_id in store["cheat"]:
        tags = client.get_run(run_id).data.tags
        assert (tags[names.REVIEW_VERDICT], tags[names.REVIEW_REASON], tags[names.REVIEW_NOTE]) == (
            "reject", "shortcut", "adds a constant that the test split rewards")


def test_a_user_without_edit_permission_sees_the_queue_read_only_and_cannot_post(server, store,
                                                                                 browser):  # noqa: F811
    context, page = _page(browser, "reader")
    page.goto(f"{server}/mlr/review")
    _article(page, GOOD).wait_for()
    assert page.locator("form.review-form").count() == 0
    assert page.locator("p.read-only").count() == 2
    token = next(c["value"] for c in context.cookies() if c["name"] == "mlr_review_csrf")
    before = MlflowClient(store["uri"]).get_run(store["good"][0]).data.tags
    answer = page.request.post(f"{server}/mlr/review", form={
        "csrf_token": token, "experiment_id": store["exp_id"], "sha256": normalized_sha256(GOOD),
        "verdict": "reject", "reason": "other", "note": "not mine to judge"}, max_redirects=0)
    assert answer.status == 403 and "may not edit" in answer.text()
    assert MlflowClient(store["uri"]).get_run(store["good"][0]).data.tags == before
    context.close()


def test_a_forged_post_without_the_csrf_token_is_refused(server, store, browser):  # noqa: F811
    context, page = _page(browser, "reviewer")
    page.goto(f"{server}/mlr/review")  # the cookie is set: only the form's copy is missing
    _article(page, GOOD).wait_for()
    form = {"experiment_id": store["exp_id"], "sha256": normalized_sha256(GOOD), "verdict": "reject",
            "reason": "invalid", "note": "forged"}
    for extra in ({}, {"csrf_token": "guessed"}):
        answer = page.request.post(f"{server}/mlr/review", form={**form, **extra}, max_redirects=0)
        assert answer.status == 403 and "CSRF" in answer.text()
    # and from another page (about:blank), where the browser sends no SameSite=Strict cookie at all
    page.goto("about:blank")
    page.set_content(f'<form method="post" action="{server}/mlr/review">'
                     + "".join(f'<input name="{k}" value="{v}">' for k, v in form.items())
                     + '<input name="csrf_token" value="x"><button>go</button></form>')
    with page.expect_response(f"{server}/mlr/review") as response:
        page.get_by_role("button", name="go").click()
    assert response.value.status == 403
    assert MlflowClient(store["uri"]).get_run(store["good"][0]).data.tags.get(
        names.REVIEW_NOTE) != "forged"
    context.close()
