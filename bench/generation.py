"""Is generation slower than training its own proposals one-pass? (issue 31)

    python bench/generation.py [--rounds 3] [--n 32] [--seeds 3] [--json]

Runs `--rounds` symbolic discovery rounds of `--n` on a fresh sqlite store with the default suite
(top-k 0: one-pass only, so nothing else is timed) and reads back each round's `generation_s`
(asking the generator, hash and behaviour deduplication: every sandbox call it makes) and
`one_pass_s` (training the accepted proposals one-pass). Round 1 generates against an empty
experiment; later rounds against everything earlier, where a newcomer once saw 5.2 s a hypothesis.
Reported per round: seconds per generated hypothesis for each phase, their ratio, proposals asked
and duplicates turned away.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from mlr_mlflow.config import Config
    from mlr_mlflow.round import Round
    from mlr_mlflow.tracking import connect, names

    rows = []
    with tempfile.TemporaryDirectory(prefix="mlr-generation-bench-") as where:
        cwd = os.getcwd()
        os.chdir(where)
        try:
            client = connect(f"sqlite:///{where}/mlflow.db")
            for r in range(args.rounds):
                start = time.perf_counter()
                summary = Round(client, Config(), "activation").run(n=args.n, top_k=0,
                                                                      seeds=args.seeds, seed=r)
                m = client.get_run(summary.round_run_id).data.metrics
                made = max(1, summary.generated)
                rows.append({"round": r + 1, "generated": summary.generated,
                             "proposals": int(m.get("proposals", 0)),
                             "duplicates": int(m.get("duplicates", 0)),
                             "rediscoveries": int(m.get("rediscoveries", 0)),
                             "generation_s_per_hyp": round(m[names.GENERATION_SECONDS] / made, 3),
                             "one_pass_s_per_hyp": round(m[names.ONE_PASS_SECONDS] / made, 3),
                             "round_s": round(time.perf_counter() - start, 1)})
                rows[-1]["generation_vs_one_pass"] = round(
                    rows[-1]["generation_s_per_hyp"] / max(rows[-1]["one_pass_s_per_hyp"], 1e-9), 3)
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        finally:
            os.chdir(cwd)
    result = {"rounds": rows, "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0],
              "worst_generation_vs_one_pass": max(r["generation_vs_one_pass"] for r in rows)}
    if args.json:
        print(json.dumps(result))
    else:
        for r in rows:
            print(f"round {r['round']}: {r['generated']} new of {r['proposals']} proposals, generation "
                  f"{r['generation_s_per_hyp']} s/hyp, one-pass {r['one_pass_s_per_hyp']} s/hyp "
                  f"(ratio {r['generation_vs_one_pass']})")
    return result


if __name__ == "__main__":
    main()
