"""How many headlines the worker's scorer should send to a CPU engine per call, by micro-batch size.

The worker scores micro-batches as they arrive: at full load up to 64 items, at half load about
16 (a batch is what arrived while the last one was scored). Each is sorted by length and cut
into calls of ``rows`` (stream/scoring.py ``rows_per_call``): a call pads every row to its
longest, so fewer rows per call pad less, and more calls cost more per-call overhead. The same
headlines through the same Scorer, every (micro-batch, rows) pair alternated in rounds in one
run; prints headlines/s (best of the rounds), each pair's ratio to calls of 16, and one JSON line.

    python bench/bench_rows_per_call.py --model riskpulse/shipped_model [--n 960] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_model import headlines, host  # noqa: E402
from riskpulse.models.scorer import Scorer  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402

MICRO_BATCHES = (8, 16, 32, 64)
ROWS = (16, 8, 4)


def main() -> None:
    s = Settings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=s.model_dir)
    ap.add_argument("--data", type=Path, default=s.data_dir)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--n", type=int, default=960)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    texts = headlines(args.data, args.n)
    scorer = Scorer(args.model, backend=args.backend, spin=False)  # as the worker runs it (ort_spin off)
    scorer.score(texts[:64])
    best: dict[tuple[int, int], float] = {}
    for _ in range(args.rounds):
        for batch in MICRO_BATCHES:
            for rows in ROWS:
                scorer.batch_size = rows
                started = time.perf_counter()
                for i in range(0, len(texts), batch):
                    scorer.score(texts[i:i + batch])
                rate = len(texts) / (time.perf_counter() - started)
                best[(batch, rows)] = max(best.get((batch, rows), 0.0), rate)
    print(f"host: {host()}; engine {scorer.engine.name}; {args.n} headlines, best of {args.rounds} rounds")
    print("micro-batch | " + " | ".join(f"{r} per call" for r in ROWS))
    for batch in MICRO_BATCHES:
        base = best[(batch, ROWS[0])]
        print(f"{batch:>11} | " + " | ".join(f"{best[(batch, r)]:7.1f} ({best[(batch, r)] / base:.2f}x)" for r in ROWS))
    print(json.dumps({"bench": "rows_per_call", "engine": scorer.engine.name, "n": args.n, "rounds": args.rounds,
                      "headlines_per_s": {f"{b}/{r}": round(v, 1) for (b, r), v in best.items()}, "host": host()}))


if __name__ == "__main__":
    main()
