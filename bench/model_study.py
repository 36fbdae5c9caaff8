"""Issue 15's comparison: each lever and their combination against today's recipe, by seeds.

Trains (or reuses) one model per variant and seed, all of one held-out cut, scores the four
held-out sets with each, and prints per variant the mean, spread and range of the four
accuracies over the seeds, and an exact McNemar test against the plain recipe on the same
items: per seed, and pooled (the discordant items of every seed pair summed). No timing: it can
run while the machine is busy. Resumable: a finished model folder is reused, an interrupted one
goes on from its checkpoint, so the study can be run again after a stop until it is complete;
``--finished-only`` summarises what is finished so far, beside a study still running.

Each scored model also leaves a record of which held-out items it got right (bits, no text) in
``--results`` (bench/results/model-study, committed): the study's figures survive the machine
that trained its models, and a later session summarises, or goes on with, what earlier ones ran.

    python bench/model_study.py --runs ~/study --seeds 13 14 15 \\
        --variants plain soft pretrain teacher combo --adopt plain:13=riskpulse-model-folder

Variants: ``plain`` (the recipe before issue 15: hard labels, no teacher, pooled dev score: the
baseline every variant is tested against); ``soft`` (lever 3: agreement-soft PhraseBank targets,
checkpoints by target, an EMA of the weights); ``pretrain`` (lever 2: the encoder after one epoch
of masked-LM training on the cut's training texts, made once under RUNS/encoder); ``teacher``
(lever 1: distilled from --teacher, by default the kept mpnet-s13: today's default recipe);
``combo`` (all three); ``accurate`` (issue 31: the accurate recipe, all-mpnet-base-v2 fine-tuned, no
teacher: the served alternative to the default student; needs ``--encoder``, the folder `riskpulse
teacher fetch` writes); ``transfer`` (issue 31, lever 1: the default recipe taught by
``--transfer-teacher``, kept predictions that also label variants of the training texts: `riskpulse
teacher predict --augment-copies N`); ``hidden`` (lever 2 on top of it: also the teacher's pooled
hidden states, kept by `teacher predict --hidden-layers`, at weight 1); ``taught`` (their control:
the default recipe taught by the same transfer teacher on the training texts alone, its variants
left out, so a transfer teacher that is not --teacher's model is judged against itself); ``long``
(issue 31, lever 2's "longer schedule": today's default recipe for twice its epochs, its dev
curve still rising at the last step; also the control that tells how much of ``transfer``'s gain
is more steps rather than more texts).
"""

from __future__ import annotations

import argparse
import base64
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

BASELINE = "plain"
RESULTS = Path(__file__).resolve().parent / "results" / "model-study"
LEVERS = {"plain": set(), "soft": {"soft"}, "pretrain": {"pretrain"}, "teacher": {"teacher"},
          "combo": {"soft", "pretrain", "teacher"}, "accurate": {"accurate"},
          "transfer": {"teacher", "transfer"}, "hidden": {"teacher", "transfer", "hidden"},
          "taught": {"teacher", "transfer", "originals"}, "long": {"teacher", "long"}}


def run_folder(runs: Path, variant: str, seed: int) -> Path:
    """Where the study keeps (and finds again) the model of one variant and seed."""
    return runs / f"{variant}-s{seed}"


def train_variant(variant: str, seed: int, runs: Path, data: Path, teacher: str, split_seed: int,
                  recipe_name: str, encoder: Path | None = None, transfer_teacher: Path | None = None) -> Path:
    from riskpulse.models.pretrain import pretrain
    from riskpulse.models.train import recipe_by_name, train

    out = run_folder(runs, variant, seed)
    if (out / "card.json").exists():
        return out
    levers = LEVERS[variant]
    if "accurate" in levers:
        if encoder is None:
            raise SystemExit("the accurate variant fine-tunes all-mpnet-base-v2: pass --encoder DIR "
                             "(riskpulse teacher fetch --out DIR writes it)")
        # its own recipe (step, schedule, fp32 serving), not --recipe's; a smoke run (--recipe tiny) takes its slice
        smoke = {} if recipe_name == "default" else {
            k: getattr(recipe_by_name(recipe_name), k) for k in ("epochs", "limit_per_source", "max_length", "num_layers")}
        recipe = recipe_by_name("accurate", seed=seed, split_seed=split_seed, teachers=(), **smoke)
        return train(data, out, recipe, progress=False, base_model=encoder, resume=True)
    limit = recipe_by_name(recipe_name).limit_per_source
    if "transfer" in levers:
        if transfer_teacher is None:
            raise SystemExit(f"the {variant} variant learns a transfer set: pass --transfer-teacher DIR (riskpulse "
                             "teacher predict --augment-copies 2 --hidden-layers 4 8 12 writes it)")
        teacher = str(transfer_teacher)
        if "originals" in levers:
            teacher = str(originals_of(transfer_teacher, runs))
    # every lever set explicitly: a variant is the same model whatever the named recipe's defaults become
    overrides: dict[str, Any] = {"seed": seed, "split_seed": split_seed,
                                 "teachers": (str(teacher),) if "teacher" in levers else (),
                                 "hidden_weight": 1.0 if "hidden" in levers else 0.0}
    if "long" in levers:
        overrides["epochs"] = 2 * recipe_by_name(recipe_name).epochs
    if "soft" in levers:
        overrides.update(soft_agreement=True, dev_score="by_target", ema_decay=0.999)
    base = None
    if "pretrain" in levers:
        base = runs / "encoder"
        if not (base / "PRETRAIN.json").exists():
            pretrain(data, base, split_seed=split_seed, limit_per_source=limit)
    return train(data, out, recipe_by_name(recipe_name, **overrides), progress=False, base_model=base, resume=True)


def originals_of(transfer_teacher: Path, runs: Path) -> Path:
    """The transfer teacher's predictions without its variants (made once under RUNS)."""
    from riskpulse.models.teacher_predictions import TeacherPredictions

    out = runs / f"{Path(transfer_teacher).name}-originals"
    if not TeacherPredictions.is_artifact(out):
        TeacherPredictions.read(Path(transfer_teacher)).without_transfer_set().write(out)
    return out


def correct_on(model: Path, evals: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per held-out set, which items the model gets right: on PyTorch, or for a packed model (the
    shipped one, which holds no PyTorch weights) on its fp32 ONNX graph, whose argmax agrees with
    the trained model's on all but about one text in 4,000 (its card's parity gate)."""
    packed = "packed" in read_card(model)
    scorer = Scorer(model, backend="onnx-fp32" if packed else "torch", batch_size=64)
    out = {}
    for name, frame in evals.items():
        task = frame["task"].iloc[0]
        truth = frame.label.map(TASKS[task].index).to_numpy()
        out[name] = task_probabilities(scorer, frame, task).argmax(1) == truth
    return out


def _pooled(reference: dict[int, dict[str, np.ndarray]], by_seed: dict[int, dict[str, np.ndarray]], name: str,
            seeds: list[int]) -> dict[str, Any]:
    """McNemar of a variant against a reference, pooled over ``seeds``."""
    return mcnemar(np.concatenate([reference[s][name] for s in seeds]), np.concatenate([by_seed[s][name] for s in seeds]))


def summarize(results: dict[str, dict[int, dict[str, np.ndarray]]], n: dict[str, int],
              also_against: str | None = None) -> dict[str, Any]:
    """Per variant and held-out set: the accuracy of each seed, their mean and spread, and exact
    McNemar tests against the baseline (``plain``) on the seeds both have (per seed, and pooled over
    them). Seeds a variant lacks (a study still running) are left out of its figures, never filled.

    ``also_against`` names a second reference (the default recipe once a lever has won): each other
    variant is also tested against it, pooled, under ``mcnemar_pooled_vs``; a lever that beats plain
    but not the default adds nothing to it."""
    summary: dict[str, Any] = {"bench": "model_study", "n": n, "variants": {}}
    baseline = results.get(BASELINE, {})
    second = results.get(also_against, {}) if also_against else {}
    for variant, by_seed in results.items():
        seeds = sorted(by_seed)
        summary["variants"][variant] = {}
        for name in n:
            accs = [float(by_seed[s][name].mean()) for s in seeds]
            row: dict[str, Any] = {"seeds": seeds, "accuracy": accs, "mean": float(np.mean(accs)),
                                   "sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0}
            paired = [s for s in seeds if s in baseline]
            if variant != BASELINE and paired:
                row["mcnemar_per_seed"] = {s: mcnemar(baseline[s][name], by_seed[s][name]) for s in paired}
                row["mcnemar_pooled"] = _pooled(baseline, by_seed, name, paired)
            paired_second = [s for s in seeds if s in second]
            if variant not in (BASELINE, also_against) and paired_second:
                row["mcnemar_pooled_vs"] = {also_against: dict(_pooled(second, by_seed, name, paired_second),
                                                                seeds=paired_second)}
            summary["variants"][variant][name] = row
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as a table: one line per variant and held-out set."""
    lines = [f"{'variant':10s} {'held-out set':26s} {'seeds':>8s} {'mean':>7s} {'sd':>7s} {'min':>7s} {'max':>7s}   "
             f"McNemar vs {BASELINE} (pooled b/c, p; per seed p)"]
    for variant, rows in summary["variants"].items():
        for name, row in rows.items():
            test = ""
            if "mcnemar_pooled" in row:
                pooled = row["mcnemar_pooled"]
                test = (f"{pooled['b']}/{pooled['c']}, p={pooled['p']:.3f}; "
                        + ", ".join(f"s{s} {t['p']:.3f}" for s, t in row["mcnemar_per_seed"].items()))
            seeds = ",".join(str(s) for s in row["seeds"])
            lines.append(f"{variant:10s} {name:26s} {seeds:>8s} {row['mean']:7.4f} {row['sd']:7.4f} "
                         f"{min(row['accuracy']):7.4f} {max(row['accuracy']):7.4f}   {test}")
    return lines


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def markdown_table(summary: dict[str, Any]) -> list[str]:
    """The summary as the Markdown table docs/model.md quotes: per variant the mean +- sd of each
    held-out set's accuracy over its seeds, and under it the pooled McNemar tests against the
    baseline and the second reference, if any (b: items only the variant gets right, c: only the
    reference)."""
    names = list(summary["n"])
    lines = ["| variant (seeds) | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for variant, rows in summary["variants"].items():
        seeds = ", ".join(str(s) for s in rows[names[0]]["seeds"])
        lines.append(f"| {variant} ({seeds}) | "
                     + " | ".join(f"{rows[k]['mean']:.4f} +- {rows[k]['sd']:.4f}" for k in names) + " |")
        references = []
        if "mcnemar_pooled" in rows[names[0]]:
            references.append((BASELINE, list(rows[names[0]]["mcnemar_per_seed"]),
                               [rows[k]["mcnemar_pooled"] for k in names]))
        for other, test in rows[names[0]].get("mcnemar_pooled_vs", {}).items():
            references.append((other, test["seeds"], [rows[k]["mcnemar_pooled_vs"][other] for k in names]))
        for other, paired, tests in references:
            lines.append(f"| McNemar {variant} vs {other} ({', '.join(str(s) for s in paired)}), b/c | "
                         + " | ".join(f"{t['b']}/{t['c']}, {_p(t['p'])}" for t in tests) + " |")
    return lines


def record(model: Path, correct: dict[str, np.ndarray]) -> dict[str, Any]:
    """What the study keeps of a scored model: its identity, cut, data and recipe, and per held-out
    set which items it got right (packed bits in the order load_splits gives; no text)."""
    card = read_card(model)
    return {"model_version": card["model_version"], "split_seed": card["recipe"].get("split_seed"),
            "files": card["data"]["files"], "recipe": card["recipe"],
            "correct": {name: {"n": int(len(bits)), "bits": base64.b64encode(np.packbits(bits)).decode()}
                        for name, bits in correct.items()}}


def correct_from(rec: dict[str, Any], split_seed: int, files: dict[str, str],
                 n: dict[str, int]) -> dict[str, np.ndarray]:
    """The bits of a kept record; ValueError if it is of another cut, data or held-out set."""
    if rec["split_seed"] != split_seed or rec["files"] != files:
        raise ValueError(f"record of {rec['model_version']} is of another held-out cut or data files: remove it "
                         "or rerun its model")
    if {k: v["n"] for k, v in rec["correct"].items()} != n:
        raise ValueError(f"record of {rec['model_version']} scored other held-out sets: remove it or rerun its model")
    return {name: np.unpackbits(np.frombuffer(base64.b64decode(v["bits"]), np.uint8), count=v["n"]).astype(bool)
            for name, v in rec["correct"].items()}


def record_stands_for(kept: Path, model: Path) -> bool:
    """Whether the kept record can stand in for scoring ``model``: there is no such model here (it was
    scored on another machine), or the record is of this very model (scoring is deterministic, and
    it takes minutes per model on 2 cores)."""
    if not kept.exists():
        return False
    if not (model / "card.json").exists():
        return True
    return bool(json.loads(kept.read_text())["model_version"] == read_card(model)["model_version"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True, help="folder of the study's models (reused when rerun)")
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="folder of the scored models' records (committed; a record stands in for a model not here)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    ap.add_argument("--variants", nargs="+", default=[BASELINE, "teacher"], choices=sorted(LEVERS))
    ap.add_argument("--teacher", default="mpnet-s13",
                    help="teacher of the variants teacher and combo: kept predictions (by name or folder) or a model")
    ap.add_argument("--adopt", nargs="*", default=[], metavar="VARIANT:SEED=MODEL_DIR",
                    help="use an existing model for a variant and seed (e.g. the shipped model's training folder)")
    ap.add_argument("--encoder", type=Path, help="all-mpnet-base-v2's folder, for the accurate variant")
    ap.add_argument("--transfer-teacher", type=Path,
                    help="kept predictions with a transfer set (and hidden states), for the transfer and hidden variants")
    ap.add_argument("--split-seed", type=int, default=13)
    ap.add_argument("--recipe", default="default", help="the recipe every variant starts from (tiny: smoke runs)")
    ap.add_argument("--data", type=Path, default=Settings().data_dir)
    ap.add_argument("--finished-only", action="store_true",
                    help="train nothing: summarise the models already finished (a study still running, say)")
    ap.add_argument("--markdown", action="store_true", help="print the table as docs/model.md quotes it")
    ap.add_argument("--also-against", choices=sorted(LEVERS), default=None,
                    help="test every other variant against this one too (the default recipe, say: teacher)")
    args = ap.parse_args()
    if BASELINE not in args.variants:
        raise SystemExit(f"{BASELINE} (the recipe without the levers) is the baseline every variant is tested "
                         "against: include it")
    if args.also_against and args.also_against not in args.variants:
        raise SystemExit(f"--also-against {args.also_against}: include it in --variants")
    adopted = {}
    for spec in args.adopt:
        key, path = spec.split("=", 1)
        variant, seed = key.split(":")
        adopted[(variant, int(seed))] = Path(path)
    args.runs.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    splits = load_splits(args.data, seed=args.split_seed)
    evals = splits.evals
    n = {k: len(v) for k, v in evals.items()}
    results: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for variant in args.variants:
        for seed in args.seeds:
            kept = run_folder(args.results, variant, seed).with_suffix(".json")
            model = adopted.get((variant, seed)) or run_folder(args.runs, variant, seed)
            if record_stands_for(kept, model):  # scored before, here or on another machine
                results.setdefault(variant, {})[seed] = correct_from(json.loads(kept.read_text()),
                                                                     args.split_seed, splits.files, n)
                print(f"kept record {variant} seed {seed}: {kept}", file=sys.stderr)
                continue
            if not (model / "card.json").exists():
                if args.finished_only:
                    continue
                model = train_variant(variant, seed, args.runs, args.data, args.teacher, args.split_seed, args.recipe,
                                      args.encoder, args.transfer_teacher)
            card = read_card(model)
            if card["recipe"].get("split_seed", card["recipe"]["seed"]) != args.split_seed:
                raise SystemExit(f"{model} is of another held-out cut")
            results.setdefault(variant, {})[seed] = correct_on(model, evals)
            kept.write_text(json.dumps(record(model, results[variant][seed])) + "\n")
            print(f"scored {variant} seed {seed}: {model} (record: {kept})", file=sys.stderr)

    summary = summarize(results, n, args.also_against)
    summary["recipe"] = args.recipe
    for line in markdown_table(summary) if args.markdown else summary_lines(summary):
        print(line)
    out = args.runs / ("study-finished.json" if args.finished_only else "study.json")
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
