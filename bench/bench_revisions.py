"""Any bench/ script at two git revisions, alternated in one run (machines here are shared and
noisy: a before and an after are compared within one run, never across days).

Each round runs revision A's own ``bench/SCRIPT``, then B's, each from a git worktree on its own
code (bench_stream_revisions.py's trees), with the arguments after ``--``; every numeric figure of
each run's last JSON line is printed side by side, and the mean of B over A per figure. Last, one
JSON line with every run.

    python bench/bench_revisions.py bench_aggregate_broker.py REV_A REV_B --rounds 2 -- \\
        --model "$PWD/riskpulse/shipped_model" --n 20000 --workers 1,2

Paths in the script's arguments must be absolute: each run's working folder is its worktree.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_stream_revisions import alternated  # noqa: E402


def figures(result: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a bench's JSON line, by its dotted path (``workers.2.items_per_s``)."""
    if isinstance(result, bool):
        return {}
    if isinstance(result, (int, float)):
        return {prefix: float(result)}
    if isinstance(result, dict):
        out: dict[str, float] = {}
        for key, value in result.items():
            out.update(figures(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {}


def main() -> None:
    argv = sys.argv[1:]
    script_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("script", help="a script in bench/, e.g. bench_aggregate_broker.py")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--a-hide", default="", help="modules revision A runs without (comma-separated): dependencies "
                                                  "added since A, which this environment has")
    args = ap.parse_args(own)
    runs = alternated(args.script, args.a, args.b, args.rounds, args.a_hide, script_args)
    by_run = {rev: [figures(r) for r in results] for rev, results in runs.items()}
    keys = [k for k in by_run[args.a][0] if all(k in f for fs in by_run.values() for f in fs)]
    width = max([len(k) for k in keys] + [6])
    print(f"\n{'figure':<{width}}  {args.a[:24]:>24}  {args.b[:24]:>24}  {'B / A':>7}")
    for key in keys:
        a = [f[key] for f in by_run[args.a]]
        b = [f[key] for f in by_run[args.b]]
        ratio = statistics.mean(b) / statistics.mean(a) if statistics.mean(a) else float("nan")
        print(f"{key:<{width}}  {', '.join(f'{v:,.4g}' for v in a):>24}  {', '.join(f'{v:,.4g}' for v in b):>24}"
              f"  {ratio:>7.3f}")
    print(json.dumps({"bench": "revisions", "script": args.script, "args": script_args, "runs": runs}))


if __name__ == "__main__":
    main()
