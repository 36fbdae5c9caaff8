"""What a newcomer waits for: `make demo`'s install (requirements/serve.lock) against `make test`'s
(requirements/dev.lock), each from an empty dependency cache in a fresh clone, side by side in one
run (the machine and its network are shared and noisy: compare the two, not runs on other days).

    python bench/bench_install.py [--keep]

Prints a table and, last, one JSON line: seconds and bytes of each install and their ratios.
Downloads both environments (about 7 GB in all) into temporary folders, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_env_size import size  # noqa: E402
from bench.bench_model import host  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def install(flag: list[str], work: Path) -> tuple[float, int]:
    clone, cache = work / "clone", work / "cache"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    started = time.perf_counter()
    done = subprocess.run(["bash", "scripts/install.sh", *flag], cwd=clone, capture_output=True, text=True,
                          env={**os.environ, "RISKPULSE_DEPS_CACHE": str(cache)})
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"install {' '.join(flag)} failed:\n{done.stderr[-3000:]}")
    return took, size(cache)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = ap.parse_args()
    results = {}
    for name, flag in (("demo (serve.lock)", ["--serve"]), ("test (dev.lock)", [])):
        work = Path(tempfile.mkdtemp(prefix="bench-install-"))
        try:
            results[name] = install(flag, work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        print(f"{name:20s} {results[name][0]:7.1f} s  {results[name][1] / 1e9:6.2f} GB", flush=True)
    (demo_s, demo_b), (dev_s, dev_b) = results.values()
    print(json.dumps({"bench": "install", "host": host(), "seconds": {k: round(v[0], 1) for k, v in results.items()},
                      "bytes": {k: v[1] for k, v in results.items()}, "time_ratio_demo_over_test": round(demo_s / dev_s, 3),
                      "size_ratio_demo_over_test": round(demo_b / dev_b, 3)}))


if __name__ == "__main__":
    main()
