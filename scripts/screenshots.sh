#!/usr/bin/env bash
# The README's and docs' pictures, taken by the dashboard's browser tests from the current
# dashboard (synthetic sample data) and copied into docs/img/. Run after changing a view.
set -euo pipefail
cd "$(dirname "$0")/.."
shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT
RISKPULSE_SCREENSHOTS="$shots" bash scripts/test.sh tests/dashboard/test_dashboard_browser.py -q \
    -k "first_view or alert_evidence"
for name in now.png alert-detail.png; do
    cp "$shots/$name" "docs/img/$name"
    echo "docs/img/$name"
done
