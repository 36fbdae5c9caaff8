"""Story identity: which headlines are copies of one story (syndication, wire prefixes, changed
figures, reordered words, light rewrites), as plain functions over a headline's words.

A risk analyst counts stories, not records: ten outlets carrying one lawsuit are one negative
story with ten sources. The method is near-duplicate detection as news pipelines do it (MinHash
blocking, Jaccard similarity of word sets), tuned on labelled headline pairs
(bench/bench_stories.py, docs/stories.md: precision first, since a false merge hides a story):

- :func:`story_tokens`: the headline normalised like exact dedupe (stream/core/dedupe.py), then
  wire and source tags dropped ("UPDATE 2-", "BRIEF-", "Reuters:"), figures dropped ("$260
  million" and "$250 million" tell the same story), stop words dropped, plurals folded.
- :func:`block_of`: the smallest hash of those words (a one-permutation MinHash). Two headlines
  share it with probability equal to the Jaccard similarity of their words, and identical word
  sets always do. The counting stage is partitioned by it, so copies meet on one partition
  without any cross-partition lookup, and a story is only ever compared within its block: a
  partitioned run and a single aggregator cluster alike (stream/stages/partitioning.py).
- :func:`same_story`: Jaccard at least :data:`THRESHOLD`, enough words to judge, and no clash of
  direction ("rises" against "falls": the same words with opposite news are two stories).
"""

from __future__ import annotations

import re
import zlib
from typing import Iterable

from .dedupe import dedupe_key, normalise_headline

THRESHOLD = 0.75  # chosen on the labelled pairs (bench/bench_stories.py; docs/stories.md)
MIN_TOKENS = 3  # fewer content words than this: only exact re-publication makes a copy
MAX_TOKENS = 40  # words kept per story (headlines are short; a body pasted as headline is capped)

# wire-service and syndication tags at the start of a normalised headline (punctuation already gone)
_WIRE = (r"update(?: \d+)?|corrected(?: \d+)?|correction|refile|rpt|repeat|brief|exclusive|breaking|"
         r"breaking news|urgent|flash|alert|instant view|wrapup(?: \d+)?|factbox|analysis|timeline|"
         r"press release|market wrap|live|watch|video|opinion|explainer|(?:\d+ )?(?:dj|djn)")
_SOURCES = (r"reuters|bloomberg|dow jones|afp|cnbc|marketwatch|mt newswires|benzinga|seeking alpha|zacks|"
            r"the fly|theflyonthewall|wsj|ft|financial times|business wire|businesswire|pr newswire|"
            r"prnewswire|globenewswire|globe newswire|accesswire|investing com|yahoo finance|fxstreet|"
            r"rttnews|barrons|forbes|cnn business|bbc|nikkei|kyodo|xinhua|bnn bloomberg|street insider|"
            r"streetinsider|tipranks|motley fool|fool com|ap|associated press")
_LEADING = re.compile(rf"^(?:(?:{_WIRE}|{_SOURCES})\s+)+")
_TRAILING = re.compile(rf"(?:\s+(?:{_SOURCES}|via|by|source|sources|report|reports|says|said))+$")
_FIGURE = re.compile(r"^\$?\d[\d.,]*(?:[kmbt]|bn|mn|mln|pct|x|st|nd|rd|th|s)?$")
_FIGURE_WORDS = frozenset("million millions billion billions trillion mln bln bn pct percent percentage points point "
                          "usd eur gbp jpy cents cent dollars dollar per share shares q1 q2 q3 q4 fy h1 h2 "
                          "quarter quarterly year yoy qoq".split())
STOP = frozenset("""a about above after again against all also am an and any are as at be been before being
below between both but by can could did do does doing down during each few for from further had has have
having he her here hers him his how i if in into is it its just me more most my new no nor not now of off
on once only or other our out over own same she should so some such than that the their them then there
these they this those through to too under until up very was we were what when where which while who whom
why will with would you your amid via says said report reports sources source vs""".split()) - {"down", "up", "not", "no"}

# words that say which way the news goes: two headlines alike but for these are two stories
UP = frozenset("""rise rises rose risen rising gain gains gained jump jumps jumped surge surges surged soar
soars soared climb climbs climbed rally rallies rallied up higher high beat beats upgrade upgrades upgraded
raise raises raised boost boosts boosted increase increases increased record profit profits win wins won
approve approves approved approval buy bull bullish above outperform strong growth expands expand""".split())
DOWN = frozenset("""fall falls fell fallen falling drop drops dropped slump slumps slumped plunge plunges
plunged sink sinks sank tumble tumbles tumbled slide slides slid decline declines declined down lower low miss
misses missed downgrade downgrades downgraded cut cuts cutting slash slashes slashed reduce reduces reduced
decrease decreases decreased loss losses lose loses lost reject rejects rejected sell bear bearish below
underperform weak shrink shrinks contracts contract not no warn warns warned""".split())


def _fold(word: str) -> str:
    """Plurals and third-person -s folded ("shares"/"share", "sues"/"sue"); nothing cleverer:
    a stemmer's mistakes merge stories, and a false merge is the costly error here."""
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_SKIP = STOP | _FIGURE_WORDS


def story_tokens(headline: str, normalised: str | None = None) -> frozenset[str]:
    """The words that carry a headline's story (see the module doc). ``normalised``: the
    headline through :func:`normalise_headline` already (the aggregator has it for dedupe)."""
    text = normalise_headline(headline) if normalised is None else normalised
    text = _TRAILING.sub("", _LEADING.sub("", text))
    words = []
    for word in text.split():
        if len(word) < 2 or word in _SKIP or ((word[0].isdigit() or word[0] == "$") and _FIGURE.match(word)):
            continue
        words.append(_fold(word))
        if len(words) >= MAX_TOKENS:
            break
    return frozenset(words)


def _hash(word: str) -> int:
    return zlib.crc32(word.encode("utf-8", "surrogatepass"))


def block_of(headline: str, tokens: frozenset[str] | None = None) -> str:
    """The story block of a headline: the smallest hash of its words (MinHash with one
    permutation). A headline without content words (emoji, figures only) is its own block,
    by its exact dedupe key, so its re-publications still meet it."""
    tokens = story_tokens(headline) if tokens is None else tokens
    if not tokens:
        return "x" + dedupe_key(headline)
    return f"{min(map(_hash, tokens)):08x}"


BANDS, ROWS = 6, 3  # LSH within a partition: a story is a candidate if it shares one band (3 min-hashes)
_PRIME = (1 << 61) - 1
_FOLD = 0x100000001B3
assert ROWS == 3, "bands() folds three min-hashes per band"
_PERMUTATIONS = [((0x9E3779B97F4A7C15 * (i + 1)) % _PRIME | 1, (0xC2B2AE3D27D4EB4F * (i + 7)) % _PRIME)
                 for i in range(BANDS * ROWS)]


def bands(words: frozenset[str]) -> list[str]:
    """The LSH band keys of a story's words (MinHash, :data:`BANDS` bands of :data:`ROWS` rows):
    two headlines with Jaccard similarity J share at least one with probability 1 - (1 - J^3)^6
    (0.986 at J = 0.8), while a band (three words) is far more specific than one common word, so
    the candidates a new headline is compared with stay few in a busy partition (8 on average
    over the 32,800 distinct headlines of the data sets, against 238 sharing a block)."""
    mins = list(map(min, *map(_permuted, words))) if len(words) > 1 else list(_permuted(next(iter(words))))
    # each band's ROWS min-hashes folded into one number: ((m0 * F + m1) % P * F + m2) % P
    return [f"{i}:{((mins[j] * _FOLD + mins[j + 1]) % _PRIME * _FOLD + mins[j + 2]) % _PRIME:x}"
            for i, j in enumerate(range(0, BANDS * ROWS, ROWS))]


_PERMUTED: dict[str, tuple[int, ...]] = {}


def _permuted(word: str) -> tuple[int, ...]:
    """A word's hash under each permutation, remembered: a vocabulary repeats, headlines do not."""
    found = _PERMUTED.get(word)
    if found is None:
        if len(_PERMUTED) >= 500_000:
            _PERMUTED.clear()
        h = _hash(word)
        found = _PERMUTED[word] = tuple((a * h + b) % _PRIME for a, b in _PERMUTATIONS)
    return found


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


_UP_FOLDED = frozenset(map(_fold, UP))
_DOWN_FOLDED = frozenset(map(_fold, DOWN))


def _directions(words: set[str]) -> set[int]:
    return {1 for w in words if w in _UP_FOLDED} | {-1 for w in words if w in _DOWN_FOLDED}


def direction_clash(a: frozenset[str], b: frozenset[str]) -> bool:
    """One headline says up where the other says down, in the words they do not share."""
    da, db = _directions(set(a - b)), _directions(set(b - a))
    return (1 in da and -1 in db) or (-1 in da and 1 in db)


def _cashtags(words: frozenset[str]) -> set[str]:
    return {w for w in words if w[0] == "$" and w[1:2].isalpha()}


def entity_clash(a: frozenset[str], b: frozenset[str]) -> bool:
    """Both name companies by cashtag, and none in common: one template, two companies."""
    ta, tb = _cashtags(a), _cashtags(b)
    return bool(ta and tb and not ta & tb)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """How alike two headlines' stories are, 0 to 1: Jaccard of their words, 0 when either has
    too few words to judge, or their directions or companies clash."""
    if len(a) < MIN_TOKENS or len(b) < MIN_TOKENS:
        return 0.0
    shared = len(a & b)
    if not shared or direction_clash(a, b) or entity_clash(a, b):
        return 0.0
    return shared / (len(a) + len(b) - shared)


def could_match(a: frozenset[str], b_size: int, threshold: float) -> bool:
    """Whether a story of ``b_size`` words can reach ``threshold`` with ``a`` at all (Jaccard
    is at most the ratio of the sizes): most candidates of a block are ruled out by this."""
    small, large = sorted((len(a), b_size))
    return large > 0 and small / large >= threshold


def same_story(a: frozenset[str], b: frozenset[str], threshold: float = THRESHOLD) -> bool:
    return similarity(a, b) >= threshold
