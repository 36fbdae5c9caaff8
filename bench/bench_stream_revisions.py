"""bench_stream.py at two git revisions, alternated on this machine, so a change to the stream
can be judged before and after in one run (machines here are shared and noisy).

Each round runs revision A's own bench/bench_stream.py from a git worktree, then B's; every
run measures model-only and end-to-end throughput side by side, so the figure compared is each
run's ratio end-to-end / model-only. Prints a table and, last, one JSON line.

    python bench/bench_stream_revisions.py 6a2fd74 HEAD --model ~/.riskpulse/model --rounds 2

Each worktree runs its own code: the repository's folders install as ``riskpulse.<folder>``
through setuptools' package-dir, which an editable install maps to the main checkout, so a
worktree's ``riskpulse/`` alone would pull every subpackage from the checkout the bench is
started in (until 2026-12-05 both revisions measured that checkout's stream). Each worktree's
``riskpulse/`` gets links to its own folders (:func:`link_packages`), and every run checks
where its stream came from.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parents[1]


def link_packages(tree: Path) -> None:
    """Make ``tree/riskpulse`` a complete package: a link per package-dir entry of its pyproject.toml
    (``"riskpulse.stream" = "stream"`` -> ``riskpulse/stream`` -> ``../stream``), so both the bench
    and the worker it starts (``python -m riskpulse.cli`` with the tree as working folder) import
    the tree's code before any editable install's mapping."""
    text = (tree / "pyproject.toml").read_text()
    for name, folder in re.findall(r'^"riskpulse\.(\w+)" = "(\w+)"$', text, re.M):
        link = tree / "riskpulse" / name
        if not link.exists():
            link.symlink_to(Path("..") / folder, target_is_directory=True)


def stream_origin(tree: Path) -> Path:
    """Where ``riskpulse.stream`` is imported from when run in ``tree``, as the worker imports it."""
    out = subprocess.run([sys.executable, "-c", "import riskpulse.stream as s; print(s.__file__)"], cwd=tree,
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def hiding(modules: list[str], folder: Path) -> dict[str, str]:
    """Environment for a run that cannot import ``modules`` (a dependency a revision did not have
    but this environment does): a sitecustomize in ``folder``, first on PYTHONPATH, for the
    bench and every process it starts."""
    if not modules:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules))
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def run_bench(tree: Path, script: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """``bench/<script>`` run in ``tree`` on the tree's own code; its last JSON line."""
    origin = stream_origin(tree)
    if not origin.is_relative_to(tree):
        raise SystemExit(f"the bench in {tree} would import the stream from {origin}: not the revision's own code")
    out = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=tree, capture_output=True, text=True, check=False,
                         env={**os.environ, **(env or {})})
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{script} failed in {tree}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


@contextlib.contextmanager
def revision_trees(revs: list[str], prepare: Callable[[Path], None] | None = None) -> Iterator[dict[str, Path]]:
    """A git worktree per revision, each a complete package of its own code (:func:`link_packages`),
    removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="riskpulse-revs-"))
    trees: dict[str, Path] = {}
    try:
        for rev in revs:
            tree = base / rev.replace("/", "_")
            subprocess.run(["git", "worktree", "add", "--detach", "-f", str(tree), rev], cwd=REPO, check=True,
                           capture_output=True)
            trees[rev] = tree
            link_packages(tree)
            if prepare is not None:
                prepare(tree)
        yield trees
    finally:
        for tree in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)


def alternated(script: str, a: str, b: str, rounds: int, a_hide: str, args: list[str]) -> dict[str, list[dict]]:
    """``bench/<script> args`` at revisions ``a`` and ``b``, a then b each round; ``a_hide``: modules
    (comma-separated) revision A runs without. Each run's last JSON line, by revision."""
    results: dict[str, list[dict]] = {a: [], b: []}
    with revision_trees([a, b]) as trees, tempfile.TemporaryDirectory() as hide:
        env = {a: hiding([m for m in a_hide.split(",") if m], Path(hide)), b: {}}
        for _ in range(rounds):
            for rev, tree in trees.items():
                results[rev].append(run_bench(tree, script, *args, env=env[rev]))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backend", default="onnx", help="null: the stream's ceiling (both revisions need the null backend)")
    ap.add_argument("--a-hide", default="", help="modules revision A runs without (comma-separated): dependencies "
                                                  "added since A, which this environment has")
    args = ap.parse_args()
    results = alternated("bench_stream.py", args.a, args.b, args.rounds, args.a_hide,
                         ["--model", str(args.model.resolve()), "--data", str(args.data.resolve()),
                          "--n", str(args.n), "--backend", args.backend])
    # to the store, and records per item: bench_stream.py since 2026-12-06 ("-" for a revision before)
    print(f"\n{'revision':<14}{'round':>6}{'model-only /s':>15}{'end to end /s':>15}{'ratio':>8}{'p99 ms':>8}"
          f"{'to store /s':>13}{'written/read per item':>23}")
    for rev, runs in results.items():
        for i, r in enumerate(runs, 1):
            stored = f"{r['e2e_stored_s']:.1f}" if "e2e_stored_s" in r else "-"
            per_item = (f"{r['records_per_item']['written']:.2f} / {r['records_per_item']['read']:.2f}"
                        if "records_per_item" in r else "-")
            print(f"{rev:<14}{i:>6}{r['model_only_s']:>15.1f}{r['e2e_max_s']:>15.1f}{r['ratio']:>8.2f}"
                  f"{r['latency_ms']['p99']:>8.0f}{stored:>13}{per_item:>23}")
    ratio = {rev: statistics.mean(r["ratio"] for r in runs) for rev, runs in results.items()}
    e2e = {rev: statistics.mean(r["e2e_max_s"] for r in runs) for rev, runs in results.items()}
    print(f"\nmean ratio {args.a}: {ratio[args.a]:.2f}, {args.b}: {ratio[args.b]:.2f}; "
          f"{args.b} / {args.a}: {ratio[args.b] / ratio[args.a]:.2f}; "
          f"mean end to end {e2e[args.a]:.0f} and {e2e[args.b]:.0f} /s ({e2e[args.b] / e2e[args.a]:.2f}x)")
    print(json.dumps({"bench": "stream_revisions", "a": args.a, "b": args.b, "backend": args.backend,
                      "a_hidden": args.a_hide, "runs": results,
                      "ratio_b_over_a": ratio[args.b] / ratio[args.a]}))


if __name__ == "__main__":
    main()
