#!/usr/bin/env bash
# Debian's chromium + chromium-driver for the dashboard's browser tests (not needed to run riskpulse).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then APT=(apt-get); elif command -v sudo >/dev/null; then APT=(sudo apt-get); else
  echo "install-browser: run as root or install Debian's chromium and chromium-driver packages" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${APT[@]}" update -q
"${APT[@]}" install -y -q --no-install-recommends chromium chromium-driver
echo "install-browser: $(chromium --version)"
