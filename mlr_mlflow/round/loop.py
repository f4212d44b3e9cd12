"""A discovery round: generate -> validate -> screen -> one-pass evaluate -> full evaluate -> confirm
-> summarise, as successive halving (halving.py: the reward screen picks eta * top_k, one-pass
training promotes its best top_k to full training). Selection looks at validation win rates only;
test win rates are what is reported, and `confirm` re-tests the selected on fresh seeds and a
fresh split. The round's training cost is logged in full-training equivalents.

The round is an MLflow parent run (`mlr.role=round`) in the kind's experiment; every hypothesis
evaluation is a nested run under it. Generated code that is already known to the experiment (same
normalised-AST hash, evaluated or rejected before) is never evaluated again, whoever proposed it.
The round run keeps the counts, the validator pass rate, the best B-WR, `generation.json` (every
proposal: accepted, duplicate or failed, with its reason) and the `leaderboard.json` table.
"""
from __future__ import annotations

import dataclasses
import time
import uuid

from typing import Callable

from ..config import Config, UsageError, for_kind
from .confirm import confirm, confirmation_config
from ..suite_check.known import stated_reliability
from .transfer import transfer, transfer_config
from ..executors import Executor, make_executor
from ..generate import Context, make_generator, with_defaults
from ..generate.portfolio import ArmStats, Portfolio
from ..generate.context import round_context
from .halving import next_wave, one_pass_share, promote, reward_rung, round_cost, wave_sizes
from .leaderboard import best_of, columns, leaderboard
from .proposals import collect, known_hypotheses, open_dedup, progress_bar, record_unevaluated
from .resume import (SCREEN, beat, done_and_interrupted, generation_records, hypotheses_from_records,
                     link_reruns, round_lease, round_number, round_numbers, saved_selection,
                     unfinished_round)
from . import report as round_report
from .selection import Selection
from .summary import RoundSummary
from ..tracking import create_run, experiment_id, finish, log, log_json, names, reviews
from ..tracking.lease import LeaseLost
from ..tracking.queries import arm_history, round_runs
from ..tracking.runs import end_failed

class Round:
    """One discovery round of one kind into a tracking store."""

    def __init__(self, client, config: Config, kind: str, *, generator=None,
                 progress: Callable[[str], None] = lambda _: None):
        config = for_kind(config, kind)  # the default suite's image and sequence tasks fit activations only
        self.client, self.config, self.kind, self.progress = client, config, kind, progress
        self.generator = with_defaults(generator or make_generator(config.discover.generator, config))
        self.exp_id = experiment_id(client, config.experiment_name(kind))
        self.number = 0  # the round's number in its experiment: the step of its metrics

    def run(self, n: int, top_k: int, seeds: int, seed: int | None = None,
            wait_s: float = 0.0) -> RoundSummary:
        if n < 1:
            raise UsageError("--n must be at least 1")
        if self.config.confirm.enabled:
            confirmation_config(self.config, seeds)  # bad [confirm] seeds: refused before any work
            transfer_config(self.config)  # held-out tasks that the suite holds: likewise
        with round_lease(self.client, self.exp_id, self.kind).acquire(wait_s) as lease:
            self._sandbox_usable()
            if seed is None:  # the number of rounds before this one: under the lease, no two share it
                seed = len(round_runs(self.client, self.exp_id))
            round_id = uuid.uuid4().hex[:12]
            self.number = round_report.round_number(self.client, self.exp_id)
            run_id = create_run(self.client, self.exp_id,
                                round_report.round_name(self.number, self.generator.name, n), {
                names.ROLE: "round", names.KIND: self.kind, names.ROUND_ID: round_id,
                names.GENERATOR: self.generator.name, names.ROUND_NUMBER: str(self.number)})
            params = {"kind": self.kind, "n": n, "top_k": top_k, "seeds": seeds, "seed": seed,
                      "generator": self.generator.name, "eta": self.config.discover.eta,
                      "waves": self.config.discover.waves}
            return self._drive(lease, run_id, round_id, n, top_k, seeds, seed, params=params)

    def _sandbox_usable(self) -> None:
        """The backend is probed (a usage error if unusable) once the round is sure to run code:
        after the lease and the search for a round to resume, before anything is written."""
        from ..sandbox import resolve_backend

        resolve_backend(self.config.sandbox.backend)

    def resume(self, wait_s: float = 0.0) -> RoundSummary | None:
        """Finish the latest unfinished round of the kind (None when there is none)."""
        with round_lease(self.client, self.exp_id, self.kind).acquire(wait_s) as lease:
            run = unfinished_round(self.client, self.exp_id)
            if run is None:
                return None
            self._sandbox_usable()
            run_id, params = run.info.run_id, run.data.params
            round_id = run.data.tags[names.ROUND_ID]
            self.number = round_number(run_id, run.data.tags)
            if run.data.tags.get(names.GENERATOR, self.generator.name) != self.generator.name:
                self.generator = with_defaults(make_generator(run.data.tags[names.GENERATOR], self.config))
            self.progress(f"resuming round {run_id} ({round_id})")
            return self._drive(lease, run_id, round_id, *round_numbers(run_id, params), resumed=True)

    def _drive(self, lease, run_id, round_id, n, top_k, seeds, seed, *, params=None,
               resumed=False) -> RoundSummary:
        """Everything that writes to the round run happens inside the `try`, so the run is always
        ended; except when the lease was lost: the run then belongs to the new holder."""
        summary = RoundSummary(round_run_id=run_id, round_id=round_id)
        try:
            if params:
                log(self.client, run_id, params=params)
            beat(self.client, run_id, lease)
            lease.on_beat.append(lambda held: beat(self.client, run_id, held))
            records = None
            if resumed:
                lease.check()  # still ours, asked of the store, before the round is reopened
                self.client.update_run(run_id, status="RUNNING")
                log(self.client, run_id, tags={names.ROUND_RESUMED: str(int(time.time()))})
                records = generation_records(self.client, run_id)
            lease.check()
            if records is None:
                seen, known = known_hypotheses(self.client, self.exp_id,
                                               self.config.discover.parents, exclude_round=round_id)
                context, archive_metrics = round_context(
                    self.client, self.config, self.exp_id, self.kind, seed, known,
                    exclude_round=round_id, prompts=self.generator.name == "llm")
                log(self.client, run_id, metrics=archive_metrics, step=self.number)
                with self._traced():
                    context = dataclasses.replace(
                        context, avoid=frozenset(seen),
                        reviews=tuple(reviews.feedback(self.client, self.exp_id)))
                    hypotheses, records = self._generate(context, n, seen, summary)
                    lease.check()
                    log_json(self.client, run_id, records, names.GENERATION_ARTIFACT)
                    self._link_traces(run_id)
            else:
                hypotheses = hypotheses_from_records(records, self.kind)
                summary.generated = len(hypotheses)
                summary.duplicates = sum(r["status"] == "duplicate" for r in records)
                summary.semantic_duplicates = sum(r["status"] == "duplicate" and "source" in r
                                                  for r in records)
                summary.rediscoveries = sum(r["status"] == "rediscovery" for r in records)
                summary.generation_failures = sum(r["status"] == "failed" for r in records)
                summary.stop_reason = self.client.get_run(run_id).data.tags.get(names.ROUND_STOP_REASON)
            self._evaluate(hypotheses, top_k, seeds, run_id, round_id, summary, lease)
            # after evaluation, so a duplicate of this round's own hypothesis names its run
            record_unevaluated(self.client, self.exp_id, run_id, round_id, self.kind, records)
            round_report.report(self.client, self.exp_id, run_id, summary, self.number,
                                self.generator.cost_usd, self.progress)
            lease.check()
            if summary.generated == 0:
                finish(self.client, run_id, failed=True, status_tag="no-hypotheses",
                       reasons=[f"no hypothesis was generated: {summary.stop_reason or 'unknown'}"])
            else:
                finish(self.client, run_id, status_tag="finished")
                lease.check()  # held since the last check (same token): nobody reopened it since
        except LeaseLost:
            raise  # another process holds the round now: leave its run alone
        except BaseException as exc:
            end_failed(self.client, run_id, exc)
            raise
        return summary

    def _traced(self):
        """LLM calls are traced through MLflow's fluent state: generation then holds the fluent
        lock (tracking/fluent.py), so traces of two rounds in one process never cross."""
        from contextlib import nullcontext

        from ..tracking.fluent import fluent_store

        problem = self.generator.enable_tracing(self.client.tracking_uri, self.exp_id)
        if problem:
            self.progress(f"LLM calls are not traced in MLflow: {problem}")
        if problem or not self.generator.tracing:
            return nullcontext()
        return fluent_store(self.client.tracking_uri, self.exp_id)

    def _generate(self, context: Context, n: int, seen: dict[str, str], summary: RoundSummary):
        self.progress(f"generating {n} {self.kind} hypotheses with the {self.generator.name} generator")
        portfolio = isinstance(self.generator, Portfolio)
        if portfolio:  # earlier rounds' yields start the bandit
            self.generator.remember({label: ArmStats(**entry) for label, entry in
                                     arm_history(self.client, self.exp_id).items()})
        with open_dedup(self.client, self.config, self.exp_id, self.kind,
                        exclude_round=summary.round_id) as dedup:
            hypotheses, records, metrics = collect(self.generator, context, self.kind, n, seen,
                                                   n * self.config.discover.max_attempts_factor,
                                                   summary, dedup)
        for record in records:
            if record["status"] == "failed":
                summary.reject([record.get("error") or "generation failed"])
        if portfolio:
            metrics.update(self.generator.metrics())
        tags = {names.ROUND_STOP_REASON: summary.stop_reason} if summary.stop_reason else {}
        log(self.client, summary.round_run_id, metrics=metrics, tags=tags, step=self.number)
        if summary.stop_reason:
            self.progress(f"generation stopped early: {summary.stop_reason}")
        return hypotheses, records

    def _link_traces(self, run_id: str) -> None:
        ids = list(self.generator.trace_ids)
        if not ids:
            return
        import mlflow

        mlflow.flush_trace_async_logging()
        for start in range(0, len(ids), 100):  # the API takes at most 100 per call
            self.client.link_traces_to_run(ids[start:start + 100], run_id)

    def _champion(self, run_id: str):
        """The champion to screen with, or None for one-pass screening. The choice is recorded
        (tag mlr.screen) before anything is trained, and a resumed round keeps it."""
        mode = self.config.discover.screen
        recorded = self.client.get_run(run_id).data.tags.get(SCREEN)
        if recorded == "one-pass" or (recorded is None and mode == "one-pass"):
            log(self.client, run_id, tags={SCREEN: "one-pass"})
            return None
        from ..reward.screen import load_champion

        champion = load_champion(self.client, self.kind)
        if champion is None and mode == "reward":
            raise UsageError(f"discover.screen = 'reward' but mlr-reward-{self.kind} has no champion "
                             f"(run `mlr-mlflow reward train` and `reward promote` first)")
        if recorded == "reward" and champion is None and saved_selection(self.client, run_id) is None:
            raise UsageError(f"round {run_id} was screened by a reward model that is gone, before "
                             "it saved its selection; promote a champion and resume again")
        log(self.client, run_id, tags={SCREEN: "one-pass" if champion is None else "reward"})
        return champion

    def _evaluate(self, hypotheses, top_k, seeds, run_id, round_id, summary: RoundSummary,
                  lease) -> None:
        if not hypotheses:
            return
        evaluator = make_executor(self.client, self.config, self.progress)  # [executor]: local or ray
        # a decision made before a kill stands (naming only this round's own hypotheses)
        selection = saved_selection(self.client, run_id, {h.sha256 for h in hypotheses})
        champion = None if selection else self._champion(run_id)
        lease.check()
        if champion is None and selection is None:
            started = time.perf_counter()
            with progress_bar(len(hypotheses), "one-pass") as bar:
                one_pass = self._evaluate_once(evaluator, hypotheses, "one-pass", seeds, run_id,
                                              round_id)
                bar.update(len(hypotheses))
            log(self.client, run_id, metrics={names.ONE_PASS_SECONDS: time.perf_counter() - started},
                step=self.number)
            summary.valid = sum(1 for ev in one_pass if ev.valid or ev.stage == "training")
            for ev in one_pass:
                if not ev.valid:
                    summary.reject(ev.reasons)
            how = "by one-pass screen_score"
        else:
            one_pass = self._reward_screened(champion, selection, evaluator, hypotheses, top_k,
                                             seeds, run_id, round_id, summary, lease)
            how = "by one-pass screen_score among the reward model's picks"
        chosen = [ev.hypothesis for ev in promote(one_pass, top_k)]
        summary.evaluated = sum(1 for ev in one_pass if ev.valid)
        full = []
        lease.check()
        started = time.perf_counter()
        if chosen:
            self.progress(f"full training of the top {len(chosen)} {how}")
            with progress_bar(len(chosen), "full") as bar:
                full = self._evaluate_once(evaluator, chosen, "full", seeds, run_id,
                                          round_id)
                bar.update(len(chosen))
        summary.full_evaluated = sum(1 for ev in full if ev.valid)
        seconds = {names.FULL_SECONDS: time.perf_counter() - started}
        started = time.perf_counter()

        def evaluate_under(config, hypotheses, variant, n_seeds):
            """Confirmation's and transfer's evaluations: under their own config (fresh seeds and
            split, held-out tasks), on the executor that config names."""
            return self._evaluate_once(make_executor(self.client, config, self.progress), hypotheses,
                                       variant, n_seeds, run_id, round_id)

        confirmation = confirm(self.client, self.config, one_pass, full, seeds, run_id,
                               evaluate_under, self.progress, step=self.number)
        summary.selected, summary.confirmed = len(confirmation.selected), len(confirmation.confirmed)
        seconds[names.CONFIRM_SECONDS] = time.perf_counter() - started
        started = time.perf_counter()
        held_out = transfer(self.client, self.config, [ev for ev in full if ev.valid], run_id,
                            evaluate_under, self.progress, step=self.number)
        seconds[names.TRANSFER_SECONDS] = time.perf_counter() - started
        summary.transfers = len(held_out.transfers)
        summary.instrument = stated_reliability(self.client, self.config, self.kind, seeds)
        summary.leaderboard = leaderboard(one_pass, full, confirmation, held_out,
                                          (summary.instrument or {}).get("full_noise_ceiling"))
        summary.best = best_of(summary.leaderboard)
        trained = lambda evs: sum(1 for ev in evs if ev.valid or ev.stage == "training")  # noqa: E731
        cost = round_cost(self.config, seeds, trained(one_pass), trained(full),
                          trained(confirmation.evaluations.values()) + trained(held_out.evaluations.values()))
        summary.cost_full_equivalents = cost.full_equivalents
        log(self.client, run_id, metrics={
            names.VALID: summary.valid, names.EVALUATED: summary.evaluated,
            names.FULL_EVALUATED: summary.full_evaluated,
            names.VALIDATOR_PASS_RATE: summary.valid / len(hypotheses),
            names.BEST_B_WR: summary.best["b_wr"] if summary.best else None, **cost.metrics(),
            **{f"{names.INSTRUMENT_PREFIX}{k}": (summary.instrument or {}).get(k)
               for k in ("full_noise_ceiling", "cheap_vs_full", "relu_like_ceiling", "verdict_noise_ceiling",
                         "cheap_vs_verdict", "full_noise_ceiling_at_round_seeds")}, **seconds},
            tags={names.INSTRUMENT_SOURCE: (summary.instrument or {}).get("source", "unknown")},
            step=self.number)
        if summary.leaderboard:
            self.client.log_table(run_id, data=columns(summary.leaderboard),
                                  artifact_file=names.LEADERBOARD_ARTIFACT)

    def _evaluate_once(self, evaluator: Executor, hypotheses, variant, seeds, run_id, round_id):
        """Evaluate what this round has not evaluated yet; finished runs (from before a kill) are
        kept as they are, leftovers of a dead process are marked interrupted and done again."""
        from ..evaluate.evaluation import Evaluation

        done = done_and_interrupted(self.client, self.exp_id, round_id, variant)
        todo = [h for h in hypotheses if h.sha256 not in done]
        if len(todo) < len(hypotheses):
            self.progress(f"{len(hypotheses) - len(todo)} {variant} evaluation(s) kept from before")
        fresh = {}
        if todo:
            fresh = {ev.hypothesis.sha256: ev for ev in evaluator.evaluate(
                todo, variant, seeds, parent_run_id=run_id, round_id=round_id)}
            link_reruns(self.client, self.exp_id, round_id, variant)
        return [fresh[h.sha256] if h.sha256 in fresh else Evaluation.from_run(done[h.sha256], h)
                for h in hypotheses]

    def _record_screened(self, evaluator: Executor, hypotheses, checks, seeds, run_id, round_id) -> None:
        done = done_and_interrupted(self.client, self.exp_id, round_id, "screened")
        keep = [i for i, h in enumerate(hypotheses) if h.sha256 not in done]
        if keep:
            evaluator.record_unevaluated([hypotheses[i] for i in keep], [checks[i] for i in keep],
                                         seeds, parent_run_id=run_id, round_id=round_id)

    def _reward_screened(self, champion, selection: Selection | None, evaluator, hypotheses, top_k,
                         seeds, run_id, round_id, summary: RoundSummary, lease):
        """The seed paper's screening, the bottom rung of the halving: validate all, score the valid
        ones with the champion before any training, evaluate one-pass only the selection
        (eta * top_k by MMR plus random exploration picks), in `[discover] waves` waves, the
        champion refitted on the round's evaluations before each later wave. Each decision is saved
        (selection.json) before what it picks is trained; a resumed round passes the saved one in
        `selection` and acts on it, whatever the champion (or eta) is by then."""
        from ..sandbox import warm_sandbox
        from ..validate import validate_many

        self.progress(f"validating {len(hypotheses)} hypotheses before screening")
        with warm_sandbox(self.config.sandbox) as sandbox:
            checks = validate_many(hypotheses, sandbox, self.config.sandbox)
        seed = int(self.client.get_run(run_id).data.params.get("seed", 0))
        if selection is None:
            valid = [h for h, c in zip(hypotheses, checks) if c.valid]
            sizes = wave_sizes(one_pass_share(len(valid), top_k, self.config.discover.eta),
                               self.config.discover.waves)
            self.progress(f"scoring {len(valid)} valid hypotheses with the reward model's champion; "
                          f"{sum(sizes)} go on to one-pass training in {len(sizes)} wave(s)")
            selection = reward_rung(champion, valid, sizes, self.config, seed=seed)
            lease.check()
            log_json(self.client, run_id, selection.to_json(), names.SELECTION_ARTIFACT)
        else:
            self.progress("screening: the selection saved before the interruption stands")
        by_sha = {h.sha256: h for h in hypotheses}
        valid = [by_sha[sha] for sha in selection.scores]
        summary.valid = len(valid)
        one_pass = self._one_pass_wave(selection, by_sha, evaluator, seeds, run_id, round_id)
        learned: set[str] = set()  # what the champion in memory has been refitted on
        while selection.more_waves:
            if champion is None:  # a resumed round: the champion of now, if there is one
                from ..reward.screen import load_champion

                champion = load_champion(self.client, self.kind)
            if champion is None:
                self.progress("no champion to refit: the waves picked so far are the selection")
                break
            lease.check()
            learn = [ev for ev in one_pass if ev.hypothesis.sha256 not in learned]
            selection = next_wave(champion, selection, valid, learn, self.config, seed)
            learned |= {ev.hypothesis.sha256 for ev in learn}
            self.progress(f"wave {len(selection.waves)}: the champion refitted on "
                          f"{selection.refits[-1]['learned']} evaluation(s) picks "
                          f"{len(selection.waves[-1])} more")
            log_json(self.client, run_id, selection.to_json(), names.SELECTION_ARTIFACT)
            one_pass = self._one_pass_wave(selection, by_sha, evaluator, seeds, run_id, round_id)
        picks = set(selection.picks)
        screened = selection.screened(by_sha)
        rest = [i for i, h in enumerate(hypotheses) if h.sha256 not in picks]
        for check in checks:
            if not check.valid:
                summary.reject(check.reasons)
        self._record_screened(evaluator, [screened.get(hypotheses[i].sha256, hypotheses[i]) for i in rest],
                              [checks[i] for i in rest], seeds, run_id, round_id)
        log(self.client, run_id, metrics={**(selection.metrics or {}), names.EXPLORED: len(selection.explored),
                                          names.SCREENED_OUT: sum(checks[i].valid for i in rest),
                                          names.SCREEN_WAVES: len(selection.waves)},
            tags={SCREEN: "reward", names.SCREEN_MODEL_RUN_ID: selection.model_run_id}, step=self.number)
        return one_pass

    def _one_pass_wave(self, selection: Selection, by_sha, evaluator, seeds, run_id, round_id):
        """One-pass evaluations of every pick so far (those from earlier waves are kept as they
        are), each run carrying the score that picked it, how it was picked and its wave."""
        screened = selection.screened(by_sha)
        chosen = [screened[sha] for sha in selection.picks]
        return self._evaluate_once(evaluator, chosen, "one-pass", seeds, run_id,
                                   round_id) if chosen else []
