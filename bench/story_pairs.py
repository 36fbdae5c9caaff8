"""Labelled headline pairs (same story / different story) to choose and check story identity.

Built on the fly from the labelled data sets in ../shared/data (never copied into the repo), so
the pairs are real financial headlines:

- same story: a headline and a syndicated copy of it, as wire services and aggregators publish
  them (a wire or source tag, a changed figure, clauses swapped, a word dropped or swapped for a
  synonym, the tail cut off, a source suffix), one or two variations at a time;
- different story: two different headlines of the data, most of them the hardest there are (the
  pairs sharing the most words, often about one company), some at random, and "mirror" pairs
  made by turning a headline's direction round ("rises" for "falls"), which are new news.

Different headlines of the data are labelled different stories. A few of the hardest pairs are
in truth two outlets' wording of one event, so the precision measured is a lower bound.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

from riskpulse.stream.core.dedupe import normalise_headline
from riskpulse.stream.core.stories import story_tokens

FILES = ("twitter-financial-news-topic/train.csv", "twitter-financial-news-sentiment/train.csv", "sentfin/all.csv")
WIRE_TAGS = ("UPDATE 1-", "UPDATE 2-", "UPDATE 3-", "BRIEF-", "EXCLUSIVE-", "CORRECTED-", "REFILE-",
             "Reuters: ", "Bloomberg: ", "(Reuters) ", "BREAKING: ", "MT Newswires: ", "Benzinga: ")
SUFFIXES = (" - Reuters", " | Bloomberg", " - MarketWatch", " (Reuters)", " - CNBC", " - Dow Jones", " - report")
SYNONYMS = {"shares": "stock", "stock": "shares", "says": "said", "said": "says", "company": "firm", "firm": "company",
            "profit": "earnings", "earnings": "profit", "quarterly": "quarter", "jumps": "surges", "surges": "jumps",
            "falls": "drops", "drops": "falls", "cuts": "slashes", "plans": "aims", "to": "will", "CEO": "chief executive",
            "buy": "acquire", "acquire": "buy", "sues": "sued", "Inc": "Inc.", "&amp;": "and"}
FLIPS = {"rises": "falls", "falls": "rises", "rose": "fell", "fell": "rose", "gains": "loses", "jumps": "slumps",
         "surges": "plunges", "plunges": "surges", "beats": "misses", "misses": "beats", "upgrades": "downgrades",
         "downgrades": "upgrades", "raises": "cuts", "cuts": "raises", "higher": "lower", "lower": "higher",
         "up": "down", "down": "up", "profit": "loss", "loss": "profit", "buy": "sell", "sell": "buy"}
URL = re.compile(r"\s*https?://\S+")
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool
    kind: str  # how the pair was made


def headlines(data: Path) -> list[str]:
    """Distinct headlines of the data sets (links dropped), long enough to be a headline."""
    seen: dict[str, str] = {}
    for name in FILES:
        path = data / name
        if not path.exists():
            continue
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                text = URL.sub("", row["text"]).strip()
                if len(text.split()) >= 5:
                    seen.setdefault(normalise_headline(text), text)
    return list(seen.values())


def _changed_figure(h: str, rng: random.Random) -> str | None:
    numbers = NUMBER.findall(h)
    if not numbers:
        return None
    old = rng.choice(numbers)
    new = str(round(float(old.replace(",", "")) * rng.choice([0.9, 0.95, 1.04, 1.1, 1.2]), 1)).removesuffix(".0")
    return h.replace(old, new, 1)


def _swapped_clauses(h: str, rng: random.Random) -> str | None:
    for sep in (", ", "; ", " - ", ": "):
        if sep in h:
            left, right = h.split(sep, 1)
            return f"{right[:1].upper()}{right[1:]}{sep}{left[:1].lower()}{left[1:]}"
    return None


def _dropped_word(h: str, rng: random.Random) -> str | None:
    words = h.split()
    if len(words) < 7:
        return None
    del words[rng.randrange(1, len(words))]
    return " ".join(words)


def _synonym(h: str, rng: random.Random) -> str | None:
    words = h.split()
    spots = [i for i, w in enumerate(words) if w in SYNONYMS]
    if not spots:
        return None
    i = rng.choice(spots)
    words[i] = SYNONYMS[words[i]]
    return " ".join(words)


def _cut_tail(h: str, rng: random.Random) -> str | None:
    words = h.split()
    if len(words) < 9:
        return None
    return " ".join(words[:-rng.choice([1, 2])])


VARIATIONS = {
    "wire_tag": lambda h, rng: rng.choice(WIRE_TAGS) + h,
    "source_suffix": lambda h, rng: h + rng.choice(SUFFIXES),
    "changed_figure": _changed_figure,
    "swapped_clauses": _swapped_clauses,
    "dropped_word": _dropped_word,
    "synonym": _synonym,
    "cut_tail": _cut_tail,
    "case_and_punctuation": lambda h, rng: h.upper() if rng.random() < 0.5 else h.replace(",", "").rstrip(".") + "!",
}


def _flipped(h: str) -> str | None:
    words = h.split()
    for i, w in enumerate(words):
        if w in FLIPS:
            words[i] = FLIPS[w]
            return " ".join(words)
    return None


def pairs(data: Path, n_same: int = 3000, n_hard: int = 2500, n_random: int = 500, n_mirror: int = 300,
          seed: int = 29) -> list[Pair]:
    rng = random.Random(seed)
    heads = headlines(data)
    rng.shuffle(heads)
    out: list[Pair] = []
    names = list(VARIATIONS)
    for h in heads:
        if len(out) >= n_same:
            break
        kinds = rng.sample(names, rng.choice([1, 1, 2]))
        variant: str | None = h
        for kind in kinds:
            variant = VARIATIONS[kind](variant, rng) if variant is not None else None
        if variant is not None and normalise_headline(variant) != normalise_headline(h):
            out.append(Pair(h, variant, True, "+".join(kinds)))
    # hard negatives: for headlines sharing a word, the other headline with the most words in common
    pool = heads[:12000]
    tokens = [story_tokens(h) for h in pool]
    index: dict[str, list[int]] = {}
    for i, t in enumerate(tokens):
        for w in t:
            index.setdefault(w, []).append(i)
    hard: list[Pair] = []
    for i in rng.sample(range(len(pool)), min(len(pool), n_hard * 3)):
        if len(hard) >= n_hard or len(tokens[i]) < 3:
            continue
        scores: dict[int, int] = {}
        for w in tokens[i]:
            postings = index[w]
            if len(postings) > 400:
                continue  # a common word says nothing about which headline is closest
            for j in postings:
                if j != i:
                    scores[j] = scores.get(j, 0) + 1
        if scores:
            j = max(scores, key=lambda k: (scores[k], -k))
            if tokens[i] != tokens[j]:
                hard.append(Pair(pool[i], pool[j], False, "hard_negative"))
    out += hard
    for _ in range(n_random):
        i, j = rng.sample(range(len(heads)), 2)
        out.append(Pair(heads[i], heads[j], False, "random_negative"))
    mirrors = 0
    for h in heads:
        if mirrors >= n_mirror:
            break
        flipped = _flipped(h)
        if flipped is not None:
            out.append(Pair(h, flipped, False, "direction_flipped"))
            mirrors += 1
    rng.shuffle(out)
    return out
