"""Labelled data: read the CSVs of ../shared/data and cut reproducible splits.

Every row becomes (text, topic, sentiment, source) with -1 where a task's label is missing,
so one encoder pass trains both heads and the missing label is masked from the loss.

Splits, all seeded and stratified:
- PhraseBank has no official split: 70% train, 10% dev, 20% test (``phrasebank-test``, never
  trained on; reported on all agreement levels and on the all-agree subset).
- Twitter sentiment / topic: 95% of the official train split trains, 5% is the dev cut used
  for early stopping and calibration; the official ``valid`` files are only ever evaluated.
- SEntFiN: headlines whose entities all carry the same label, 90% train / 10% dev.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .labels import SENTIMENTS, TOPICS
from .manifest import sha256  # one file digest for the data card and the export manifest

PHRASEBANK = "financial-phrasebank/all.csv"
TW_SENT_TRAIN = "twitter-financial-news-sentiment/train.csv"
TW_SENT_VALID = "twitter-financial-news-sentiment/valid.csv"
TW_TOPIC_TRAIN = "twitter-financial-news-topic/train.csv"
TW_TOPIC_VALID = "twitter-financial-news-topic/valid.csv"
SENTFIN = "sentfin/all.csv"

COLUMNS = ["text", "topic", "sentiment", "source", "agreement"]  # agreement: PhraseBank's annotators (%), else 0


def read_labelled_csv(path: Path) -> pd.DataFrame:
    """Read a ``text,label[,agreement]`` CSV as in ../shared/data, with a clear error if it is not."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: point --data / RISKPULSE_DATA_DIR at the labelled data folder, "
                                "or download it with `riskpulse data fetch --out DIR` (needs internet; docs/model.md)")
    df = pd.read_csv(path, keep_default_na=False, dtype=str)
    missing = {"text", "label"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected text,label[,agreement]")
    return df


def _stratified_cut(df: pd.DataFrame, key: str, fractions: list[float], seed: int) -> list[pd.DataFrame]:
    """Cut ``df`` into parts with the given fractions, keeping the class mix of ``key`` in each."""
    parts: list[list[pd.DataFrame]] = [[] for _ in fractions]
    for _, group in df.groupby(key, sort=True):
        group = group.sample(frac=1.0, random_state=seed)
        n = len(group)
        bounds = [0]
        for f in fractions[:-1]:
            bounds.append(bounds[-1] + int(round(f * n)))
        bounds.append(n)
        for i in range(len(fractions)):
            parts[i].append(group.iloc[bounds[i]:bounds[i + 1]])
    return [pd.concat(p).sample(frac=1.0, random_state=seed).reset_index(drop=True) for p in parts]


def _frame(texts: pd.Series, source: str, topic: pd.Series | None = None,
           sentiment: pd.Series | None = None, agreement: pd.Series | None = None) -> pd.DataFrame:
    n = len(texts)
    out = pd.DataFrame({"text": texts.to_numpy(), "source": source})
    out["topic"] = topic.map(TOPICS.index).to_numpy() if topic is not None else [-1] * n
    out["sentiment"] = sentiment.map(SENTIMENTS.index).to_numpy() if sentiment is not None else [-1] * n
    out["agreement"] = pd.to_numeric(agreement, errors="coerce").fillna(0).astype(int).to_numpy() \
        if agreement is not None else [0] * n
    return out[COLUMNS]


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    dev: pd.DataFrame
    evals: dict[str, pd.DataFrame]  # name -> frame with columns text, label, task (+agreement)
    files: dict[str, str]  # relative path -> sha256

    def held_out_texts(self) -> list[str]:
        """Every evaluation text, in order: what the export and pack parity gates score."""
        return [t for frame in self.evals.values() for t in frame.text.tolist()]


def sentfin_headlines(df: pd.DataFrame) -> pd.DataFrame:
    """Headline-level labels from SEntFiN's entity labels: kept only where all entities agree."""
    agg = df.groupby("text")["label"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else None)
    agg = agg.dropna()
    return pd.DataFrame({"text": agg.index, "label": agg.to_numpy()})


def load_splits(data_dir: Path, seed: int = 13, limit_per_source: int | None = None,
                use_sentfin: bool = True, limit_eval: int | None = None) -> Splits:
    """Build train / dev / evaluation sets. ``limit_per_source`` cuts each training source (quick recipes);
    ``limit_eval`` each held-out set to its first rows (the test suite's recipe only: scoring the
    4,382 held-out texts is most of what training a two-layer test model costs)."""
    data_dir = Path(data_dir)
    files: dict[str, str] = {}

    def read(rel: str) -> pd.DataFrame:
        path = data_dir / rel
        df = read_labelled_csv(path)
        files[rel] = sha256(path)
        return df

    pb = read(PHRASEBANK)
    pb_train, pb_dev, pb_test = _stratified_cut(pb, "label", [0.7, 0.1, 0.2], seed)
    ts_train, ts_dev = _stratified_cut(read(TW_SENT_TRAIN), "label", [0.95, 0.05], seed)
    tt_train, tt_dev = _stratified_cut(read(TW_TOPIC_TRAIN), "label", [0.95, 0.05], seed)
    trains = [
        _frame(pb_train.text, "phrasebank", sentiment=pb_train.label, agreement=pb_train.agreement),
        _frame(ts_train.text, "tw-sentiment", sentiment=ts_train.label),
        _frame(tt_train.text, "tw-topic", topic=tt_train.label),
    ]
    devs = [
        _frame(pb_dev.text, "phrasebank", sentiment=pb_dev.label, agreement=pb_dev.agreement),
        _frame(ts_dev.text, "tw-sentiment", sentiment=ts_dev.label),
        _frame(tt_dev.text, "tw-topic", topic=tt_dev.label),
    ]
    if use_sentfin:
        sf = sentfin_headlines(read(SENTFIN))
        # keep PhraseBank's test sentences out of training even if a copy appears elsewhere
        sf = sf[~sf.text.isin(set(pb_test.text))]
        sf_train, sf_dev = _stratified_cut(sf, "label", [0.9, 0.1], seed)
        trains.append(_frame(sf_train.text, "sentfin", sentiment=sf_train.label))
        devs.append(_frame(sf_dev.text, "sentfin", sentiment=sf_dev.label))
    if limit_per_source is not None:
        trains = [t.head(limit_per_source) for t in trains]
        devs = [d.head(max(32, limit_per_source // 5)) for d in devs]
    train = pd.concat(trains, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    dev = pd.concat(devs, ignore_index=True)

    if limit_eval is not None:
        pb_test = pb_test.head(limit_eval)  # the all-agree set stays the part of it where all agreed
    evals = {
        "phrasebank-test": pb_test.assign(task="sentiment"),
        "phrasebank-test-allagree": pb_test[pb_test.agreement == "100"].assign(task="sentiment"),
        "tw-sentiment-valid": read(TW_SENT_VALID).assign(task="sentiment"),
        "tw-topic-valid": read(TW_TOPIC_VALID).assign(task="topic"),
    }
    if limit_eval is not None:
        evals = {name: frame.head(limit_eval) for name, frame in evals.items()}
    return Splits(train=train, dev=dev, evals=evals, files=files)
