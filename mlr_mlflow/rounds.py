"""A discovery round: generate -> validate -> one-pass evaluate -> screen -> full evaluate -> confirm
-> summarise. Selection looks at validation win rates only; test win rates are what is reported, and
`confirm` re-tests the selected on fresh seeds and a fresh split.

The round is an MLflow parent run (`mlr.role=round`) in the kind's experiment; every hypothesis
evaluation is a nested run under it. Generated code that is already known to the experiment (same
normalised-AST hash, evaluated or rejected before) is never evaluated again, whoever proposed it.
The round run keeps the counts, the validator pass rate, the best B-WR, `generation.json` (every
proposal: accepted, duplicate or failed, with its reason) and the `leaderboard.json` table.
"""
from __future__ import annotations

import json
import sys
import time
import uuid

import numpy as np
from dataclasses import dataclass, field
from typing import Callable

from .config import Config
from .confirm import confirm, confirmation_config
from .generate import Context, GenerationStopped, Known, make_generator
from .hypothesis import Hypothesis
from .leaderboard import best_of, columns, leaderboard
from .resume import (Heartbeat, claim, done_and_interrupted, evaluation_from_run,
                     hypotheses_from_records, unfinished_round)
from .tracking import create_run, experiment_id, finish, log, log_json, names

SEEN_STATUSES = ("evaluated", "invalid")  # judged already; "error" runs may be tried again


@dataclass
class RoundSummary:
    """What `discover --json` prints (CONTRACT.md keys first)."""

    round_run_id: str
    round_id: str
    generated: int = 0
    valid: int = 0
    evaluated: int = 0
    full_evaluated: int = 0
    selected: int = 0
    confirmed: int = 0
    duplicates: int = 0
    generation_failures: int = 0
    best: dict | None = None
    stop_reason: str | None = None
    leaderboard: list[dict] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {"round_run_id": self.round_run_id, "generated": self.generated, "valid": self.valid,
                "evaluated": self.evaluated, "best": self.best, "round_id": self.round_id,
                "full_evaluated": self.full_evaluated, "duplicates": self.duplicates,
                "selected": self.selected, "confirmed": self.confirmed,
                "generation_failures": self.generation_failures, "stop_reason": self.stop_reason}


def hypothesis_runs(client, exp_id: str, extra: str = "") -> list:
    """Every hypothesis run of an experiment (all pages)."""
    runs, token = [], None
    query = f"tags.`{names.ROLE}` = 'hypothesis'" + (f" and {extra}" if extra else "")
    while True:
        page = client.search_runs([exp_id], filter_string=query, max_results=5000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def known_hypotheses(client, exp_id: str, limit: int,
                     exclude_round: str | None = None) -> tuple[dict[str, str], list[Known]]:
    """(sha256 -> a run id, for every hypothesis judged already; the best `limit` as Known)."""
    import tempfile
    from pathlib import Path

    seen: dict[str, str] = {}
    best: dict[str, tuple[float, object]] = {}
    for run in hypothesis_runs(client, exp_id):
        tags = run.data.tags
        sha = tags.get(names.HYPOTHESIS_SHA256)
        if not sha or tags.get(names.STATUS) not in SEEN_STATUSES or \
                (exclude_round and tags.get(names.ROUND_ID) == exclude_round):
            continue
        seen.setdefault(sha, run.info.run_id)
        if tags.get(names.VARIANT) == "confirm":  # confirmation data never steers generation
            continue
        b_wr = run.data.metrics.get(names.B_WR)
        if b_wr is not None and (sha not in best or b_wr > best[sha][0]):
            best[sha] = (b_wr, run)
    top = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
    known = []
    with tempfile.TemporaryDirectory() as tmp:
        for sha, (b_wr, run) in top:
            path = client.download_artifacts(run.info.run_id, names.HYPOTHESIS_ARTIFACT, tmp)
            known.append(Known(source=Path(path).read_text(), b_wr=b_wr, sha256=sha,
                               genome=run.data.tags.get(names.SYMBOLIC_GENOME)))
    return seen, known


def _bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="hyp", file=sys.stderr, leave=True,
                disable=not sys.stderr.isatty())


def _val(ev, name: str) -> float:
    value = getattr(ev, f"val_{name}")
    return value if value is not None else (getattr(ev, name) or 0.0)  # runs from before val metrics


def screen(evaluations: list, top_k: int) -> list:
    """The best `top_k` valid one-pass evaluations by validation (B-WR, BSOTA-WR), never by test
    numbers; ties by hash, so stable."""
    valid = [ev for ev in evaluations if ev.valid and ev.b_wr is not None]
    valid.sort(key=lambda ev: (-_val(ev, "b_wr"), -_val(ev, "bsota_wr"), ev.hypothesis.sha256))
    return valid[:max(top_k, 0)]


class Round:
    """One discovery round of one kind into a tracking store."""

    def __init__(self, client, config: Config, kind: str, *, generator=None,
                 progress: Callable[[str], None] = lambda _: None):
        self.client, self.config, self.kind, self.progress = client, config, kind, progress
        self.generator = generator or make_generator(config.discover.generator, config)
        self.exp_id = experiment_id(client, config.experiment_name(kind))

    def run(self, n: int, top_k: int, seeds: int, seed: int | None = None) -> RoundSummary:
        if n < 1:
            raise ValueError("--n must be at least 1")
        if self.config.confirm.enabled:
            confirmation_config(self.config, seeds)  # bad [confirm] seeds: refused before any work
        if seed is None:  # reproducible from the store: the number of rounds before this one
            seed = len(self.client.search_runs([self.exp_id], f"tags.`{names.ROLE}` = 'round'",
                                               max_results=10000))
        round_id = uuid.uuid4().hex[:12]
        run_id = create_run(self.client, self.exp_id, f"round-{self.kind}-{round_id[:6]}", {
            names.ROLE: "round", names.KIND: self.kind, names.ROUND_ID: round_id,
            names.GENERATOR: self.generator.name})
        log(self.client, run_id, params={"kind": self.kind, "n": n, "top_k": top_k, "seeds": seeds,
                                         "seed": seed, "generator": self.generator.name})
        with Heartbeat(self.client, run_id):
            return self._drive(run_id, round_id, n, top_k, seeds, seed, records=None)

    def resume(self) -> RoundSummary | None:
        """Finish the latest unfinished round of the kind (None when there is none)."""
        run = unfinished_round(self.client, self.exp_id)
        if run is None:
            return None
        run_id, params = run.info.run_id, run.data.params
        round_id = run.data.tags[names.ROUND_ID]
        if run.data.tags.get(names.GENERATOR, self.generator.name) != self.generator.name:
            from .generate import make_generator

            self.generator = make_generator(run.data.tags[names.GENERATOR], self.config)
        with Heartbeat(self.client, run_id) as heartbeat:
            claim(self.client, run_id, heartbeat)
            self.client.update_run(run_id, status="RUNNING")
            log(self.client, run_id, tags={"mlr.round.resumed": str(int(time.time()))})
            self.progress(f"resuming round {run_id} ({round_id})")
            records = self._records(run_id)
            return self._drive(run_id, round_id, int(params["n"]), int(params["top_k"]),
                               int(params["seeds"]), int(params["seed"]), records)

    def _records(self, run_id: str) -> list[dict] | None:
        import tempfile
        from pathlib import Path

        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.client.download_artifacts(run_id, names.GENERATION_ARTIFACT, tmp)
            except (MlflowException, OSError):
                return None  # killed during generation: it is generated again, from the same seed
            return json.loads(Path(path).read_text())

    def _drive(self, run_id, round_id, n, top_k, seeds, seed, records) -> RoundSummary:
        summary = RoundSummary(round_run_id=run_id, round_id=round_id)
        if hasattr(self.generator, "enable_tracing"):
            problem = self.generator.enable_tracing(self.client.tracking_uri, self.exp_id)
            if problem:
                self.progress(f"LLM calls are not traced in MLflow: {problem}")
        try:
            if records is None:
                seen, known = known_hypotheses(self.client, self.exp_id,
                                               self.config.discover.parents, exclude_round=round_id)
                hypotheses, records = self._generate(Context(self.kind, tuple(known), seed), n,
                                                     seen, summary)
                log_json(self.client, run_id, records, names.GENERATION_ARTIFACT)
                self._link_traces(run_id)
            else:
                hypotheses = hypotheses_from_records(records, self.kind)
                summary.generated = len(hypotheses)
                summary.duplicates = sum(r["status"] == "duplicate" for r in records)
                summary.generation_failures = sum(r["status"] == "failed" for r in records)
                summary.stop_reason = self.client.get_run(run_id).data.tags.get(names.ROUND_STOP_REASON)
            self._evaluate(hypotheses, top_k, seeds, run_id, round_id, summary)
        except BaseException as exc:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            log(self.client, run_id, tags={names.STATUS: "error",
                                           names.REASONS: f"{type(exc).__name__}: {exc}"[:4000]})
            self.client.set_terminated(run_id, status=status)
            raise
        if summary.generated == 0:
            finish(self.client, run_id, failed=True, status_tag="no-hypotheses",
                   reasons=[f"no hypothesis was generated: {summary.stop_reason or 'unknown'}"])
        else:
            finish(self.client, run_id, status_tag="finished")
        return summary

    def _generate(self, context: Context, n: int, seen: dict[str, str], summary: RoundSummary):
        hypotheses: list[Hypothesis] = []
        records: list[dict] = []
        mine: set[str] = set()
        limit = n * self.config.discover.max_attempts_factor
        tokens = {"llm.prompt_tokens": 0.0, "llm.completion_tokens": 0.0}
        self.progress(f"generating {n} {self.kind} hypotheses with the {self.generator.name} generator")
        with _bar(n, "generate") as bar:
            proposals = iter(self.generator.propose(context))
            while len(hypotheses) < n:
                if len(records) >= limit:
                    summary.stop_reason = (f"the generator repeated itself: {len(hypotheses)} new of "
                                           f"{len(records)} proposals")
                    break
                try:
                    proposal = next(proposals)
                except StopIteration:
                    summary.stop_reason = "the generator had nothing more to propose"
                    break
                except GenerationStopped as exc:
                    summary.stop_reason = str(exc)
                    break
                for key in tokens:
                    tokens[key] += (proposal.origin.get("metrics") or {}).get(key, 0.0)
                record = {"index": len(records), **{k: v for k, v in proposal.origin.items()
                                                    if k == "tags"}}
                if proposal.source is None:
                    summary.generation_failures += 1
                    record.update(status="failed", error=proposal.error,
                                  reply=(proposal.origin.get("artifacts") or {}).get("llm/reply.txt"))
                else:
                    h = Hypothesis(self.kind, proposal.source, self.generator.name, proposal.origin)
                    record["sha256"] = h.sha256
                    if h.sha256 in seen or h.sha256 in mine:
                        summary.duplicates += 1
                        record.update(status="duplicate", of_run=seen.get(h.sha256, "this round"))
                    else:
                        mine.add(h.sha256)
                        hypotheses.append(h)
                        record.update(status="accepted", source=h.source, generator=h.generator,
                                      origin=proposal.origin)
                        bar.update(1)
                records.append(record)
        summary.generated = len(hypotheses)
        metrics = {"generated": summary.generated, "duplicates": summary.duplicates,
                   "generation_failures": summary.generation_failures, "proposals": len(records)}
        if any(tokens.values()):
            metrics.update(tokens, **{"llm.total_tokens": sum(tokens.values())})
        tags = {names.ROUND_STOP_REASON: summary.stop_reason} if summary.stop_reason else {}
        log(self.client, summary.round_run_id, metrics=metrics, tags=tags)
        if summary.stop_reason:
            self.progress(f"generation stopped early: {summary.stop_reason}")
        return hypotheses, records

    def _link_traces(self, run_id: str) -> None:
        ids = list(getattr(self.generator, "trace_ids", []))
        if not ids:
            return
        import mlflow

        mlflow.flush_trace_async_logging()
        for start in range(0, len(ids), 100):  # the API takes at most 100 per call
            self.client.link_traces_to_run(ids[start:start + 100], run_id)

    def _champion(self):
        mode = self.config.discover.screen
        if mode == "one-pass":
            return None
        from .reward.screen import load_champion

        champion = load_champion(self.client, self.kind)
        if champion is None and mode == "reward":
            raise ValueError(f"discover.screen = 'reward' but mlr-reward-{self.kind} has no champion "
                             f"(run `mlr-mlflow reward train` and `reward promote` first)")
        return champion

    def _evaluate(self, hypotheses, top_k, seeds, run_id, round_id, summary: RoundSummary) -> None:
        from .evaluate.evaluator import Evaluator

        if not hypotheses:
            return
        evaluator = Evaluator(self.client, self.config, self.progress)
        champion = self._champion()
        if champion is None:
            with _bar(len(hypotheses), "one-pass") as bar:
                one_pass = self._evaluate_once(evaluator, hypotheses, "one-pass", seeds, run_id,
                                              round_id)
                bar.update(len(hypotheses))
            summary.valid = sum(1 for ev in one_pass if ev.valid or ev.stage == "training")
            chosen = [ev.hypothesis for ev in screen(one_pass, top_k)]
            how = "by one-pass validation B-WR"
        else:
            one_pass, chosen = self._reward_screened(champion, evaluator, hypotheses, top_k, seeds,
                                                     run_id, round_id, summary)
            how = "chosen by the reward model"
        summary.evaluated = sum(1 for ev in one_pass if ev.valid)
        full = []
        if chosen:
            self.progress(f"full training of the top {len(chosen)} {how}")
            with _bar(len(chosen), "full") as bar:
                full = self._evaluate_once(evaluator, chosen, "full", seeds, run_id,
                                          round_id)
                bar.update(len(chosen))
        summary.full_evaluated = sum(1 for ev in full if ev.valid)
        confirmation = confirm(self.client, self.config, one_pass, full, seeds, run_id,
                               lambda *a: self._evaluate_once(*a, run_id, round_id), self.progress)
        summary.selected, summary.confirmed = len(confirmation.selected), len(confirmation.confirmed)
        summary.leaderboard = leaderboard(one_pass, full, confirmation)
        summary.best = best_of(summary.leaderboard)
        log(self.client, run_id, metrics={
            "valid": summary.valid, "evaluated": summary.evaluated,
            "full_evaluated": summary.full_evaluated,
            "validator_pass_rate": summary.valid / len(hypotheses),
            "best_b_wr": summary.best["b_wr"] if summary.best else None})
        if summary.leaderboard:
            self.client.log_table(run_id, data=columns(summary.leaderboard),
                                  artifact_file=names.LEADERBOARD_ARTIFACT)

    def _evaluate_once(self, evaluator, hypotheses, variant, seeds, run_id, round_id):
        """Evaluate what this round has not evaluated yet; finished runs (from before a kill) are
        kept as they are, leftovers of a dead process are marked interrupted and done again."""
        done = done_and_interrupted(self.client, self.exp_id, round_id, variant)
        todo = [h for h in hypotheses if h.sha256 not in done]
        if len(todo) < len(hypotheses):
            self.progress(f"{len(hypotheses) - len(todo)} {variant} evaluation(s) kept from before")
        fresh = {}
        if todo:
            fresh = {ev.hypothesis.sha256: ev for ev in evaluator.evaluate(
                todo, variant, seeds, parent_run_id=run_id, round_id=round_id)}
        return [fresh[h.sha256] if h.sha256 in fresh else evaluation_from_run(done[h.sha256], h)
                for h in hypotheses]

    def _record_screened(self, evaluator, hypotheses, checks, seeds, run_id, round_id) -> None:
        done = done_and_interrupted(self.client, self.exp_id, round_id, "screened")
        keep = [i for i, h in enumerate(hypotheses) if h.sha256 not in done]
        if keep:
            evaluator.record_unevaluated([hypotheses[i] for i in keep], [checks[i] for i in keep],
                                         seeds, parent_run_id=run_id, round_id=round_id)

    def _reward_screened(self, champion, evaluator, hypotheses, top_k, seeds, run_id, round_id,
                         summary: RoundSummary):
        """The seed paper's screening: validate all, score the valid ones with the champion before
        any training, evaluate only the selection (top-k by MMR plus random exploration picks)."""
        import pandas as pd

        from .reward.screen import mean_pairwise_similarity, select
        from .sandbox import open_sandbox
        from .validate import validate_many

        self.progress(f"validating {len(hypotheses)} hypotheses before screening")
        with open_sandbox(self.config.sandbox) as sandbox:
            checks = validate_many(hypotheses, sandbox, self.config.sandbox)
        valid = [i for i, c in enumerate(checks) if c.valid]
        summary.valid = len(valid)
        if not valid:
            self._record_screened(evaluator, hypotheses, checks, seeds, run_id, round_id)
            return [], []
        sources = [hypotheses[i].source for i in valid]
        self.progress(f"scoring {len(valid)} valid hypotheses with the reward model's champion")
        scores = np.asarray(champion.predict(pd.DataFrame({"code": sources})), dtype=float)
        vectors = champion.unwrap_python_model().embed(sources)
        d = self.config.discover
        picks, explored = select(scores, vectors, top_k, d.explore, d.mmr_lambda,
                                 seed=int(self.client.get_run(run_id).data.params.get("seed", 0)))
        for j, i in enumerate(valid):
            origin = hypotheses[i].origin
            origin.setdefault("metrics", {})["reward.score"] = float(scores[j])
            origin.setdefault("tags", {})["mlr.screen.pick"] = (
                "explore" if j in explored else "reward" if j in picks else "screened-out")
        chosen = [hypotheses[valid[j]] for j in picks]
        rest = [i for i in range(len(hypotheses)) if i not in {valid[j] for j in picks}]
        one_pass = self._evaluate_once(evaluator, chosen, "one-pass", seeds, run_id,
                                       round_id) if chosen else []
        self._record_screened(evaluator, [hypotheses[i] for i in rest], [checks[i] for i in rest],
                              seeds, run_id, round_id)
        similarity = mean_pairwise_similarity(vectors[picks]) if len(picks) > 1 else None
        version = getattr(champion.metadata, "run_id", "")
        log(self.client, run_id, metrics={"selection_mean_similarity": similarity,
                                          "pool_mean_similarity": mean_pairwise_similarity(vectors),
                                          "explored": len(explored), "screened_out": len(rest)},
            tags={"mlr.screen": "reward", "mlr.screen.model_run_id": version})
        return one_pass, [ev.hypothesis for ev in one_pass if ev.valid]
