#!/usr/bin/env bash
# Reproduce the shipped model (riskpulse/shipped_model) from the labelled data: train the default
# recipe, check its card against the committed one (same data files and recipe, every held-out
# metric within 0.01), pack it (models/pack.py: the fp32 ONNX graph with float16 weights, gated
# against the trained PyTorch model) and say where it is.
#
#   bash scripts/ship-model.sh              reproduce and check; the shipped model is left as it is
#   bash scripts/ship-model.sh --replace    train, pack and replace the shipped model (only after a
#                                           better model was measured: docs/model.md)
#
# Needs the train extra (`make install` has it) and RISKPULSE_DATA_DIR or ../shared/data.
# ~45 min on 2 cores with bf16 hardware, longer without.
set -euo pipefail
cd "$(dirname "$0")/.."
replace=false
[ "${1:-}" = "--replace" ] && replace=true
work=$(mktemp -d)
trap 'rm -rf "$work/trained"' EXIT
data=()
[ -n "${RISKPULSE_DATA_DIR:-}" ] && data=(--data "$RISKPULSE_DATA_DIR")
.venv/bin/riskpulse train --recipe default --out "$work/trained" "${data[@]}"
compare=(--compare riskpulse/shipped_model)
$replace && compare=()
.venv/bin/riskpulse pack --model "$work/trained" --out "$work/packed" "${data[@]}" "${compare[@]}"
if $replace; then
  rm -rf riskpulse/shipped_model
  mv "$work/packed" riskpulse/shipped_model
  echo "riskpulse/shipped_model replaced: commit it with the figures of the new card (card.md)"
else
  echo "reproduced: the packed model is in $work/packed (card.md); the shipped model is unchanged"
fi
