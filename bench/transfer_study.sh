#!/usr/bin/env bash
# Issue 31's transfer-set study, in order and resumable: rerun it after any stop and it goes on
# where it was (the teacher's pass keeps finished chunks, training keeps checkpoints, finished
# folders are reused, scored models' records are kept in bench/results/model-study). About five
# hours of student training on 2 CPU cores, after the teacher's pass (an hour); minutes on a GPU.
#   TEACHER_MODEL=<accurate-s13 folder> STUDY=~/.cache/riskpulse/study bench/transfer_study.sh
# Then the accurate model's seeds 14 and 15 (two hours each on 2 cores), if ENCODER names the
# folder `riskpulse teacher fetch --out` wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-$HOME/.riskpulse/study}
DATA=${DATA:-../shared/data}
PY=${PY:-.venv/bin/python}
KEPT=${KEPT:-$STUDY/transfer/$(basename "$TEACHER_MODEL")-aug2}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$STUDY"
if [ ! -f "$KEPT/predictions.json" ]; then
  "$PY" -m riskpulse.cli teacher predict --teacher "$TEACHER_MODEL" --data "$DATA" --augment-copies 2 \
    --hidden-layers 4 8 12 --out "$KEPT"
fi
for seed in 13 14 15; do
  for variant in taught transfer hidden; do  # the control first: it says whether this teacher teaches as the kept one
    "$PY" bench/model_study.py --runs "$STUDY" --seeds "$seed" --variants plain teacher "$variant" \
      --transfer-teacher "$KEPT" --also-against teacher --data "$DATA"
  done
done
if [ -n "${ENCODER:-}" ]; then
  "$PY" bench/model_study.py --runs "$STUDY" --seeds 14 15 --variants plain accurate --encoder "$ENCODER" --data "$DATA"
fi
"$PY" bench/model_study.py --runs "$STUDY" --seeds 13 14 15 --variants plain teacher taught transfer hidden accurate \
  --transfer-teacher "$KEPT" --also-against teacher --data "$DATA" --finished-only --markdown
