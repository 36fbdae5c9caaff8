"""A teacher's predictions on the training texts, kept as a small versioned artifact.

Why: a base-size teacher (all-mpnet-base-v2) costs hours to fine-tune and most of an hour to run
over the training texts on 2 CPU cores, while a student retrains in minutes. Its logits on every
training text (34,714 rows x 23 numbers, about 2 MB) are all a student needs from it, so they are
kept: a student is retrained, with another seed or recipe, without the teacher. The artifact
holds no text: rows are found by a hash of their text, and the data set's file digests and the
held-out cut are recorded, so a student cut or trained on other data refuses it (its teacher
saw that student's held-out rows).

Layout of a predictions folder: ``predictions.json`` (the teacher, its cut, the data files, the
label lists, the row count) and ``predictions.npz`` (``key``: the first 16 bytes of each text's
sha256; ``topic`` and ``sentiment``: raw logits as float16, far finer than what a softened target
needs). A teacher given as a model folder is rounded the same way, so a student learns the same
from the folder as from its predictions, up to the last bits that batch composition moves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .augment import Augmentation, NeighbourTable
from .card import check_same_cut, read_card
from .card import split_seed as card_split_seed
from .labels import SENTIMENTS, TOPICS

META, ARRAYS = "predictions.json", "predictions.npz"
FORMAT = 1
# kept predictions that ship with riskpulse (the default recipe's teacher among them), by folder name
KEPT = Path(__file__).resolve().parent / "teachers"


def resolve_teacher(teacher: str | Path) -> Path | str:
    """A teacher as a recipe or the command line names it: the name of kept predictions shipped in
    models/teachers/ (e.g. ``mpnet-s13``), else a folder or a Hugging Face hub id, unchanged."""
    kept = KEPT / str(teacher)
    if "/" not in str(teacher) and TeacherPredictions.is_artifact(kept):
        return kept
    return teacher


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """16 bytes of sha256 per text: collisions are out of reach at this size, and no text is stored."""
    return np.array([hashlib.sha256(t.encode("utf-8")).digest()[:16] for t in texts], dtype="S16")


@dataclass
class TeacherPredictions:
    meta: dict[str, Any]
    keys: np.ndarray
    topic: np.ndarray | None  # float16 logits, one row per key; None: the teacher has no such head
    sentiment: np.ndarray | None
    # a transfer set (models/augment.py): the table its variants were made with; the rest is in meta
    neighbours: NeighbourTable | None = None
    # (rows, layers, width) float16: the teacher's mean-pooled hidden states at ``meta["hidden_layers"]``,
    # for hidden-state distillation (``--hidden-layers``); None where not kept (they are ~300 MB)
    hidden: np.ndarray | None = None

    def hidden_for(self, texts: Sequence[str]) -> np.ndarray:
        """Float16 pooled hidden states for ``texts`` in order; ValueError where not kept or lacking."""
        if self.hidden is None:
            raise ValueError(f"teacher predictions {self.meta.get('teacher', '?')} keep no hidden states; recompute "
                             "them with `riskpulse teacher predict --hidden-layers ...`")
        index = {key: i for i, key in enumerate(self.keys.tolist())}
        rows = [index.get(k) for k in text_keys(texts).tolist()]
        if any(r is None for r in rows):
            raise ValueError(f"teacher predictions {self.meta.get('teacher', '?')} lack hidden states of "
                             f"{sum(r is None for r in rows)} of {len(texts)} training texts")
        return self.hidden[np.array(rows, dtype=np.int64)]

    @property
    def augmentation(self) -> Augmentation | None:
        """How the variants of the training texts these predictions also cover were made, if any."""
        return Augmentation.from_json(self.meta["augmentation"]) if self.meta.get("augmentation") else None

    @classmethod
    def is_artifact(cls, path: Path) -> bool:
        return (Path(path) / META).is_file()

    @classmethod
    def from_model(cls, teacher: Path, texts: Sequence[str], split_seed: int | None = None,
                   files: dict[str, str] | None = None, hidden_layers: tuple[int, ...] = (),
                   work: Path | None = None) -> "TeacherPredictions":
        """Run a riskpulse model folder over ``texts``: PyTorch (bf16 where it measures faster here, eager),
        not int8, so the serving format's rounding does not become the student's target. With
        ``split_seed`` and ``files``, a teacher that may not teach them is refused before it runs.

        ``hidden_layers``: also keep its pooled hidden states there, from the same pass (a base-size
        teacher over a transfer set is hours on 2 cores: one pass, not two). ``work``: a folder where
        finished chunks are kept, so a pass cut off (a stop, a crash) goes on where it was."""
        meta = model_meta(teacher)
        if split_seed is not None:
            check_meta(meta, split_seed, files or {})
        unique = list(dict.fromkeys(texts))
        out = teacher_pass(Path(teacher), unique, tuple(hidden_layers), work=work)
        meta.update(topics=list(TOPICS), sentiments=list(SENTIMENTS), rows=len(unique), backend=out.backend,
                    created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        if hidden_layers:
            meta.update(hidden_layers=list(hidden_layers), hidden_depth=out.depth)
        return cls(meta, text_keys(unique), out.topic, out.sentiment, None, out.hidden)

    def as_transfer_set(self, originals: int, aug: Augmentation, table: NeighbourTable) -> "TeacherPredictions":
        """These predictions, made over the training texts and then their variants in one pass
        (:meth:`from_model`), marked as a transfer set: the rows past the first ``originals`` are variants."""
        meta = {**self.meta, "transfer_rows": self.meta["rows"] - originals, "augmentation": aug.to_json()}
        return TeacherPredictions(meta, self.keys, self.topic, self.sentiment, table, self.hidden)

    def without_transfer_set(self) -> "TeacherPredictions":
        """The same teacher on the training texts alone: what its transfer set is judged against
        (the same teacher without the variants), with no second pass of the teacher."""
        n = self.meta["rows"] - int(self.meta.get("transfer_rows") or 0)
        meta = {k: v for k, v in self.meta.items() if k not in ("transfer_rows", "augmentation")}
        meta["rows"] = n

        def head(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[:n]
        return TeacherPredictions(meta, self.keys[:n], head(self.topic), head(self.sentiment), None, head(self.hidden))

    @classmethod
    def from_hf_classifier(cls, name: str, texts: Sequence[str], max_length: int = 128,
                           batch_size: int = 64) -> "TeacherPredictions":
        """A Hugging Face sequence-classification model (a hub id where there is internet, or a
        folder) as a teacher of the one head its labels map onto, e.g. a financial BERT's
        positive/negative/neutral onto sentiment. Its training data is not known here: a model
        trained on Financial PhraseBank has seen the held-out PhraseBank rows, so the card says so."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForSequenceClassification.from_pretrained(name).eval()
        head, order = label_map(model.config.id2label)
        unique = list(dict.fromkeys(texts))
        out = np.zeros((len(unique), len(order)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(unique), batch_size):
                batch = tokenizer(unique[start:start + batch_size], padding=True, truncation=True,
                                  max_length=max_length, return_tensors="pt")
                out[start:start + batch_size] = model(**batch).logits.float().numpy()[:, order]
        meta = {"format": FORMAT, "teacher": str(name), "teacher_version": getattr(model.config, "_name_or_path", name),
                "teacher_base_model": model.config.model_type, "split_seed": None, "files": {},
                "external": True, "heads": [head], "id2label": {str(k): v for k, v in model.config.id2label.items()},
                "topics": list(TOPICS), "sentiments": list(SENTIMENTS), "rows": len(unique), "backend": "torch",
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        logits = out.astype(np.float16)
        return cls(meta, text_keys(unique), logits if head == "topic" else None,
                   logits if head == "sentiment" else None)

    @staticmethod
    def read_meta(folder: Path) -> dict[str, Any]:
        """The artifact's description alone (not its arrays); ValueError for another format."""
        meta = json.loads((Path(folder) / META).read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{folder}: predictions format {meta.get('format')!r}, this riskpulse reads {FORMAT}; "
                             "recompute them with `riskpulse teacher predict`")
        return meta

    @classmethod
    def read(cls, folder: Path) -> "TeacherPredictions":
        folder = Path(folder)
        meta = cls.read_meta(folder)
        with np.load(folder / ARRAYS) as arrays:
            table = NeighbourTable(arrays["neighbour_words"], arrays["neighbour_nearest"]) \
                if "neighbour_words" in arrays else None
            return cls(meta, arrays["key"], arrays["topic"] if "topic" in arrays else None,
                       arrays["sentiment"] if "sentiment" in arrays else None, table,
                       arrays["hidden"] if "hidden" in arrays else None)

    def write(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        heads = {k: v for k, v in (("topic", self.topic), ("sentiment", self.sentiment)) if v is not None}
        if self.neighbours is not None:
            heads.update(neighbour_words=self.neighbours.words, neighbour_nearest=self.neighbours.nearest)
        if self.hidden is not None:
            heads["hidden"] = self.hidden
        np.savez_compressed(folder / ARRAYS, key=self.keys, **heads)
        (folder / META).write_text(json.dumps(self.meta, indent=2) + "\n")
        return folder

    def check(self, split_seed: int, files: dict[str, str]) -> None:
        """ValueError unless these predictions may teach a student of this cut and data."""
        check_meta(self.meta, split_seed, files)

    def logits_for(self, texts: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Float32 logits per head for ``texts`` in order (None for a head the teacher has not);
        ValueError naming how many texts it lacks."""
        index = {key: i for i, key in enumerate(self.keys.tolist())}
        rows = [index.get(k) for k in text_keys(texts).tolist()]
        missing = sum(r is None for r in rows)
        if missing:
            raise ValueError(f"teacher predictions {self.meta.get('teacher', '?')} lack {missing} of {len(texts)} "
                             "training texts (other data or options); recompute them with `riskpulse teacher "
                             "predict` on this data")
        picked = np.array(rows, dtype=np.int64)
        return tuple(None if head is None else head[picked].astype(np.float32)  # type: ignore[return-value]
                     for head in (self.topic, self.sentiment))


@dataclass
class TeacherOutputs:
    topic: np.ndarray  # float16 logits
    sentiment: np.ndarray
    hidden: np.ndarray | None  # (n, layers, width) float16 pooled hidden states; None without layers
    depth: int  # the teacher's number of encoder layers
    backend: str  # "torch" or "torch-bf16"


CHUNK = 4096  # texts per kept chunk of a resumable pass: ~2 minutes of a base-size teacher on 2 cores


def teacher_pass(teacher: Path, texts: list[str], layers: tuple[int, ...] = (), batch_size: int = 64,
                 work: Path | None = None, chunk: int = CHUNK) -> TeacherOutputs:
    """A riskpulse model's logits for ``texts`` and, at ``layers`` (1 = the first encoder layer's
    output), its mean-pooled hidden states: one PyTorch pass, bf16 autocast where it measures faster
    here, batches of similar length.

    With ``work``, every finished chunk of ``chunk`` texts (in length order) is kept there with
    a plan naming the teacher, the texts and the layers; a later call with the same plan reads the
    chunks back and runs only the rest, and a different plan starts over. The caller removes
    ``work`` once the result is written."""
    import torch

    from .artifact import ModelMeta
    from .cpu_features import bf16_pays
    from .encoder import encode, load_tokenizer, pad_batch
    from .network import TwoHeadClassifier

    model = TwoHeadClassifier.load(Path(teacher)).eval()
    depth = model.encoder.config.num_hidden_layers
    if layers and (min(layers) < 1 or max(layers) > depth):
        raise ValueError(f"hidden layers must be between 1 and the teacher's {depth}, not {list(layers)}")
    bf16 = bf16_pays()
    ids = encode(load_tokenizer(Path(teacher), ModelMeta.read(Path(teacher)).max_length), texts)
    order = np.argsort([len(r) for r in ids], kind="stable")
    width = model.encoder.config.hidden_size
    topic = np.zeros((len(texts), model.topic_head.out_features), dtype=np.float16)
    sentiment = np.zeros((len(texts), model.sentiment_head.out_features), dtype=np.float16)
    hidden = np.zeros((len(texts), len(layers), width), dtype=np.float16) if layers else None
    plan = {"teacher": str(model_meta(Path(teacher)).get("teacher_version")), "layers": list(layers), "bf16": bf16,
            "texts": hashlib.sha256(text_keys(texts).tobytes()).hexdigest(), "chunk": chunk}
    if work is not None:
        _start_work(Path(work), plan)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for first in range(0, len(order), chunk):
            rows = order[first:first + chunk]
            kept = Path(work) / f"chunk-{first // chunk:05d}.npz" if work is not None else None
            if kept is not None and kept.exists():
                with np.load(kept) as done:
                    topic[rows], sentiment[rows] = done["topic"], done["sentiment"]
                    if hidden is not None:
                        hidden[rows] = done["hidden"]
                continue
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                input_ids, mask = pad_batch([ids[i] for i in batch])
                t, s, pooled = model.forward_with_layers(torch.from_numpy(input_ids), torch.from_numpy(mask), layers)
                topic[batch], sentiment[batch] = t.float().numpy(), s.float().numpy()
                if hidden is not None:
                    hidden[batch] = torch.stack(pooled, 1).float().numpy()
            if kept is not None:
                arrays = {"topic": topic[rows], "sentiment": sentiment[rows]}
                if hidden is not None:
                    arrays["hidden"] = hidden[rows]
                np.savez(kept.with_suffix(".tmp.npz"), **arrays)
                kept.with_suffix(".tmp.npz").replace(kept)  # a chunk is there whole or not at all
    return TeacherOutputs(topic, sentiment, hidden, depth, "torch-bf16" if bf16 else "torch")


def _start_work(work: Path, plan: dict[str, Any]) -> None:
    """Keep ``work``'s chunks if they were made for ``plan``; else empty it and record ``plan``."""
    work.mkdir(parents=True, exist_ok=True)
    recorded = work / "plan.json"
    if recorded.exists() and json.loads(recorded.read_text()) == plan:
        return
    for stale in work.glob("chunk-*"):
        stale.unlink()
    recorded.write_text(json.dumps(plan) + "\n")


def model_meta(teacher: Path) -> dict[str, Any]:
    """What a riskpulse model folder's card says about it as a teacher; ValueError without a card."""
    try:
        card = read_card(teacher)
    except (OSError, ValueError) as exc:
        raise ValueError(f"teacher {teacher} has no readable card.json ({exc}); give a riskpulse model folder "
                         "or a predictions folder (`riskpulse teacher predict`)") from exc
    return {"format": FORMAT, "teacher": str(teacher), "teacher_version": card.get("model_version"),
            "teacher_base_model": card.get("base_model", {}).get("name"), "teacher_metrics": card.get("metrics", {}),
            "split_seed": card_split_seed(card), "files": card.get("data", {}).get("files", {}),
            "topics": list(TOPICS), "sentiments": list(SENTIMENTS)}


def label_map(id2label: dict[int, str]) -> tuple[str, list[int]]:
    """The head an outside classifier's labels are, and its output columns in riskpulse's label
    order; ValueError listing its labels when they are neither riskpulse's sentiments nor its topics."""
    names = {str(label).strip().lower(): int(i) for i, label in id2label.items()}
    for head, labels in (("sentiment", SENTIMENTS), ("topic", TOPICS)):
        wanted = [label.lower() for label in labels]
        if sorted(names) == sorted(wanted):
            return head, [names[label] for label in wanted]
    raise ValueError(f"the teacher's labels {sorted(names)} are neither riskpulse's sentiments {list(SENTIMENTS)} "
                     f"nor its topics; only a classifier with exactly one of these label sets can teach")


def check_meta(meta: dict[str, Any], split_seed: int, files: dict[str, str]) -> None:
    """ValueError unless a teacher so described may teach a student of this cut and data: same
    labels, same held-out cut (else it trained on the student's test rows), same data files.
    An outside classifier's training data is unknown: it passes, and the student's card says so."""
    where = meta.get("teacher", "?")
    if meta.get("external"):
        return
    if meta.get("topics") != list(TOPICS) or meta.get("sentiments") != list(SENTIMENTS):
        raise ValueError(f"teacher {where} predicts other labels than this riskpulse (topics or sentiments "
                         "differ); retrain it on this version's labels")
    check_same_cut(meta, split_seed, files,
                   lambda cut: (f"teacher {where} was cut with split seed {cut}, this model with {split_seed}: it has "
                                f"trained on this model's held-out rows. Retrain it with --split-seed {split_seed} (vary "
                                "--seed instead), or train without it (--no-teachers)"),
                   lambda changed: (f"teacher {where} was trained on other versions of {', '.join(changed)}; retrain it "
                                    "on this data (docs/model.md, 'A bigger teacher'), or train without it (--no-teachers)"))
