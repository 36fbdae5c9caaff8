"""bench_aggregate.py's workload over the aggregation core of two git revisions, alternated in one
run (machines here are shared and noisy): how much a change to the core costs per item.

Both revisions run this checkout's bench/bench_aggregate.py (the same items, the same store), each
importing its own revision's core (bench_stream_revisions.link_packages). Prints a table and, last,
one JSON line with the ratio B / A of the best rates.

    python bench/bench_aggregate_revisions.py 784d77d HEAD --n 30000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_stream_revisions import REPO, link_packages, stream_origin  # noqa: E402


def run(tree: Path, n: int) -> dict:
    origin = stream_origin(tree)
    if not origin.is_relative_to(tree):
        raise SystemExit(f"the bench in {tree} would import the stream from {origin}: not the revision's own code")
    out = subprocess.run([sys.executable, "bench/bench_aggregate.py", "--n", str(n), "--repeat", "1"], cwd=tree,
                         capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"bench_aggregate.py failed in {tree}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="riskpulse-agg-revs-"))
    trees = {}
    for rev in (args.a, args.b):
        tree = base / rev.replace("/", "_")
        subprocess.run(["git", "worktree", "add", "--detach", "-f", str(tree), rev], cwd=REPO, check=True,
                       capture_output=True)
        link_packages(tree)
        shutil.copy(REPO / "bench" / "bench_aggregate.py", tree / "bench" / "bench_aggregate.py")
        trees[rev] = tree
    rates: dict[str, list[float]] = {args.a: [], args.b: []}
    try:
        for _ in range(args.rounds):
            for rev, tree in trees.items():
                rates[rev].append(run(tree, args.n)["items_per_s"])
    finally:
        for tree in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
    for rev, runs in rates.items():
        print(f"{rev:<14} items/s: " + ", ".join(f"{r:,.0f}" for r in runs) + f"  (best {max(runs):,.0f})")
    ratio = max(rates[args.b]) / max(rates[args.a])
    print(f"{args.b} / {args.a} (best rates): {ratio:.2f}")
    print(json.dumps({"bench": "aggregate_revisions", "a": args.a, "b": args.b, "n": args.n, "items_per_s": rates,
                      "ratio_b_over_a": round(ratio, 3)}))


if __name__ == "__main__":
    main()
