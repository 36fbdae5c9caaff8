"""The packed (shipped) form against the trained model's fp32 ONNX file, side by side in one run:
bytes on disk, session load time, headlines per second at the worker's batch size, and agreement.

    python bench/bench_packed.py --trained DIR --packed DIR [--n 2000] [--rounds 3]

Float16-stored weights should cost nothing at inference (ONNX Runtime folds the casts at load);
this measures that claim instead of assuming it. Rounds alternate the two models so a noisy
neighbour slows both alike; the ratio is what to read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from riskpulse.models.artifact import onnx_path
from riskpulse.models.data import load_splits
from riskpulse.models.scorer import OnnxEngine, Scorer
from riskpulse.settings import get_settings


def main() -> None:
    s = get_settings()
    ap = argparse.ArgumentParser()
    ap.add_argument("--trained", type=Path, required=True, help="a trained, exported model folder")
    ap.add_argument("--packed", type=Path, default=s.model_dir, help="its packed form (default: the served model)")
    ap.add_argument("--data", type=Path, default=s.data_dir)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    texts = load_splits(args.data).held_out_texts()[: args.n]
    files = {"trained fp32": onnx_path(args.trained, int8=False), "packed": onnx_path(args.packed, int8=False)}
    scorers, loads = {}, {}
    for name, path in files.items():
        started = time.perf_counter()
        engine = OnnxEngine(path, threads=args.threads)
        loads[name] = time.perf_counter() - started
        scorers[name] = Scorer(args.trained if name == "trained fp32" else args.packed, engine=engine,
                               batch_size=args.batch)
        scorers[name].logits(texts[:64])  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(args.rounds):
        for name, scorer in scorers.items():
            started = time.perf_counter()
            scorer.logits(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    (t_a, s_a), (t_b, s_b) = (scorers[name].logits(texts) for name in files)
    rows = {name: {"bytes": files[name].stat().st_size, "load_s": round(loads[name], 3),
                   "headlines_per_s": round(statistics.median(rates[name]), 1),
                   "rounds": [round(r, 1) for r in rates[name]]} for name in files}
    print(json.dumps({
        "bench": "packed", "n": len(texts), "batch": args.batch, "threads": args.threads, "models": rows,
        "ratio_packed_over_trained": {"bytes": round(rows["packed"]["bytes"] / rows["trained fp32"]["bytes"], 3),
                                      "speed": round(rows["packed"]["headlines_per_s"] / rows["trained fp32"]["headlines_per_s"], 3)},
        "agreement": {"topic": float((t_a.argmax(1) == t_b.argmax(1)).mean()),
                      "sentiment": float((s_a.argmax(1) == s_b.argmax(1)).mean()),
                      "max_abs_logit_diff": float(max(np.abs(t_a - t_b).max(), np.abs(s_a - s_b).max()))},
    }, indent=2))


if __name__ == "__main__":
    main()
