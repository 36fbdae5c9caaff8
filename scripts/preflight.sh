#!/usr/bin/env bash
# What `make demo` needs, checked before it installs or starts anything: Python 3.11, Java 17+
# and Maven (the local Kafka broker), disk for the dependencies, free ports, and a model or the
# labelled data to train one. Prints every problem with its fix and exits 1 if there is one.
set -uo pipefail
cd "$(dirname "$0")/.."
problems=()
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  problems+=("Python 3.11 is needed (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11")
fi
if ! command -v java >/dev/null; then
  problems+=("Java 17+ is needed for the local Kafka broker: apt-get install openjdk-17-jre-headless")
else
  major=$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1)
  [ "${major:-0}" -ge 17 ] || problems+=("Java 17+ is needed (found $major): apt-get install openjdk-17-jre-headless")
fi
command -v mvn >/dev/null || problems+=("Maven resolves the Kafka jars once: apt-get install maven")
cache=${RISKPULSE_DEPS_CACHE:-$HOME/.cache/riskpulse/deps}
want=$(sha256sum requirements/serve.lock | cut -d' ' -f1)  # the demo's: the services on ONNX Runtime
if [ ! -x "$cache/$want/bin/python" ]; then  # not installed yet: about 0.7 GB
  mkdir -p "$cache"
  free_gb=$(df -Pk "$cache" | awk 'NR == 2 {print int($4 / 1048576)}')
  [ "$free_gb" -ge 2 ] || problems+=("the demo's dependencies need about 2 GB free in $cache ($free_gb GB free); set RISKPULSE_DEPS_CACHE elsewhere")
fi
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
home=${RISKPULSE_HOME:-$HOME/.riskpulse}
kafka=${RISKPULSE_KAFKA_BOOTSTRAP:-127.0.0.1:9092}
for entry in "kafka RISKPULSE_KAFKA_BOOTSTRAP ${kafka##*:}" "dashboard RISKPULSE_DASHBOARD_PORT ${RISKPULSE_DASHBOARD_PORT:-8050}" \
             "worker RISKPULSE_WORKER_WEB_PORT ${RISKPULSE_WORKER_WEB_PORT:-6066}"; do
  read -r name var port <<<"$entry"
  if port_busy "$port"; then
    state="$home/kafka/broker.json"  # a broker an earlier demo left running is reused, not a conflict
    if [ "$name" = kafka ] && [ -f "$state" ]; then
      pid=$(sed -nE 's/.*"pid": *([0-9]+).*/\1/p' "$state")
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && continue
    fi
    problems+=("port $port ($name) is in use: stop what listens there or set $var")
  fi
done
# RISKPULSE_MODEL_DIR, else a model trained into the home folder, else the shipped one (settings.py)
model=${RISKPULSE_MODEL_DIR:-$home/model}
[ -z "${RISKPULSE_MODEL_DIR:-}" ] && [ ! -f "$model/riskpulse.json" ] && model="$(cd "$(dirname "$0")/.." && pwd)/riskpulse/shipped_model"
data=${RISKPULSE_DATA_DIR:-$(cd .. && pwd)/shared/data}
if [ ! -f "$model/riskpulse.json" ] && [ ! -f "$data/financial-phrasebank/all.csv" ]; then
  problems+=("no model in $model and no labelled data in $data to train one: set RISKPULSE_MODEL_DIR to a trained model, or RISKPULSE_DATA_DIR to the data sets (docs/model.md)")
fi
if [ ${#problems[@]} -gt 0 ]; then
  echo "make demo cannot run here yet; nothing was installed or started:" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "preflight: ok"
