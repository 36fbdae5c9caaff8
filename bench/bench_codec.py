"""The worker's JSON codec against the standard library's, on the records a worker writes and
reads per item (issue 32: "a fast JSON codec for internal records, measured").

Encodes and decodes, with each codec in turn and alternated over ``--rounds`` (machines here are
shared and noisy): the internal scored-by-story record (a scored item with its source position),
the same item as published on news.scored, and a closed window's counters as the judges read
them. Both codecs must give the same values back; the byte texts are compared and any difference
is printed. Prints a table and, last, one JSON line with the ratios.

    python bench/bench_codec.py [--n 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_aggregate import make_items  # noqa: E402
from bench.bench_model import host  # noqa: E402
from riskpulse.stream.core import messages  # noqa: E402
from riskpulse.stream.core.messages import Scored, Source  # noqa: E402


def stdlib_dumps(obj: Any) -> bytes:
    """What the worker wrote before (riskpulse.stream.core.messages.dumps until 2026-12-07)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


CODECS: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    "json (standard library)": (stdlib_dumps, json.loads),
    "orjson (the worker's)": (messages.dumps, messages.loads),
}


def workload(n: int) -> dict[str, list[Any]]:
    items = [item for _, _, item in make_items(n)]
    internal = [json.loads(Scored(item, Source("news", k % 4, k, 3), 1_780_000_000.5).encode()) for k, item in enumerate(items)]
    published = [item.to_json() for item in items]
    counters = {"keys": {f"ticker|T{k}": {"n": 40 + k, "neg": k % 7, "pos": k % 5, "sum": -1.25 + k / 100,
                                          "stories": 30 + k % 9} for k in range(60)},
                "top": {f"ticker|T{k}": [[f"i{k}{j}", -0.8, "Shares tumble as regulator opens probe", 1_780_000_000 + j]
                                         for j in range(3)] for k in range(60)}}
    windows = [{"_part": [k % 4, 1_780_000_000, k % 16], **counters} for k in range(max(1, n // 100))]
    return {"scored-by-story": internal, "news.scored": published, "windows (per 100 items)": windows}


def run(dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any], values: list[Any]) -> tuple[float, list[bytes]]:
    gc.collect()
    gc.disable()  # the collector's pauses fall on whichever codec allocates when they come due
    try:
        started = time.perf_counter()
        texts = [dumps(v) for v in values]
        back = [loads(t) for t in texts]
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    assert back == values, "a codec changed a value on the way"
    return elapsed, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    records = workload(args.n)
    best: dict[tuple[str, str], float] = {}
    same: dict[str, bool] = {}
    for _ in range(args.rounds):
        for kind, values in records.items():
            texts: dict[str, list[bytes]] = {}
            for name, (dumps, loads) in CODECS.items():
                elapsed, texts[name] = run(dumps, loads, values)
                per_us = 1e6 * elapsed / len(values)
                best[(kind, name)] = min(best.get((kind, name), per_us), per_us)
            a, b = texts.values()
            same[kind] = a == b
    print(f"host: {host()}")
    print(f"{'record':26} {'json us':>9} {'orjson us':>10} {'speed-up':>9}  same bytes")
    ratios = {}
    for kind in records:
        slow, fast = best[(kind, "json (standard library)")], best[(kind, "orjson (the worker's)")]
        ratios[kind] = round(slow / fast, 2)
        print(f"{kind:26} {slow:9.1f} {fast:10.1f} {slow / fast:8.2f}x  {same[kind]}")
    print(json.dumps({"bench": "codec", "n": args.n, "rounds": args.rounds,
                      "us_per_record": {f"{k} / {c}": round(v, 2) for (k, c), v in best.items()},
                      "speedup": ratios, "same_bytes": same, "host": host()}))


if __name__ == "__main__":
    main()
