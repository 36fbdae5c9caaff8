"""Language identification on short headlines: English kept, other languages caught.

Two sets, measured side by side: the distinct English headlines of the labelled data sets
(../shared/data; thousands of real ones, the errors that cost counts) and hand-written headlines
in ten other languages (bench/lang_headlines.py). For each confidence threshold of py3langid on
Latin-script text: how many English headlines would be refused (a lost item each) and how many
foreign ones would be counted as English. The shipped threshold (models/language.py) is the
lowest that refuses at most 0.1% of English headlines. Prints a table and, last, one JSON line.

    python bench/bench_language.py [--data ../shared/data] [--out bench/results/language-DATE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_model import host  # noqa: E402
from bench.lang_headlines import HEADLINES  # noqa: E402
from bench.story_pairs import headlines  # noqa: E402
from riskpulse.models import language  # noqa: E402

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
ENGLISH_REFUSED_MAX = 0.001


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    english = headlines(args.data)
    foreign = [(lang, h) for lang, hs in HEADLINES.items() for h in hs]
    language.identify(english[0])  # loads py3langid's model (once per process)
    started = time.perf_counter()
    for h in english[:2000]:
        language.identify(h)
    us = (time.perf_counter() - started) / 2000 * 1e6
    rows = {}
    print(f"host: {host()['cpu']}; {len(english)} English headlines, {len(foreign)} in {len(HEADLINES)} other languages; "
          f"{us:.0f} us per headline")
    print(f"{'threshold':>10}{'English refused':>18}{'foreign caught':>16}{'right language':>16}")
    for t in THRESHOLDS:
        refused = [h for h in english if not language.identify(h, min_confidence=t).supported]
        got = [(lang, language.identify(h, min_confidence=t)) for lang, h in foreign]
        caught = sum(1 for _, g in got if not g.supported)
        right = sum(1 for lang, g in got if g.code == lang)
        rows[str(t)] = {"english_refused": len(refused), "english_refused_share": round(len(refused) / len(english), 5),
                        "foreign_caught": caught, "foreign_caught_share": round(caught / len(foreign), 4),
                        "right_language": right, "examples_refused": refused[:5]}
        print(f"{t:>10}{len(refused):>10} ({len(refused) / len(english):.2%}){caught:>9} ({caught / len(foreign):.0%})"
              f"{right:>10} ({right / len(foreign):.0%})")
    ok = [t for t in THRESHOLDS if rows[str(t)]["english_refused_share"] <= ENGLISH_REFUSED_MAX]
    chosen = min(ok) if ok else max(THRESHOLDS)
    print(f"\nthreshold chosen: {chosen} (shipped: {language.MIN_CONFIDENCE}); English refused at it: "
          f"{rows[str(chosen)]['examples_refused']}")
    missed = [(lang, h) for lang, h in foreign if language.identify(h, min_confidence=chosen).supported]
    print(f"foreign counted as English at it: {missed}")
    report = {"bench": "language", "english": len(english), "foreign": len(foreign), "us_per_headline": round(us, 1),
              "chosen": chosen, "shipped": language.MIN_CONFIDENCE, "thresholds": rows, "missed": missed, "host": host()}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("thresholds", "missed")}))


if __name__ == "__main__":
    main()
