"""The review queue at /mlr/review: people approve or reject hypotheses, or leave a note.

GET shows the queue (review_queue.py); POST records one review as tags on the hypothesis's runs
(tracking.reviews). Every POST must carry the CSRF token of the page it came from: a random token
set as a SameSite=Strict, HttpOnly cookie scoped to this page and repeated in each form (a page on
another site can neither read the cookie nor make the browser send it), compared in constant time;
a POST without it is refused with 403. Who may review is `access` (plugins/app.py): under MLflow's
basic auth, users with EDIT (or MANAGE) permission on the hypothesis's experiment; the others see
the queue read-only. Without authentication everyone may review, as everyone may edit any run.
"""
from __future__ import annotations

import hmac
import re
import secrets
from typing import Callable, Protocol

from ..tracking import names, reviews
from ..tracking.queries import hypothesis_runs
from .review_queue import queue

COOKIE = "mlr_review_csrf"
FIELD = "csrf_token"
SHA = re.compile(r"^[0-9a-f]{64}$")
EXPERIMENT = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


class Access(Protocol):
    """What the logged-in user may do (plugins/app.py makes one per request)."""

    user: str

    def readable(self, experiment_id: str) -> bool: ...

    def editable(self, experiment_id: str) -> bool: ...


PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Review queue · mlr-mlflow</title>
<style>
body{font-family:system-ui,sans-serif;margin:0 2rem 3rem;color:#222}
h1{font-size:1.4rem} article{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
h2{font-size:1.05rem;margin:.2rem 0} .badge{background:#e6f4ea;border-radius:4px;padding:0 .4rem;margin-left:.4rem}
.flags li{color:#a04000} table{border-collapse:collapse;font-size:.85rem}
td,th{border:1px solid #ddd;padding:.2rem .45rem} pre{background:#f8f8f8;padding:.5rem;overflow:auto;font-size:.8rem}
.review{background:#f4f6f8;padding:.3rem .5rem} .read-only{color:#777;font-style:italic}
form textarea{width:40rem;max-width:100%;height:3rem}
</style></head><body>
<h1>Review queue</h1>
<p>Signed in as <b class="user">{{ user }}</b> · <a href="./">dashboard</a> · <a href="../">MLflow UI</a>.
Confirmed and selected hypotheses first, then suspicious ones. A review is the tags
<code>mlr.review.*</code> on the hypothesis's runs; set in the MLflow UI, they count too.</p>
{% if message %}<p class="message">{{ message }}</p>{% endif %}
{% if not entries %}<p class="none">Nothing awaits review.</p>{% endif %}
{% for e in entries %}
<article class="hypothesis" id="h-{{ e.sha256[:12] }}" data-sha="{{ e.sha256 }}" data-kind="{{ e.kind }}">
<h2>{{ e.kind }} · {{ e.sha256[:8] }} · {{ e.generator }} · {{ e.experiment }}
{% if e.confirmed %}<span class="badge">confirmed</span>{% endif %}
{% if e.selected %}<span class="badge">selected</span>{% endif %}</h2>
{% if e.flags %}<ul class="flags">{% for f in e.flags %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}
<table class="rungs"><tr><th>run</th><th>B-WR</th><th>B-WR 95 %</th><th>BSOTA-WR</th><th>BSOTA-WR 95 %</th></tr>
{% for r in e.rungs %}<tr><td><a href="../#/experiments/{{ e.experiment_id }}/runs/{{ r.run_id }}">{{ r.variant }}</a></td>
<td>{{ num(r.b_wr) }}</td><td>[{{ num(r.b_wr_ci_low) }}, {{ num(r.b_wr_ci_high) }}]</td>
<td>{{ num(r.bsota_wr) }}</td><td>[{{ num(r.bsota_wr_ci_low) }}, {{ num(r.bsota_wr_ci_high) }}]</td></tr>{% endfor %}
</table>
<p>Reward model: {% if e.reward_score is none %}not screened by one{% else %}score {{ num(e.reward_score) }},
spread {{ num(e.reward_spread) }}{% endif %}</p>
<details open><summary>code</summary><pre class="code">{{ e.code or "(the code could not be read)" }}</pre></details>
{% if e.parent %}<details><summary>diff to its parent {{ e.parent[:8] }}</summary>
<pre class="diff">{{ e.diff or "(the parent's code could not be read)" }}</pre></details>{% endif %}
{% if e.review %}<p class="review" data-verdict="{{ e.review.verdict }}">{{ e.review.verdict }}{% if e.review.reason %}
({{ e.review.reason }}){% endif %} by {{ e.review.by or "?" }}{% if e.review.note %}: {{ e.review.note }}{% endif %}</p>{% endif %}
{% if e.editable %}
<form method="post" action="review" class="review-form">
<input type="hidden" name="{{ field }}" value="{{ token }}">
<input type="hidden" name="experiment_id" value="{{ e.experiment_id }}">
<input type="hidden" name="sha256" value="{{ e.sha256 }}">
<label>reason <select name="reason"><option value="">–</option>
{% for r in reasons %}<option value="{{ r }}">{{ r }}</option>{% endfor %}</select></label>
<label>note <textarea name="note"></textarea></label>
<button type="submit" name="verdict" value="approve">Approve</button>
<button type="submit" name="verdict" value="reject">Reject</button>
<button type="submit" name="verdict" value="">Save note</button>
</form>
{% else %}<p class="read-only">Read-only: reviewing needs EDIT permission on this experiment.</p>{% endif %}
</article>
{% endfor %}
</body></html>"""


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _template():
    from jinja2 import Environment

    return Environment(autoescape=True).from_string(PAGE)


def register(flask_app, route: str, client: Callable, reader: Callable, access: Callable[[], Access]) -> None:
    """Serve the queue at `route` (GET, POST) on MLflow's Flask app."""
    from flask import Response, redirect, request

    template = _template()

    def page(message: str = "", status: int = 200):
        who = access()
        c = client()
        experiments = {e.experiment_id: e.name for e in c.search_experiments(
            filter_string=f"tags.`{names.EXPERIMENT_KIND}` = '{names.MODEL_DEVELOPMENT}'")
            if who.readable(e.experiment_id)}
        entries = queue(c, experiments, reader(c))
        editable = {exp: who.editable(exp) for exp in experiments}
        for e in entries:
            e["editable"] = editable[e["experiment_id"]]
        token = request.cookies.get(COOKIE) or secrets.token_urlsafe(32)
        body = template.render(entries=entries, user=who.user, token=token, field=FIELD,
                               reasons=names.REVIEW_REASONS, num=_num, message=message)
        answer = Response(body, status=status, mimetype="text/html")
        answer.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path=route.rsplit("/", 1)[0] + "/",
                          secure=request.is_secure)
        return answer

    def refused(why: str, status: int):
        return Response(why + "\n", status=status, mimetype="text/plain")

    def record():
        form, cookie = request.form, request.cookies.get(COOKIE, "")
        sent = form.get(FIELD, "")
        if not cookie or not sent or not hmac.compare_digest(cookie, sent):
            return refused("refused: the CSRF token is missing or does not match (reload the queue)", 403)
        exp_id, sha = form.get("experiment_id", ""), form.get("sha256", "")
        if not EXPERIMENT.match(exp_id) or not SHA.match(sha):
            return refused("refused: no such hypothesis", 400)
        who = access()
        if not who.readable(exp_id) or not who.editable(exp_id):
            return refused(f"refused: {who.user} may not edit experiment {exp_id}", 403)
        c = client()
        runs = hypothesis_runs(c, exp_id, f"tags.`{names.HYPOTHESIS_SHA256}` = '{sha}'")
        if not runs:
            return refused("refused: no such hypothesis", 404)
        try:
            reviews.write(c, [r.info.run_id for r in runs], form.get("verdict", ""),
                          form.get("reason", ""), form.get("note", ""), by=who.user)
        except reviews.ReviewError as exc:
            return page(f"Not recorded: {exc}", 400)
        return redirect(f"review#h-{sha[:12]}", code=303)

    def view():
        return record() if request.method == "POST" else page()

    flask_app.add_url_rule(route, "mlr_review", view, methods=["GET", "POST"])
