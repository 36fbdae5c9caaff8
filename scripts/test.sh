#!/usr/bin/env bash
# The test command: unit tests, then integration tests against a real Kafka broker that the
# suite starts itself (Maven resolves the broker jars on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
exec .venv/bin/python -m pytest -ra --durations=25 -p no:cacheprovider "$@"
