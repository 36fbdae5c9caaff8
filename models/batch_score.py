"""Score an archive (CSV or JSONL of texts) into JSONL: backfills, and the easiest way to try a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pandas as pd
from tqdm.auto import tqdm

from .errors import InvalidTextError
from .scorer import Scorer, clean_text

TEXT_FIELDS = ("text", "headline")


def read_texts(path: Path) -> pd.DataFrame:
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        frame = pd.read_json(path, lines=True, dtype=False)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for field in TEXT_FIELDS:
        if field in frame.columns:
            return frame.rename(columns={field: "_text"})
    raise ValueError(f"{path} has no 'text' or 'headline' column/field (found: {list(frame.columns)[:10]})")


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def score_file(scorer: Scorer, src: Path, out: Path, chunk: int = 1024, progress: bool = True) -> dict[str, int]:
    """Write one JSON line per input row: the row's fields plus the Scorer's, or an ``error`` for bad text."""
    frame = read_texts(src)
    counts = {"scored": 0, "invalid": 0}
    with open(out, "w", encoding="utf-8") as fh, tqdm(total=len(frame), desc="score", unit="text",
                                                         disable=not progress) as bar:
        for part in _chunks(frame, chunk):
            rows = part.to_dict(orient="records")
            good, texts = [], []
            for i, row in enumerate(rows):
                try:
                    texts.append(clean_text(row["_text"], i))
                    good.append(i)
                except InvalidTextError as exc:
                    row["error"] = exc.reason
            for i, score in zip(good, scorer.score(texts)):
                rows[i].update(score.to_dict())
            for row in rows:
                row["text"] = row.pop("_text")
                counts["invalid" if "error" in row else "scored"] += 1
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            bar.update(len(rows))
    return counts
