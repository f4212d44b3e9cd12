"""`mlr-mlflow`: parse arguments, call a function of `commands`, print, exit per CONTRACT.md (the
user-facing words are DESCRIPTION and EPILOG: `--help` speaks to users, not to maintainers).

With --json the last line of standard output is one JSON object. Progress goes to standard error.
Nothing heavy is imported here: torch and lightning load only in sandboxed workers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from . import commands
from .terminal import browse_hint, round_lines
from .terminal import finite as _finite, progress as _progress, quiet_libraries as _quiet_libraries, \
    short_lines as _short_lines

KIND_CHOICES = ("activation", "preprocessing", "regularizer")
EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2
DESCRIPTION = ("Discover new ML components (activations, preprocessing steps, regularizers)\n"
               "automatically, with every hypothesis tried recorded in MLflow.")
EPILOG = """first steps:
  mlr-mlflow discover --kind activation        one round: propose, check, train, rank
  mlr-mlflow evaluate my_idea.py --kind activation
  mlflow ui --app-name mlr                     browse the results (or: mlr-mlflow dashboard)

exit status: 0 done, 1 a hypothesis or check failed, 2 an error (one line; --verbose shows more)"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    parser.add_argument("--json", action="store_true",
                        help="end standard output with one JSON object")
    parser.add_argument("--config", default=None, help="TOML file overriding the defaults")
    parser.add_argument("--verbose", action="store_true",
                        help="also show the warnings and log lines of the libraries underneath (MLflow...)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlr-mlflow", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser("validate", help="check a hypothesis file without training it")
    p.add_argument("file")
    p.add_argument("--kind", required=True, choices=KIND_CHOICES)
    _common(p)
    p.set_defaults(handler=_validate)

    p = verbs.add_parser("evaluate", help="train hypothesis files against the baselines, one MLflow run each")
    p.add_argument("file", nargs="+", help="hypothesis files, or directories of *.py, evaluated in one batch")
    p.add_argument("--kind", required=True, choices=KIND_CHOICES)
    p.add_argument("--variant", default="one-pass", choices=("one-pass", "full"))
    p.add_argument("--seeds", type=int, default=3, help="number of training seeds (0..N-1)")
    p.add_argument("--datasets", default=None,
                   help="comma-separated dataset names (default: the configured suite)")
    _common(p)
    p.set_defaults(handler=_evaluate)

    p = verbs.add_parser("discover", help="one round: propose hypotheses, check them, train the promising ones, rank")
    p.add_argument("--kind", default="activation", choices=KIND_CHOICES)
    p.add_argument("--generator", default=None, choices=("symbolic", "llm"),
                   help="default: [discover] generator of the config (symbolic)")
    p.add_argument("--n", type=int, default=None, help="new hypotheses to generate (default 32)")
    p.add_argument("--top-k", type=int, default=None,
                   help="how many get the full-training evaluation (default 4)")
    p.add_argument("--seeds", type=int, default=None, help="training seeds (default 3)")
    p.add_argument("--seed", type=int, default=None,
                   help="generator seed (default: the number of earlier rounds of the kind)")
    p.add_argument("--model", default=None, help="llm: model name served by the endpoint")
    p.add_argument("--base-url", default=None,
                   help="llm: OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else OpenAI)")
    p.add_argument("--prompt", default=None,
                   help="llm: incremental, novelty, mixed or NAME@ALIAS (a registered prompt)")
    p.add_argument("--context", default=None, metavar="DIR",
                   help="llm: papers (.txt, .md, .pdf) whose most relevant passages go into the prompt")
    p.add_argument("--resume", action="store_true",
                   help="finish the latest unfinished round of the kind instead of starting one")
    p.add_argument("--executor", default=None, choices=("local", "ray"),
                   help="where evaluations run (default: [executor] kind of the config, local)")
    p.add_argument("--ray-address", default=None,
                   help="ray: the cluster's HOST:PORT (default: [executor] address, $RAY_ADDRESS, auto)")
    _common(p)
    p.set_defaults(handler=_discover)

    p = verbs.add_parser("prompt", help="show: the prompt the next LLM round of a kind would send")
    p.add_argument("action", choices=("show",))
    p.add_argument("--kind", default="activation", choices=KIND_CHOICES)
    p.add_argument("--model", default=None, help="llm: model name served by the endpoint")
    p.add_argument("--base-url", default=None, help="llm: OpenAI-compatible endpoint")
    p.add_argument("--prompt", default=None,
                   help="llm: incremental, novelty, mixed or NAME@ALIAS (a registered prompt)")
    p.add_argument("--context", default=None, metavar="DIR",
                   help="papers (.txt, .md, .pdf): show the passages chosen from them")
    _common(p)
    p.set_defaults(handler=_prompt)

    p = verbs.add_parser("reward", help="the model that predicts which hypotheses are worth training")
    p.add_argument("action", choices=("train", "evaluate", "promote"))
    p.add_argument("--kind", default="activation", choices=KIND_CHOICES)
    p.add_argument("--encoder", default=None,
                   help="all-MiniLM-L6-v2 (default), microsoft/codebert-base, ... or a local directory")
    p.add_argument("--features", default=None,
                   help="train: comma-separated families of structural, grid, embedding, probes "
                        "(default structural,grid,probes)")
    _common(p)
    p.set_defaults(handler=_reward)

    p = verbs.add_parser("suite", help="check: measure how repeatable the benchmark's verdicts are")
    p.add_argument("action", choices=("check",))
    p.add_argument("--kind", default="activation", choices=KIND_CHOICES)
    p.add_argument("--seeds", type=int, default=3,
                   help="seeds per set (default 3): set A starts at [suite] first_seed, set B follows")
    p.add_argument("--from", dest="from_run", metavar="RUN_ID", default=None,
                   help="measure again, without training, from the results an earlier check of this "
                        "suite kept (a new run)")
    _common(p)
    p.set_defaults(handler=_suite)

    p = verbs.add_parser("sandbox", help="check: show what the sandbox isolates on this machine")
    p.add_argument("action", choices=("check",))
    p.add_argument("--backend", default=None,
                   choices=("auto", "bwrap", "namespace", "docker", "subprocess"),
                   help="default: the configured backend ([sandbox] backend, auto)")
    p.add_argument("--connect", action="append", default=[], metavar="HOST:PORT",
                   help="also try to reach this listener of yours from inside (repeatable)")
    p.add_argument("--read", action="append", default=[], metavar="PATH",
                   help="also try to read this canary file of yours from inside (repeatable)")
    _common(p)
    p.set_defaults(handler=_sandbox)

    p = verbs.add_parser("scheduler", help="run rounds and other jobs on a schedule: init, start, status, run-now JOB")
    p.add_argument("action", choices=("init", "start", "status", "run-now"))
    p.add_argument("job", nargs="?", default=None, help="run-now: the job id")
    p.add_argument("--schedule", default=None,
                   help="the schedule file (default: jobs/schedule.toml here, else the packaged one)")
    _common(p)
    p.set_defaults(handler=_scheduler)

    p = verbs.add_parser("audit", help="re-run recorded runs and compare with what was recorded")
    p.add_argument("run_id", nargs="?", default=None, help="a hypothesis or baseline run")
    p.add_argument("--round", dest="round_id", default=None, help="audit a round's leaderboard")
    p.add_argument("--sample", type=int, default=None,
                   help="audit N random recent hypothesis runs plus the current best")
    p.add_argument("--env", default="local", choices=("local", "docker"),
                   help="re-execute here (local) or in a container built from local material")
    _common(p)
    p.set_defaults(handler=_audit)

    p = verbs.add_parser("references", help="add RUN_ID: an approved, confirmed hypothesis becomes "
                         "a reference of its kind (counted in BSOTA-WR from then on)")
    p.add_argument("action", choices=("add",))
    p.add_argument("run_id", help="a run of the hypothesis")
    _common(p)
    p.set_defaults(handler=_references)

    p = verbs.add_parser("dashboard", help="write an HTML page summarising the tracking store")
    p.add_argument("--out", default="mlr-dashboard", help="directory of index.html")
    p.add_argument("--ui-url", default=None, help="the MLflow UI its links open (default: the "
                   "tracking server itself, else http://127.0.0.1:5000/ as `mlflow ui` serves it)")
    _common(p)
    p.set_defaults(handler=_dashboard)
    return parser


def _validate(args) -> tuple[int, dict, str]:
    result = commands.validate_file(args.file, args.kind, args.config)
    if result.valid:
        text = f"valid {args.kind}: {args.file}"
    else:
        text = f"invalid {args.kind} ({result.stage} check): {args.file}\n" + \
               "\n".join(f"  - {r}" for r in result.reasons)
    return (EXIT_OK if result.valid else EXIT_INVALID), result.to_dict(), text


def _evaluate(args) -> tuple[int, dict, str]:
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()] if args.datasets else None
    files = commands.hypothesis_files(args.file)
    evaluations = commands.evaluate_files(files, args.kind, args.variant, args.seeds, args.tracking_uri,
                                          args.config, datasets, progress=_progress)
    if len(files) == 1:
        return _evaluation_text(evaluations[0], args.kind)
    outcomes = [_evaluation_text(ev, args.kind) for ev in evaluations]
    code = EXIT_INVALID if any(c == EXIT_INVALID for c, _, _ in outcomes) else EXIT_OK
    text = "\n".join(f"{path}: {t}" for path, (_, _, t) in zip(files, outcomes))
    return code, {"results": [payload for _, payload, _ in outcomes]}, text


def _evaluation_text(ev, kind: str) -> tuple[int, dict, str]:
    if not ev.valid:
        text = (f"invalid {kind} ({ev.stage} check), run {ev.run_id} marked FAILED:\n" +
                "\n".join(f"  - {r}" for r in ev.reasons))
        return EXIT_INVALID, ev.to_dict(), text
    rows = [f"  {ds:<22} acc {m['test_acc']:.3f}  loss {m['test_loss']:.4f}  b_wr {m['b_wr']:.2f}"
            for ds, m in ev.datasets.items()]
    u = ev.uncertainty
    text = "\n".join([f"run {ev.run_id} ({ev.variant}): b_wr {ev.b_wr:.3f} "
                      f"[{u['b_wr_ci_low']:.2f}, {u['b_wr_ci_high']:.2f}]  bsota_wr {ev.bsota_wr:.3f} "
                      f"[{u['bsota_wr_ci_low']:.2f}, {u['bsota_wr_ci_high']:.2f}]  "
                      f"val_b_wr {ev.val_b_wr:.3f}  screen_score {ev.screen_score:.3f}", *rows])
    return EXIT_OK, ev.to_dict(), text


def _discover(args) -> tuple[int, dict, str]:
    summary = commands.discover(
        args.kind, args.generator, args.n, args.top_k, args.seeds, args.seed, args.tracking_uri,
        args.config, llm={"model": args.model, "base_url": args.base_url, "prompt": args.prompt,
                                "context": args.context},
        progress=_progress, resume=args.resume, executor=args.executor, ray_address=args.ray_address)
    if summary is None:
        return EXIT_OK, {"round_run_id": None, "generated": 0, "valid": 0, "evaluated": 0,
                         "best": None, "resumed": False}, \
            f"no unfinished {args.kind} round to resume"
    lines = round_lines(summary)
    if summary.generated == 0:
        return EXIT_ERROR, {**summary.to_dict(), "error": lines[-1]}, "\n".join(lines)
    lines.append(browse_hint(args.tracking_uri))
    return EXIT_OK, summary.to_dict(), "\n".join(lines)


def _prompt(args) -> tuple[int, dict, str]:
    out = commands.prompt_show(args.kind, args.tracking_uri, args.config,
                               llm={"model": args.model, "base_url": args.base_url,
                                    "prompt": args.prompt}, context=args.context)
    parts = []
    for p in out["prompts"]:
        parts.append(f"=== request {p['request']} of the next {out['kind']} round: prompt "
                     f"{p['prompt_name']} version {p['prompt_version']} ({p['style']}), "
                     f"{out['examples_known']} known hypotheses, seed {out['seed']}, "
                     f"grammar {out['grammar']} ===")
        parts.append(p["prompt"])
    chosen = [f"  {p['id']}  (similarity {p['score']:.3f})" for p in out.get("passages", [])]
    if chosen:
        parts.append("passages chosen from --context:\n" + "\n".join(chosen))
    return EXIT_OK, out, "\n".join(parts)


def _reward(args) -> tuple[int, dict, str]:
    out = commands.reward(args.action, args.kind, args.tracking_uri, args.config, args.encoder,
                          args.features, progress=_progress)
    if args.action == "promote":
        verdict = "promoted to champion" if out["promoted"] else "NOT promoted"
        return (EXIT_OK if out["promoted"] else EXIT_INVALID), out, \
            f"challenger v{out['challenger']} {verdict}: {out['reason']}"
    from .reward.split import lines  # train and evaluate report the same split the same way

    text = lines(out)
    if args.action == "train":
        text.append(f"kept the {out['algorithm']} (higher Spearman when a training round is left out); "
                    f"registered {out['model']} v{out['version']} as challenger")
    else:
        text.append(f"{out['n']} hypotheses in {out['rounds']} rounds; `reward train` would keep the "
                    f"{out['chosen']}")
    return EXIT_OK, out, "\n".join(text)


def _suite(args) -> tuple[int, dict, str]:
    out = commands.suite_check(args.kind, args.seeds, args.tracking_uri, args.config, progress=_progress,
                               from_run=args.from_run)
    lines = [f"suite check {out['run_id']} ({args.kind}, seeds {out['seeds']['a']} vs {out['seeds']['b']}):"]
    for task, r in out["tasks"].items():
        lines.append(f"  {task:<22} snr {_num(r['snr'], 1)}  saturation {_num(r['saturation'])}  "
                     f"split-half {_num(r['split_half'])}")
    lines += [f"  - {line}" for line in out["verdicts"]]
    return EXIT_OK, out, "\n".join(lines)


def _num(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _sandbox(args) -> tuple[int, dict, str]:
    from .sandbox.check import PROPERTIES

    out = commands.sandbox_check(args.backend, args.connect, args.read, args.config)
    lines = [f"sandbox backend: {out['backend']}"]
    for key, (good, _) in PROPERTIES.items():
        mark = "ok " if out[key] == good else "NO "
        lines.append(f"  {mark} {key:<11} {out[key]:<10} ({out['evidence'][key]})")
    lines.append("isolation holds" if out["ok"] else
                 "isolation does NOT hold: hypothesis code could reach what is marked NO (see README)")
    return (EXIT_OK if out["ok"] else EXIT_INVALID), out, "\n".join(lines)


def _scheduler(args) -> tuple[int, dict, str]:
    out = commands.scheduler(args.action, args.schedule, args.job, args.tracking_uri, args.config,
                             progress=_progress)
    if args.action == "status":
        holder = out["scheduler"]
        lines = [f"job store {out['store']} ({out['timezone']}); scheduler: " +
                 (f"running ({holder['holder']}, heartbeat {holder['heartbeat_age_s']} s ago)"
                  if holder else "not running")]
        for job in out["jobs"]:
            last = job["last"]
            outcome = f"{last['status']} at {last['started']}" + (f": {last['error']}" if last and
                                                                  last["error"] else "") if last else "never ran"
            when = job["cron"] or f"after {job['after']}"
            lines.append(f"  {job['id']:<28} {when:<12} next {job['next_run'] or '-'}  last {outcome}")
        waiting = out.get("awaiting_review") or {}
        lines.append("awaiting review: " + (", ".join(f"{n} in {e}" for e, n in sorted(waiting.items()))
                                            + " (/mlr/review)" if waiting else "none"))
        return EXIT_OK, out, "\n".join(lines)
    if args.action == "init":
        return EXIT_OK, out, f"wrote {out['written']}: edit it, then `mlr-mlflow scheduler start`"
    if args.action == "run-now":
        return (EXIT_OK if out["ok"] else EXIT_INVALID), out, \
            f"job {args.job}: {'succeeded' if out['ok'] else 'failed: ' + out['error']} (run {out['run_id']})"
    return EXIT_OK, out, "scheduler stopped"


def _audit(args) -> tuple[int, dict, str]:
    out = commands.audit(args.run_id, args.round_id, args.sample, args.env, args.tracking_uri,
                         args.config, progress=_progress)
    audits = out["audits"] if "audits" in out else [out]
    lines = [f"run {a['run_id']}: {a['verdict']} (max abs diff {a['max_abs_diff']:.3g}; audit run "
             f"{a['audit_run_id']})" + "".join(
                 f"\n  - {d['what']} {d['key']}: {d['original']} -> {d['rerun']}"
                 + ("" if d["within_tolerance"] else " (out of tolerance)")
                 for d in a["differences"][:20]) for a in audits]
    if not audits:
        lines = ["nothing to audit: no evaluated hypothesis run in the store"]
    ok = all(a["reproduced"] for a in audits)
    return (EXIT_OK if ok else EXIT_INVALID), out, "\n".join(lines)


def _references(args) -> tuple[int, dict, str]:
    out = commands.references_add(args.run_id, args.tracking_uri)
    return EXIT_OK, out, (f"{out['name']} (run {out['run_id']}) is a {out['kind']} reference from the "
                          "next evaluation on")


def _dashboard(args) -> tuple[int, dict, str]:
    out = commands.dashboard(args.out, args.tracking_uri, args.ui_url, args.config)
    notes = "".join(f"\n  note: {p}" for p in out["problems"].values())
    running = f" ({out['rounds_running']} still running)" if out["rounds_running"] else ""
    return EXIT_OK, out, (f"dashboard of {out['rounds']} rounds{running} and {out['hypotheses']} "
                          f"hypothesis runs: {out['path']}\n  links open the MLflow UI at "
                          f"{out['ui_url']} (from {out['ui_url_from']}){notes}")


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Our own errors: what the user can fix. Every one derives from config.UsageError; a plain
    ValueError or MlflowException escaping a verb is a bug and goes to the internal-error branch."""
    from .config import UsageError

    return (UsageError,)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        _quiet_libraries()
    try:
        code, payload, text = args.handler(args)
    except _usage_errors() as exc:
        code, payload, text = EXIT_ERROR, {"error": str(exc)}, f"mlr-mlflow {args.verb}: error: {exc}"
    except KeyboardInterrupt:
        code, payload, text = EXIT_ERROR, {"error": "interrupted"}, "mlr-mlflow: interrupted"
    except Exception as exc:  # a bug: one line, and the traceback on request
        if os.environ.get("MLR_MLFLOW_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        what = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        code, payload = EXIT_ERROR, {"error": f"internal error: {what}"}
        text = f"mlr-mlflow {args.verb}: internal error: {what} (MLR_MLFLOW_DEBUG=1 shows the traceback)"
    stream = sys.stderr if code == EXIT_ERROR else sys.stdout
    print(_short_lines(text) if code == EXIT_ERROR else text, file=stream)
    if args.json:
        print(json.dumps(_finite(payload), sort_keys=True))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
