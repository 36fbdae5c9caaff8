#!/usr/bin/env bash
# System packages the tests need, not riskpulse itself: Debian's chromium + chromium-driver
# (dashboard browser tests) and docker-compose (validates docker-compose.yml; no engine runs).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
   && { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; }; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then APT=(apt-get); elif command -v sudo >/dev/null; then APT=(sudo apt-get); else
  echo "install-system: run as root or install Debian's chromium and chromium-driver packages" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${APT[@]}" update -q
"${APT[@]}" install -y -q --no-install-recommends chromium chromium-driver docker-compose
echo "install-system: $(chromium --version), $(docker-compose version --short 2>/dev/null)"
