"""Held-out accuracy of each model, and of the teachers' ensemble, side by side in one run.

The ensemble row (mean of the teachers' calibrated probabilities) is what distillation can at
best pass on to one student; a student row near it means distillation kept most of it. All
models must share the held-out cut (``recipe.split_seed``): the script refuses otherwise.
PyTorch fp32, the path the model cards use. No timing, so it can run while the machine is busy.

    python bench/distill_study.py --teachers run/t13 run/t14 run/t15 --models run/student [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskpulse.models.card import read_card, split_seed  # noqa: E402
from riskpulse.models.data import load_splits  # noqa: E402
from riskpulse.models.evaluate import task_probabilities  # noqa: E402
from riskpulse.models.labels import TASKS  # noqa: E402
from riskpulse.models.scorer import Scorer  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402


def held_out_probs(model: Path, evals: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    scorer = Scorer(model, backend="torch", batch_size=64)
    return {name: task_probabilities(scorer, frame, frame["task"].iloc[0]) for name, frame in evals.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teachers", nargs="+", type=Path, required=True)
    ap.add_argument("--models", nargs="*", type=Path, default=[], help="students or other models to compare")
    ap.add_argument("--data", type=Path, default=Settings().data_dir)
    args = ap.parse_args()
    everyone = args.teachers + args.models
    cuts = {str(m): split_seed(read_card(m)) for m in everyone}
    if len(set(cuts.values())) != 1:
        raise SystemExit(f"models from different held-out cuts cannot be compared: {cuts}")
    evals = load_splits(args.data, seed=next(iter(cuts.values()))).evals
    truth = {name: frame.label.map(TASKS[frame["task"].iloc[0]].index).to_numpy() for name, frame in evals.items()}
    probs = {str(m): held_out_probs(m, evals) for m in everyone}
    probs["ensemble(teachers)"] = {name: np.mean([probs[str(t)][name] for t in args.teachers], axis=0)
                                   for name in evals}
    rows = {label: {name: float((p[name].argmax(1) == truth[name]).mean()) for name in evals}
            for label, p in probs.items()}
    width = max(len(label) for label in rows)
    print(f"{'model':{width}s}  " + "  ".join(f"{name:>24s}" for name in evals))
    for label, accs in rows.items():
        print(f"{label:{width}s}  " + "  ".join(f"{accs[name]:24.4f}" for name in evals))
    print(json.dumps({"bench": "distill_study", "n": {k: len(v) for k, v in evals.items()}, "accuracy": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
