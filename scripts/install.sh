#!/usr/bin/env bash
# Creates .venv with the pinned dependencies (requirements/dev.lock: the services, training and the
# test tools; scripts/lock.sh writes it from pyproject.toml) and installs riskpulse into it.
# `install.sh --serve` installs requirements/serve.lock instead: what the services (and the demo)
# run, on ONNX Runtime, without torch, CUDA or the test tools (0.64 GB instead of 6.3 GB).
#
# The dependencies (6 GB with CUDA torch) are installed once per lock into a shared cache,
# ~/.cache/riskpulse/deps/<sha256 of the lock> (RISKPULSE_DEPS_CACHE to move it); each clone's
# .venv is a small venv that sees them through a .pth file and holds riskpulse itself
# (editable). A second clone, or CI on a fresh clone, installs in seconds instead of minutes.
# An environment no install has used for three days is removed from the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "install: $tool is required for the local Kafka broker (apt-get install openjdk-17-jre-headless maven)" >&2; exit 1; }
done
LOCK=requirements/dev.lock
if [ "${1:-}" = "--serve" ]; then
  LOCK=requirements/serve.lock
fi
want=$(sha256sum "$LOCK" | cut -d' ' -f1)
cache=${RISKPULSE_DEPS_CACHE:-$HOME/.cache/riskpulse/deps}
deps="$cache/$want"
mkdir -p "$cache"
(
  flock 9  # one builder at a time; the others wait and reuse its result
  if [ ! -x "$deps/bin/python" ]; then
    partial="$deps.partial"
    rm -rf "$partial"
    "$PY" -m venv "$partial"
    "$partial/bin/pip" install -q pip==26.3
    # --no-deps: the lock is complete, so pip skips the slow resolver (faust + transformers);
    # --require-hashes: every file is the one the lock names
    "$partial/bin/pip" install -q --no-deps --require-hashes -r "$LOCK"
    mv -T "$partial" "$deps"
  fi
  # each lock's environment is 6 GB: one no install has used for three days is removed (a clone
  # still on an older lock, a test loop say, keeps working meanwhile)
  touch "$deps"
  find "$cache" -mindepth 1 -maxdepth 1 -type d -mtime +2 ! -path "$deps" -exec rm -rf {} +
) 9>"$cache/.lock"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.deps 2>/dev/null)" != "$deps" ]; then
  rm -rf .venv
  "$PY" -m venv --without-pip .venv  # pip and setuptools come from the dependencies too
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  dsite=$("$deps/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  echo "$dsite" > "$site/_riskpulse_deps.pth"
  for tool in "$deps"/bin/*; do  # the dependencies' commands (pytest, lint-imports, gunicorn), run by this venv's python
    name=$(basename "$tool")
    case "$name" in python*|pip*|activate*|Activate*) continue ;; esac
    if head -1 "$tool" | grep -q '^#!.*python'; then
      { echo "#!$PWD/.venv/bin/python"; tail -n +2 "$tool"; } > ".venv/bin/$name"
      chmod +x ".venv/bin/$name"
    fi
  done
  echo "$deps" > .venv/.deps
fi
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
echo "install: ok ($(.venv/bin/python --version); dependencies from $deps)"
