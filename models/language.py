"""Which language a headline is in, and whether the model can read it.

The shipped model learnt sentiment from English text only (docs/model.md); a headline in
another language gets a confident-looking but meaningless score, which would be counted as news
(most often neutral) and dilute every negative share. So every item's language is known before
it is counted: a producer's ``lang`` is respected; otherwise it is identified here, offline, with
py3langid (its model ships inside the package, BSD licence) behind a script check:

- no letters at all (emoji, figures): ``und``, nothing to judge;
- mostly Han, Kana, Hangul, Cyrillic, Arabic, Greek, Hebrew, Thai or Devanagari letters: that
  script's language (py3langid chooses among a script's languages where there are several);
- Latin letters: py3langid among the Latin-script languages, and a headline is called other
  than English only when py3langid is confident of it (:data:`MIN_CONFIDENCE`, chosen on
  thousands of real English headlines and hand-written ones in ten languages:
  bench/bench_language.py). A few words, tickers and company names read alike in every
  language; a wrongly refused English headline is a lost item, so the doubt goes to English.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

SUPPORTED = frozenset({"en"})  # the languages the shipped model was trained on
MIN_CONFIDENCE = 0.9  # py3langid's probability above which a Latin-script headline is not English
LATIN = ("en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "pl", "tr", "id", "ro", "cs", "hu", "ca")
CYRILLIC = ("ru", "uk", "bg", "sr", "kk")
ARABIC = ("ar", "fa", "ur")
# letters of these scripts carry more than a Latin letter: a Chinese headline naming "Tesla" is Chinese
DENSE_WEIGHT = 3

Status = Literal["producer", "detected", "no_text"]


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 where known, "und" where there is no text to tell
    supported: bool  # the model was trained on it: its sentiment is counted
    how: Status


def _script(ch: str) -> str | None:
    o = ord(ch)
    if o < 0x80:
        return "latin" if ch.isalpha() else None
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF:
        return "kana"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "han"
    if 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "hangul"
    if 0x0400 <= o <= 0x04FF:
        return "cyrillic"
    if 0x0600 <= o <= 0x06FF or 0x0750 <= o <= 0x077F:
        return "arabic"
    if 0x0370 <= o <= 0x03FF:
        return "greek"
    if 0x0590 <= o <= 0x05FF:
        return "hebrew"
    if 0x0E00 <= o <= 0x0E7F:
        return "thai"
    if 0x0900 <= o <= 0x097F:
        return "devanagari"
    if o < 0x250 or 0x1E00 <= o <= 0x1EFF:
        return "latin" if ch.isalpha() else None
    if ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN"):
        return "latin"
    return None


SINGLE = {"greek": "el", "hebrew": "he", "thai": "th", "devanagari": "hi", "hangul": "ko"}


def scripts(text: str) -> dict[str, int]:
    """Letters per script, dense scripts weighted (see :data:`DENSE_WEIGHT`)."""
    if text.isascii():  # most headlines: Latin letters only, counted in C rather than letter by letter
        letters = sum(map(str.isalpha, text))
        return {"latin": letters} if letters else {}
    out: dict[str, int] = {}
    for ch in text:
        script = _script(ch)
        if script is not None:
            out[script] = out.get(script, 0) + (1 if script in ("latin", "cyrillic", "arabic", "greek") else DENSE_WEIGHT)
    return out


@lru_cache(maxsize=None)
def _identifier(languages: tuple[str, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(languages))
    return ident


def normalise_code(lang: str) -> str:
    """A producer's tag as its primary language: "en-US" -> "en", "ZH_Hans" -> "zh"."""
    return lang.strip().replace("_", "-").split("-", 1)[0].lower() or "und"


def identify(text: str, declared: str | None = None, supported: frozenset[str] = SUPPORTED,
             min_confidence: float = MIN_CONFIDENCE) -> Language:
    """The language of ``text`` (a producer's ``declared`` one wins) and whether it is supported."""
    if declared and declared.strip():
        code = normalise_code(declared)
        return Language(code, code in supported, "producer")
    counts = scripts(text)
    if not counts:
        return Language("und", False, "no_text")
    script = max(sorted(counts), key=lambda s: counts[s])
    if script == "latin":
        lang, p = _identifier(LATIN).classify(text)
        code = lang if lang != "en" and p >= min_confidence else "en"
    elif script == "kana" or (script == "han" and "kana" in counts):
        code = "ja"
    elif script == "han":
        code = "zh"
    elif script == "cyrillic":
        code = _identifier(CYRILLIC).classify(text)[0]
    elif script == "arabic":
        code = _identifier(ARABIC).classify(text)[0]
    else:
        code = SINGLE[script]
    return Language(code, code in supported, "detected")


def confidence(text: str) -> tuple[str, float]:
    """py3langid's best Latin-script language and its probability (for the benchmark)."""
    lang, p = _identifier(LATIN).classify(text)
    return lang, float(p)
