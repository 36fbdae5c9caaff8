"""Why bench_stream's model-only figure and `riskpulse score` disagree on the same model (issue 32):
the same headlines through the Scorer under each one's settings, and under each single change
between them, alternated in rounds in one run. Prints headlines/s per setting (best of the
rounds) and, last, one JSON line.

- worker (bench_stream's model-only, and the worker itself): micro-batches of up to 64 as they
  arrive, ONNX Runtime threads that sleep when idle (``ort_spin`` false: the worker shares its
  cores with its event loop and the broker);
- score CLI (`riskpulse score`): batches of 32, threads that spin, and 1,024
  headlines per call (models/batch_score.py), sorted by length before they are batched, so
  a batch pads less than one of 64 arrivals does.

    python bench/bench_scorer_settings.py --model riskpulse/shipped_model [--n 2000] [--rounds 3]
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

SETTINGS = {  # name: (backend, batch size, spin, headlines per call); both default to the auto backend
    "worker (64, no spin)": ("auto", 64, False, 64),
    "worker, spinning": ("auto", 64, True, 64),
    "worker, batches of 32": ("auto", 32, False, 64),
    "worker, batches of 16": ("auto", 16, False, 64),
    "worker, batches of 8": ("auto", 8, False, 64),
    "worker, 1,024 per call": ("auto", 64, False, 1024),
    "score CLI (32, spin, 1,024)": ("auto", 32, True, 1024),
}


def main() -> None:
    s = Settings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=s.model_dir)
    ap.add_argument("--data", type=Path, default=s.data_dir)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    texts = headlines(args.data, args.n)
    scorers = {name: Scorer(args.model, backend=backend, batch_size=batch, spin=spin)  # type: ignore[arg-type]
               for name, (backend, batch, spin, _) in SETTINGS.items()}
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for scorer in scorers.values():
        scorer.score(texts[:64])
    for _ in range(args.rounds):
        for name, scorer in scorers.items():
            per_call = SETTINGS[name][3]
            started = time.perf_counter()
            for i in range(0, len(texts), per_call):
                scorer.score(texts[i:i + per_call])
            rates[name].append(len(texts) / (time.perf_counter() - started))
    base = max(rates["worker (64, no spin)"])
    print(f"host: {host()}")
    print(f"{'setting':<36}{'engine':<28}{'best /s':>10}{'x worker':>10}")
    for name, runs in rates.items():
        print(f"{name:<36}{scorers[name].engine.name:<28}{max(runs):>10.1f}{max(runs) / base:>10.2f}")
    print(json.dumps({"bench": "scorer_settings", "n": len(texts), "host": host(),
                      "rates": {name: {"engine": scorers[name].engine.name, "runs": [round(r, 1) for r in runs]}
                                for name, runs in rates.items()}}))


if __name__ == "__main__":
    main()
