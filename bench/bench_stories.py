"""Story identity on labelled headline pairs: precision and recall per threshold, and the threshold.

The pairs (bench/story_pairs.py) are split in two: the threshold is chosen on the first half (the
lowest that keeps precision at least 0.95 there with margin: 0.97), and reported on the second.
Three measures side by side, all on the same pairs:

- ``story``: riskpulse's (stream/core/stories.py): Jaccard of story words, direction guard;
- ``words``: Jaccard of the plain normalised words (what exact dedupe normalises), no guard;
- ``story+block``: ``story``, the two headlines in one block (on one partition of the counting
  stage) and sharing an LSH band (candidates of each other there): what the running stream can
  actually merge (end-to-end recall).

    python bench/bench_stories.py [--data ../shared/data] [--out bench/results/stories-DATE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_model import host  # noqa: E402
from bench.story_pairs import Pair, pairs  # noqa: E402
from riskpulse.stream.core import stories  # noqa: E402
from riskpulse.stream.core.dedupe import normalise_headline  # noqa: E402

THRESHOLDS = [round(0.3 + 0.05 * i, 2) for i in range(13)]  # 0.30 .. 0.90
PRECISION_FLOOR, PRECISION_MARGIN = 0.95, 0.97


def _words(h: str) -> frozenset[str]:
    return frozenset(normalise_headline(h).split())


MEASURES: dict[str, Callable[[Pair], float]] = {
    "story": lambda p: stories.similarity(stories.story_tokens(p.a), stories.story_tokens(p.b)),
    "words": lambda p: stories.jaccard(_words(p.a), _words(p.b)),
    "story+block": lambda p: (stories.similarity(stories.story_tokens(p.a), stories.story_tokens(p.b))
                              if stories.block_of(p.a) == stories.block_of(p.b)
                              and set(stories.bands(stories.story_tokens(p.a))) & set(stories.bands(stories.story_tokens(p.b)))
                              else 0.0),
}


def scores(sims: list[float], labels: list[bool], threshold: float) -> dict[str, float]:
    tp = sum(1 for s, y in zip(sims, labels) if s >= threshold and y)
    fp = sum(1 for s, y in zip(sims, labels) if s >= threshold and not y)
    positives = sum(labels)
    return {"precision": round(tp / (tp + fp), 4) if tp + fp else 1.0, "recall": round(tp / positives, 4) if positives else 0.0,
            "false_merges": fp}


def choose(sims: list[float], labels: list[bool]) -> float:
    ok = [t for t in THRESHOLDS if scores(sims, labels, t)["precision"] >= PRECISION_MARGIN]
    return min(ok) if ok else max(THRESHOLDS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    all_pairs = pairs(args.data)
    tune, test = all_pairs[0::2], all_pairs[1::2]
    kinds = Counter(p.kind if not p.same else "same_story" for p in all_pairs)
    print(f"host: {host()['cpu']}; pairs: {len(all_pairs)} ({dict(kinds)}); tune {len(tune)}, test {len(test)}")
    report: dict[str, object] = {"bench": "stories", "pairs": len(all_pairs), "kinds": dict(kinds), "host": host(),
                                 "shipped_threshold": stories.THRESHOLD, "measures": {}}
    for name, measure in MEASURES.items():
        started = time.perf_counter()
        tune_sims = [measure(p) for p in tune]
        per_pair_us = (time.perf_counter() - started) / len(tune) * 1e6
        test_sims = [measure(p) for p in test]
        chosen = choose(tune_sims, [p.same for p in tune]) if name != "story+block" else stories.THRESHOLD
        curve = {str(t): scores(test_sims, [p.same for p in test], t) for t in THRESHOLDS}
        at = scores(test_sims, [p.same for p in test], chosen)
        print(f"\n{name}: threshold chosen on tune {chosen}; on test: precision {at['precision']:.3f}, "
              f"recall {at['recall']:.3f} ({at['false_merges']} false merges); {per_pair_us:.0f} us/pair")
        print("  threshold " + " ".join(f"{t:>5}" for t in THRESHOLDS))
        print("  precision " + " ".join(f"{curve[str(t)]['precision']:>5.3f}" for t in THRESHOLDS))
        print("  recall    " + " ".join(f"{curve[str(t)]['recall']:>5.3f}" for t in THRESHOLDS))
        by_kind = {}
        for kind in sorted({p.kind for p in test}):
            sel = [(s, p) for s, p in zip(test_sims, test) if p.kind == kind]
            hit = sum(1 for s, _ in sel if s >= chosen)
            by_kind[kind] = {"pairs": len(sel), "merged": hit}
        print("  merged by kind (test): " + ", ".join(f"{k} {v['merged']}/{v['pairs']}" for k, v in by_kind.items()))
        if name == "story":
            wrong = [(s, p) for s, p in zip(test_sims, test) if s >= chosen and not p.same][:8]
            for s, p in wrong:
                print(f"  false merge {s:.2f}: {p.a[:90]!r} ~ {p.b[:90]!r}")
        report["measures"][name] = {"threshold": chosen, "test": at, "curve": curve, "by_kind": by_kind,  # type: ignore[index]
                                    "us_per_pair": round(per_pair_us, 1)}
    line = json.dumps(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print("\n" + json.dumps({k: v for k, v in report.items() if k != "measures"} |
                            {"story": report["measures"]["story"]["test"],  # type: ignore[index]
                             "story+block": report["measures"]["story+block"]["test"]}))  # type: ignore[index]
    del line


if __name__ == "__main__":
    main()
