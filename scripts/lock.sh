#!/usr/bin/env bash
# Pins pyproject's dependencies, with hashes, once per use (uv resolves in seconds where pip's
# resolver takes many minutes on faust-streaming + transformers):
#   requirements/serve.lock  worker, ingest, rss, dashboard on ONNX Runtime (no torch): the slim image
#   requirements/train.lock  + training and export (torch, transformers, onnx)
#   requirements/dev.lock    + train + test tools: what `make install`, `make test` and CI install
# The gpu extra (TensorRT) is not locked here: its wheels come from NVIDIA's index (pypi.org holds
# stubs that download them at build time), which the build machines cannot reach. The GPU image
# installs train.lock, then `riskpulse[gpu]`'s tensorrt-cu12 range (Dockerfile, --build-arg WITH_TENSORRT=1).
# Run it after changing pyproject's dependencies; pass --upgrade to move pins forward.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-uv}
command -v "$uv" >/dev/null || { echo "lock: needs uv (pip install uv)" >&2; exit 1; }
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --quiet "$@")
for lock in dev serve train; do  # dev first: the others keep its pins (-c), so every image runs what CI tested
  extras=()
  case $lock in
    serve) ;;
    train) extras=(--extra train) ;;
    dev) extras=(--extra train --extra test) ;;
  esac
  pins=()
  [ "$lock" = dev ] || pins=(-c requirements/dev.lock)
  "$uv" pip compile pyproject.toml "${extras[@]}" "${pins[@]}" "${common[@]}" \
    --custom-compile-command "bash scripts/lock.sh" -o "requirements/$lock.lock"
done
