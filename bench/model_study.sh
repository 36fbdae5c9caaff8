#!/usr/bin/env bash
# Issue 15's whole study, in order and resumable: rerun it after any stop and it goes on where it
# was (training checkpoints, finished folders reused, records of scored models kept in
# bench/results/model-study). Hours on 2 CPU cores; minutes on a GPU.
#   STUDY=~/study [SHIPPED_TRAINING=<plain seed-13 folder>] bench/model_study.sh
# The teacher is the kept mpnet-s13 (models/teachers/). To fine-tune a teacher anew instead, set
# ENCODER to the folder `riskpulse teacher fetch --out` wrote: it is trained and run first.
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-$HOME/.riskpulse/study}
DATA=${DATA:-../shared/data}
PY=${PY:-.venv/bin/python}
TEACHER=mpnet-s13
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$STUDY"
if [ -n "${ENCODER:-}" ]; then
  if [ ! -f "$STUDY/teacher/card.json" ]; then
    nice -n 19 "$PY" -m riskpulse.cli train --recipe teacher --base-model "$ENCODER" --data "$DATA" \
      --out "$STUDY/teacher" --resume --no-export >> "$STUDY/teacher.log" 2>&1
  fi
  if [ ! -f "$STUDY/teacher-predictions/predictions.json" ]; then
    nice -n 19 "$PY" -m riskpulse.cli teacher predict --teacher "$STUDY/teacher" --data "$DATA" \
      --out "$STUDY/teacher-predictions" >> "$STUDY/teacher.log" 2>&1
  fi
  TEACHER=$STUDY/teacher-predictions
fi
adopt=()
if [ -n "${SHIPPED_TRAINING:-}" ]; then adopt=(--adopt "plain:13=$SHIPPED_TRAINING"); fi
nice -n 19 "$PY" bench/model_study.py --runs "$STUDY/runs" --seeds 13 14 15 \
  --variants plain teacher soft pretrain combo --teacher "$TEACHER" \
  "${adopt[@]}" --data "$DATA" 2>&1 | tee -a "$STUDY/study.log"
