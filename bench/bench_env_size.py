"""Size of a serving environment (requirements/serve.lock) against the full one (requirements/dev.lock:
services + training + tests, what `make install` builds), measured side by side on this machine.

    python bench/bench_env_size.py            # builds the serving venv in a temporary folder
    python bench/bench_env_size.py --dev DIR  # the full environment to compare with (default: make install's)

Prints one JSON line: bytes of each environment, the ratio, and the largest distributions of each.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def site_packages(env: Path) -> Path:
    return next((env / "lib").glob("python3*/site-packages"))


def largest(env: Path, n: int = 8) -> dict[str, float]:
    """MB per top-level folder of site-packages (a distribution's modules, roughly)."""
    site = site_packages(env)
    sizes = {p.name: size(p) for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))}
    return {name: round(b / 1e6, 1) for name, b in sorted(sizes.items(), key=lambda kv: -kv[1])[:n]}


def default_dev_env() -> Path:
    """The environment scripts/install.sh built for requirements/dev.lock."""
    want = hashlib.sha256((REPO / "requirements" / "dev.lock").read_bytes()).hexdigest()
    cache = Path(os.environ.get("RISKPULSE_DEPS_CACHE", Path.home() / ".cache" / "riskpulse" / "deps"))
    return cache / want


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=None, help="the full environment (default: make install's)")
    args = parser.parse_args()
    dev = args.dev or default_dev_env()
    if not (dev / "bin" / "python").exists():
        print(f"no full environment at {dev}: run bash scripts/install.sh first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="riskpulse-serve-env-") as tmp:
        serve = Path(tmp) / "venv"
        venv.create(serve, with_pip=True)
        pip = [str(serve / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
        subprocess.run(pip + ["--no-deps", "--require-hashes", "-r", str(REPO / "requirements" / "serve.lock")],
                       check=True)
        subprocess.run(pip + ["--no-deps", "--no-build-isolation", str(REPO)], check=True, cwd=tmp)
        check = subprocess.run([str(serve / "bin" / "python"), "-c",
                                "import importlib.util as u; import riskpulse.stream.agents, riskpulse.dashboard.app; "
                                "print(u.find_spec('torch') is None)"], capture_output=True, text=True, cwd=tmp)
        serve_bytes, dev_bytes = size(serve), size(dev)
        print(json.dumps({
            "bench": "env_size", "host": os.uname().nodename, "python": sys.version.split()[0],
            "serve_bytes": serve_bytes, "dev_bytes": dev_bytes, "serve_gb": round(serve_bytes / 1e9, 2),
            "dev_gb": round(dev_bytes / 1e9, 2), "serve_over_dev": round(serve_bytes / dev_bytes, 3),
            "serve_imports_without_torch": check.stdout.strip() == "True",
            "serve_largest_mb": largest(serve), "dev_largest_mb": largest(dev)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
