"""`mlr-mlflow`: parse arguments, call a function of `commands`, print, exit per CONTRACT.md.

With --json the last line of standard output is one JSON object. Progress goes to standard error.
Nothing heavy is imported here: torch and lightning load only in sandboxed workers.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback

from . import commands

KIND_CHOICES = ("activation", "preprocessing", "regularizer")
EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    parser.add_argument("--json", action="store_true",
                        help="end standard output with one JSON object")
    parser.add_argument("--config", default=None, help="TOML file overriding the defaults")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlr-mlflow", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser("validate", help="static and sandboxed dynamic checks of a hypothesis file")
    p.add_argument("file")
    p.add_argument("--kind", required=True, choices=KIND_CHOICES)
    _common(p)
    p.set_defaults(handler=_validate)

    p = verbs.add_parser("evaluate", help="validate, then evaluate against the baselines into one run")
    p.add_argument("file")
    p.add_argument("--kind", required=True, choices=KIND_CHOICES)
    p.add_argument("--variant", default="one-pass", choices=("one-pass", "full"))
    p.add_argument("--seeds", type=int, default=3, help="number of training seeds (0..N-1)")
    p.add_argument("--datasets", default=None,
                   help="comma-separated dataset names (default: the configured suite)")
    _common(p)
    p.set_defaults(handler=_evaluate)
    return parser


def _progress(message: str) -> None:
    print(f"[mlr-mlflow] {message}", file=sys.stderr, flush=True)


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
    ev = commands.evaluate_file(args.file, args.kind, args.variant, args.seeds, args.tracking_uri,
                                args.config, datasets, progress=_progress)
    if not ev.valid:
        text = (f"invalid {args.kind} ({ev.stage} check), run {ev.run_id} marked FAILED:\n" +
                "\n".join(f"  - {r}" for r in ev.reasons))
        return EXIT_INVALID, ev.to_dict(), text
    rows = [f"  {ds:<22} acc {m['test_acc']:.3f}  loss {m['test_loss']:.4f}  b_wr {m['b_wr']:.2f}"
            for ds, m in ev.datasets.items()]
    text = "\n".join([f"run {ev.run_id} ({ev.variant}): b_wr {ev.b_wr:.3f}  bsota_wr {ev.bsota_wr:.3f}",
                      *rows])
    return EXIT_OK, ev.to_dict(), text


def _finite(value):
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _usage_errors() -> tuple[type[BaseException], ...]:
    from .config import ConfigError
    from .evaluate.datasets import UnknownDatasetError
    from .hypothesis import HypothesisError
    from .tracking import TrackingError

    return ConfigError, UnknownDatasetError, HypothesisError, TrackingError, ValueError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code, payload, text = args.handler(args)
    except _usage_errors() as exc:
        code, payload, text = EXIT_ERROR, {"error": str(exc)}, f"mlr-mlflow {args.verb}: error: {exc}"
    except KeyboardInterrupt:
        code, payload, text = EXIT_ERROR, {"error": "interrupted"}, "mlr-mlflow: interrupted"
    except Exception as exc:
        if os.environ.get("MLR_MLFLOW_DEBUG"):
            traceback.print_exc()
        code, payload = EXIT_ERROR, {"error": f"internal error: {type(exc).__name__}: {exc}"}
        text = (f"mlr-mlflow {args.verb}: internal error: {type(exc).__name__}: {exc}\n"
                f"(set MLR_MLFLOW_DEBUG=1 for the traceback)")
    stream = sys.stderr if code == EXIT_ERROR else sys.stdout
    print(text, file=stream)
    if args.json:
        print(json.dumps(_finite(payload), sort_keys=True))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
