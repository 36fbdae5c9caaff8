"""Detector figures: synthetic negative bursts injected into background streams of real headlines.

Prints, for the default rules and two neighbouring thresholds (same streams, same seeds), the
detection rate and windows-to-detect per burst size and the false alerts per key per simulated
day. Usage: ``python bench/bench_alerts.py [--data DIR] [--days 2] [--clean-days 8]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.evaluation import evaluate  # noqa: E402
from alerts.rules import Rules  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Settings().data_dir))
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--clean-days", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    default_z = Rules.defaults().default.warning_z
    rows = []
    for z in (default_z - 0.25, default_z, default_z + 0.25):
        started = time.perf_counter()
        report = evaluate(Path(args.data), Rules.parse(f"defaults: {{warning_z: {z}}}"), burst_days=args.days,
                          clean_days=args.clean_days, seed=args.seed)
        rows.append((z, report, time.perf_counter() - started))
    print(f"{'warning_z':>9} | " + " | ".join(f"{k:>22}" for k in rows[0][1]["bursts"]) + " | false/key/day")
    for z, report, _ in rows:
        cells = [f"{b['detected']:6.1%} median {b['median_windows_to_detect']} win" for b in report["bursts"].values()]
        mark = " (default)" if z == default_z else ""
        print(f"{z:9.2f} | " + " | ".join(f"{c:>22}" for c in cells) + f" | {report['false_alerts_per_key_day']:.2f}{mark}")
    print(json.dumps({"default": rows[1][1], "seconds": round(rows[1][2], 1)}))


if __name__ == "__main__":
    main()
