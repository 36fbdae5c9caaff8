#!/usr/bin/env bash
# Creates .venv with the pinned dependencies (requirements.lock) and installs riskpulse into it.
# Idempotent and cached: a second run on the same machine takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "install: $tool is required for the local Kafka broker (apt-get install openjdk-17-jre-headless maven)" >&2; exit 1; }
done
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.lock | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip
  # --no-deps: the lock is complete, so pip skips the slow resolver (faust + transformers)
  .venv/bin/pip install -q --no-deps -r requirements.lock
  echo "$want" > "$stamp"
fi
.venv/bin/pip install -q --no-deps --no-build-isolation -e .
echo "install: ok ($(.venv/bin/python --version))"
