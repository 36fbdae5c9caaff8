#!/usr/bin/env bash
# Issue 15's whole study, in order and resumable: rerun it after any stop and it goes on where it
# was (training checkpoints, finished folders reused). Hours on 2 CPU cores; minutes on a GPU.
#   STUDY=~/study ENCODER=<riskpulse teacher fetch --out> [SHIPPED_TRAINING=<default seed-13 folder>] bench/model_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-$HOME/.riskpulse/study}
DATA=${DATA:-../shared/data}
ENCODER=${ENCODER:?set ENCODER to the folder written by riskpulse teacher fetch}
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$STUDY"
if [ ! -f "$STUDY/teacher/card.json" ]; then
  nice -n 19 "$PY" -m riskpulse.cli train --recipe teacher --base-model "$ENCODER" --data "$DATA" \
    --out "$STUDY/teacher" --resume --no-export >> "$STUDY/teacher.log" 2>&1
fi
if [ ! -f "$STUDY/teacher-predictions/predictions.json" ]; then
  nice -n 19 "$PY" -m riskpulse.cli teacher predict --teacher "$STUDY/teacher" --data "$DATA" \
    --out "$STUDY/teacher-predictions" >> "$STUDY/teacher.log" 2>&1
fi
adopt=()
if [ -n "${SHIPPED_TRAINING:-}" ]; then adopt=(--adopt "default:13=$SHIPPED_TRAINING"); fi
nice -n 19 "$PY" bench/model_study.py --runs "$STUDY/runs" --seeds 13 14 15 \
  --variants default teacher soft pretrain combo --teacher "$STUDY/teacher-predictions" \
  "${adopt[@]}" --data "$DATA" 2>&1 | tee -a "$STUDY/study.log"
