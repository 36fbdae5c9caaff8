"""Issue 15's comparison: each lever and their combination against today's recipe, by seeds.

Trains (or reuses) one model per variant and seed, all of one held-out cut, scores the four
held-out sets with each, and prints per variant the mean, spread and range of the four
accuracies over the seeds, and an exact McNemar test against the default recipe on the same
items: per seed, and pooled (the discordant items of every seed pair summed). No timing: it can
run while the machine is busy. Resumable: a finished model folder is reused, an interrupted one
goes on from its checkpoint, so the study can be run again after a stop until it is complete.

    python bench/model_study.py --runs ~/study --seeds 13 14 15 \\
        --variants default soft pretrain teacher combo \\
        --teacher TEACHER_PREDICTIONS_OR_MODEL --adopt default:13=riskpulse-model-folder

Variants: ``default`` (today's recipe); ``soft`` (lever 3: agreement-soft PhraseBank targets,
checkpoints by target, an EMA of the weights); ``pretrain`` (lever 2: the encoder after one epoch
of masked-LM training on the cut's training texts, made once under RUNS/encoder); ``teacher``
(lever 1: distilled from --teacher); ``combo`` (all three).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskpulse.models.card import read_card  # noqa: E402
from riskpulse.models.data import load_splits  # noqa: E402
from riskpulse.models.evaluate import task_probabilities  # noqa: E402
from riskpulse.models.labels import TASKS  # noqa: E402
from riskpulse.models.metrics import mcnemar  # noqa: E402
from riskpulse.models.scorer import Scorer  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402

LEVERS = {"default": set(), "soft": {"soft"}, "pretrain": {"pretrain"}, "teacher": {"teacher"},
          "combo": {"soft", "pretrain", "teacher"}}


def train_variant(variant: str, seed: int, runs: Path, data: Path, teacher: Path | None, split_seed: int,
                  recipe_name: str) -> Path:
    from riskpulse.models.pretrain import pretrain
    from riskpulse.models.train import recipe_by_name, train

    out = runs / f"{variant}-s{seed}"
    if (out / "card.json").exists():
        return out
    levers = LEVERS[variant]
    limit = recipe_by_name(recipe_name).limit_per_source
    overrides: dict[str, Any] = {"seed": seed, "split_seed": split_seed}
    if "soft" in levers:
        overrides.update(soft_agreement=True, dev_score="by_target", ema_decay=0.999)
    base = None
    if "pretrain" in levers:
        base = runs / "encoder"
        if not (base / "PRETRAIN.json").exists():
            pretrain(data, base, split_seed=split_seed, limit_per_source=limit)
    teachers = []
    if "teacher" in levers:
        if teacher is None:
            raise SystemExit(f"variant {variant} needs --teacher")
        teachers = [teacher]
    return train(data, out, recipe_by_name(recipe_name, **overrides), progress=False, teachers=teachers,
                 base_model=base, resume=True)


def correct_on(model: Path, evals: dict[str, Any]) -> dict[str, np.ndarray]:
    scorer = Scorer(model, backend="torch", batch_size=64)
    out = {}
    for name, frame in evals.items():
        task = frame["task"].iloc[0]
        truth = frame.label.map(TASKS[task].index).to_numpy()
        out[name] = task_probabilities(scorer, frame, task).argmax(1) == truth
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True, help="folder of the study's models (reused when rerun)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    ap.add_argument("--variants", nargs="+", default=["default", "soft"], choices=sorted(LEVERS))
    ap.add_argument("--teacher", type=Path, help="teacher model or kept predictions (variants teacher, combo)")
    ap.add_argument("--adopt", nargs="*", default=[], metavar="VARIANT:SEED=MODEL_DIR",
                    help="use an existing model for a variant and seed (e.g. the shipped model's training folder)")
    ap.add_argument("--split-seed", type=int, default=13)
    ap.add_argument("--recipe", default="default", help="the recipe every variant starts from (tiny: smoke runs)")
    ap.add_argument("--data", type=Path, default=Settings().data_dir)
    args = ap.parse_args()
    if "default" not in args.variants:
        raise SystemExit("the default recipe is the baseline every variant is tested against: include it")
    adopted = {}
    for spec in args.adopt:
        key, path = spec.split("=", 1)
        variant, seed = key.split(":")
        adopted[(variant, int(seed))] = Path(path)
    args.runs.mkdir(parents=True, exist_ok=True)
    evals = load_splits(args.data, seed=args.split_seed).evals
    results: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for variant in args.variants:
        for seed in args.seeds:
            model = adopted.get((variant, seed)) or train_variant(variant, seed, args.runs, args.data, args.teacher,
                                                                  args.split_seed, args.recipe)
            card = read_card(model)
            if card["recipe"].get("split_seed", card["recipe"]["seed"]) != args.split_seed:
                raise SystemExit(f"{model} is of another held-out cut")
            results.setdefault(variant, {})[seed] = correct_on(model, evals)
            print(f"scored {variant} seed {seed}: {model}", file=sys.stderr)

    summary: dict[str, Any] = {"bench": "model_study", "seeds": args.seeds, "recipe": args.recipe,
                               "n": {k: len(v) for k, v in evals.items()}, "variants": {}}
    print(f"{'variant':10s} {'held-out set':26s} {'mean':>7s} {'sd':>7s} {'min':>7s} {'max':>7s}   McNemar vs default "
          "(pooled b/c, p; per seed p)")
    for variant, by_seed in results.items():
        summary["variants"][variant] = {}
        for name in evals:
            accs = [float(by_seed[s][name].mean()) for s in args.seeds]
            row: dict[str, Any] = {"accuracy": accs, "mean": float(np.mean(accs)), "sd": float(np.std(accs, ddof=1))
                                   if len(accs) > 1 else 0.0}
            test = ""
            if variant != "default":
                per_seed = [mcnemar(results["default"][s][name], by_seed[s][name]) for s in args.seeds]
                pooled = mcnemar(np.concatenate([results["default"][s][name] for s in args.seeds]),
                                 np.concatenate([by_seed[s][name] for s in args.seeds]))
                row.update(mcnemar_pooled=pooled, mcnemar_per_seed=per_seed)
                test = (f"{pooled['b']}/{pooled['c']}, p={pooled['p']:.3f}; "
                        + ", ".join(f"{t['p']:.3f}" for t in per_seed))
            summary["variants"][variant][name] = row
            print(f"{variant:10s} {name:26s} {row['mean']:7.4f} {row['sd']:7.4f} {min(accs):7.4f} {max(accs):7.4f}   {test}")
    (args.runs / "study.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
