"""What the review queue at /mlr/review lists: hypotheses a person should look at, with what they need.

Listed, in this order: confirmed hypotheses, then selected ones (trained in full), then the
suspicious among the rest. A hypothesis is suspicious when
- its rungs disagree: B-WR differs by more than DISAGREEMENT between one-pass, full and
  confirmation (a cheap number that did not hold, or a confirmation that did not repeat);
- it is a near-duplicate of a reference: its behavioural fingerprint lies within NEAR_REFERENCE of a
  baseline's or SOTA component's (fingerprint.distance; a rediscovery is within the dedup tolerance);
- the reward model was unsure: its ensemble's spread is above HIGH_SPREAD (standardised units).
Each entry carries its code and the diff to its first parent, every rung's run with B-WR and
BSOTA-WR and their intervals, the reward score and spread where it was screened, and its review.
"""
from __future__ import annotations

import difflib
from typing import Callable

from ..tracking import names
from ..tracking.queries import hypothesis_runs
from ..tracking.reviews import reviews_by_sha

DISAGREEMENT = 0.25  # B-WR difference between two rungs of one hypothesis
NEAR_REFERENCE = 0.05  # fingerprint distance (50 x the default dedup tolerance)
HIGH_SPREAD = 0.5  # reward ensemble spread, in the standardised units of its scores
LIMIT = 60  # entries listed
RUNGS = ("one-pass", "full", "confirm")

_REFERENCE_FPS: dict[str, list] = {}  # kind -> [(name, fingerprint)]: built-in code, computed once


def reference_fingerprints(kind: str) -> list:
    """(name, fingerprint) of the kind's built-in components. They are the package's own code, so
    they are fingerprinted here, in the server's process, once; hypotheses never are."""
    if kind not in _REFERENCE_FPS:
        import numpy as np

        from ..fingerprint import fingerprints
        from ..kinds import get_kind

        k = get_kind(kind)
        named = sorted(k.components)
        try:
            rows = fingerprints({"kind": kind, "sources": [k.component(n) for n in named]})["features"]
            _REFERENCE_FPS[kind] = [(n, np.asarray(v, dtype=np.float64))
                                    for n, v in zip(named, rows) if v is not None and None not in v]
        except Exception:  # no flag rather than no page
            _REFERENCE_FPS[kind] = []
    return _REFERENCE_FPS[kind]


def _near_reference(kind: str, tag: str | None) -> tuple[str, float] | None:
    from ..fingerprint import decode, distance

    mine = decode(tag)
    if mine is None:
        return None
    near = [(name, distance(mine, fp)) for name, fp in reference_fingerprints(kind)]
    near = [(n, d) for n, d in near if d <= NEAR_REFERENCE]
    return min(near, key=lambda nd: nd[1]) if near else None


def _rung(run) -> dict:
    m = run.data.metrics
    return {"variant": run.data.tags.get(names.VARIANT), "run_id": run.info.run_id,
            **{key: m.get(key) for key in (names.B_WR, "b_wr_ci_low", "b_wr_ci_high", names.BSOTA_WR,
                                           "bsota_wr_ci_low", "bsota_wr_ci_high")}}


def _flags(entry: dict, kind: str, fingerprint_tag: str | None) -> list[str]:
    flags = []
    b = {r["variant"]: r[names.B_WR] for r in entry["rungs"] if r[names.B_WR] is not None}
    for low, high in (("one-pass", "full"), ("full", "confirm"), ("one-pass", "confirm")):
        if low in b and high in b and abs(b[low] - b[high]) > DISAGREEMENT:
            flags.append(f"rungs disagree: {low} B-WR {b[low]:.2f}, {high} {b[high]:.2f}")
            break
    near = _near_reference(kind, fingerprint_tag)
    if near:
        flags.append(f"near-duplicate of the reference {near[0]} (fingerprint distance {near[1]:.3f})")
    spread = entry["reward_spread"]
    if spread is not None and spread > HIGH_SPREAD:
        flags.append(f"reward model unsure: spread {spread:.2f}")
    return flags


def _diff(parent: str | None, child: str | None, parent_name: str, child_name: str) -> str | None:
    if parent is None or child is None:
        return None
    return "".join(difflib.unified_diff(parent.splitlines(True), child.splitlines(True),
                                        parent_name, child_name))


def queue(client, experiments: dict[str, str], read_text: Callable[[str, str], str | None],
          limit: int = LIMIT) -> list[dict]:
    """The queue over `experiments` (id -> name), first LIMIT entries (see the module docstring)."""
    entries = []
    for exp_id, exp_name in experiments.items():
        runs = hypothesis_runs(client, exp_id, f"tags.`{names.STATUS}` = 'evaluated'")
        by_sha: dict[str, list] = {}
        for run in sorted(runs, key=lambda r: r.info.start_time):
            sha = run.data.tags.get(names.HYPOTHESIS_SHA256)
            if sha and run.data.tags.get(names.VARIANT) in RUNGS:
                by_sha.setdefault(sha, []).append(run)
        reviewed = reviews_by_sha(runs)
        for sha, rs in by_sha.items():
            tags = {k: v for r in rs for k, v in r.data.tags.items()}
            metrics = {k: v for r in rs for k, v in r.data.metrics.items()
                       if k in (names.REWARD_SCORE, names.REWARD_SPREAD)}
            kind = tags.get(names.KIND, "")
            entry = {"experiment_id": exp_id, "experiment": exp_name, "kind": kind, "sha256": sha,
                     "generator": tags.get(names.GENERATOR, "?"), "run_ids": [r.info.run_id for r in rs],
                     "confirmed": tags.get(names.CONFIRMED) == "true",
                     "selected": any(r.data.tags.get(names.VARIANT) in ("full", "confirm") for r in rs),
                     "rungs": [_rung(r) for r in rs],
                     "reward_score": metrics.get(names.REWARD_SCORE),
                     "reward_spread": metrics.get(names.REWARD_SPREAD),
                     "review": reviewed.get(sha), "parents": tags.get(names.PARENTS, "")}
            entry["flags"] = _flags(entry, kind, tags.get(names.FINGERPRINT))
            if entry["confirmed"] or entry["selected"] or entry["flags"]:
                best = max((r[names.B_WR] for r in entry["rungs"] if r[names.B_WR] is not None),
                           default=0.0)
                entry["order"] = (not entry["confirmed"], not entry["selected"], -best, sha)
                entries.append(entry)
    entries.sort(key=lambda e: e["order"])
    entries = entries[:limit]
    for e in entries:  # code only for what is shown
        e["code"] = read_text(e["run_ids"][0], names.HYPOTHESIS_ARTIFACT)
        parent = next((p for p in e["parents"].split(",") if p), None)
        parent_run = first_run_of(client, e["experiment_id"], parent) if parent else None
        e["parent"] = parent
        e["diff"] = _diff(read_text(parent_run, names.HYPOTHESIS_ARTIFACT) if parent_run else None,
                          e["code"], parent[:8] if parent else "", e["sha256"][:8])
    return entries


def first_run_of(client, exp_id: str, sha: str) -> str | None:
    """A run of the hypothesis `sha` in the experiment (its first), or None."""
    runs = hypothesis_runs(client, exp_id, f"tags.`{names.HYPOTHESIS_SHA256}` = '{sha}'")
    return min(runs, key=lambda r: r.info.start_time).info.run_id if runs else None
