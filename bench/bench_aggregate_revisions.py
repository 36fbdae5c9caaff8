"""bench_aggregate.py's workload over the aggregation core of two git revisions, alternated in one
run (machines here are shared and noisy): how much a change to the core costs per item.

Both revisions run this checkout's bench/bench_aggregate.py (the same items, the same store), each
importing its own revision's core (bench_stream_revisions.link_packages). Prints a table and, last,
one JSON line with the ratio B / A of the best rates.

    python bench/bench_aggregate_revisions.py 784d77d HEAD --n 30000 --rounds 3
    python bench/bench_aggregate_revisions.py core-before HEAD --n 60000 --event-rate 400  # a sustained burst
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_stream_revisions import REPO, revision_trees, run_bench  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--event-rate", type=float, default=2.0, help="items per second of event time (bench_aggregate.py)")
    args = ap.parse_args()
    rates: dict[str, list[float]] = {args.a: [], args.b: []}
    # both revisions run this checkout's workload over their own core
    with revision_trees([args.a, args.b], prepare=lambda tree: shutil.copy(
            REPO / "bench" / "bench_aggregate.py", tree / "bench" / "bench_aggregate.py")) as trees:
        for _ in range(args.rounds):
            for rev, tree in trees.items():
                rates[rev].append(run_bench(tree, "bench_aggregate.py", "--n", str(args.n), "--repeat", "1",
                                                   "--event-rate", str(args.event_rate))["items_per_s"])
    for rev, runs in rates.items():
        print(f"{rev:<14} items/s: " + ", ".join(f"{r:,.0f}" for r in runs) + f"  (best {max(runs):,.0f})")
    ratio = max(rates[args.b]) / max(rates[args.a])
    print(f"{args.b} / {args.a} (best rates): {ratio:.2f}")
    print(json.dumps({"bench": "aggregate_revisions", "a": args.a, "b": args.b, "n": args.n,
                      "event_rate": args.event_rate, "items_per_s": rates,
                      "ratio_b_over_a": round(ratio, 3)}))


if __name__ == "__main__":
    main()
