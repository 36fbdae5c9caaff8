#!/usr/bin/env bash
# System packages the tests need, not riskpulse itself: Debian's chromium + chromium-driver
# (dashboard browser tests), docker-compose (validates docker-compose.yml; no engine runs) and
# PostgreSQL's server (the store's tests start one of their own in a temporary folder).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
   && { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; } \
   && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then APT=(apt-get); elif command -v sudo >/dev/null; then APT=(sudo apt-get); else
  echo "install-system: run as root or install Debian's chromium, chromium-driver, docker-compose and postgresql packages" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${APT[@]}" update -q
"${APT[@]}" install -y -q --no-install-recommends chromium chromium-driver docker-compose postgresql
echo "install-system: $(chromium --version), $(docker-compose version --short 2>/dev/null), $(ls -d /usr/lib/postgresql/*/)"
