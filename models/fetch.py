"""`riskpulse data fetch`: the four labelled data sets, downloaded from where they are published,
checked, and converted to the CSV layout riskpulse trains on (docs/model.md, "Data").

Every file is downloaded from a pinned revision and checked against its documented sha256 before
anything is converted; a file that differs is refused (a changed or corrupted download must not
become training data silently). The converted CSVs are then compared with the copies the shipped
model was trained on: identical, or reported as different (the model card of a model trained on
them records their sha256 either way). Each data set's folder gets its licence.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import logging
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


class DownloadRefused(Exception):
    """A downloaded file is not the one documented (checksum) or could not be fetched."""


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str | None = None  # as published; None where only the converted output's digest is known
    members: dict[str, str] = field(default_factory=dict)  # archives: member name -> sha256


@dataclass(frozen=True)
class DataSet:
    folder: str
    publisher: str
    licence: str
    downloads: dict[str, Download]
    convert: Callable[[dict[str, bytes], Path], None]
    reference: dict[str, str]  # converted file -> sha256 of the copy the shipped model was trained on


# --- conversions: the published formats -> text,label[,...] CSV, UTF-8, "\n", minimal quoting ---------

def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _phrasebank_pairs(raw: bytes) -> list[tuple[str, str]]:
    """``sentence@label`` per line, latin-1, CRLF, as in the original release."""
    pairs = []
    for line in raw.decode("latin-1").splitlines():
        if line.strip():
            sentence, label = line.rsplit("@", 1)
            pairs.append((sentence, label.strip()))
    return pairs


def convert_phrasebank(files: dict[str, bytes], out: Path) -> None:
    """Rows in the order of the 50% file; ``agreement`` is the highest nested subset each occurrence
    of a (sentence, label) pair belongs to, counting repeats; repeated pairs are written once, at
    their highest agreement."""
    levels = [(100, "Sentences_AllAgree.txt"), (75, "Sentences_75Agree.txt"), (66, "Sentences_66Agree.txt")]
    counts = {level: Counter(_phrasebank_pairs(files[name])) for level, name in levels}
    seen: Counter[tuple[str, str]] = Counter()
    best: dict[tuple[str, str], int] = {}
    for pair in _phrasebank_pairs(files["Sentences_50Agree.txt"]):
        k = seen[pair]
        seen[pair] += 1
        level = next((lv for lv, _ in levels if k < counts[lv][pair]), 50)
        best[pair] = max(best.get(pair, 0), level)  # dicts keep first-seen order
    _write_csv(out / "all.csv", ["text", "label", "agreement"], [[s, lab, lv] for (s, lab), lv in best.items()])


def _relabelled(raw: bytes, labels: dict[str, str]) -> list[list[object]]:
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
    return [[row["text"], labels[str(row["label"]).strip()]] for row in reader]


SENTIMENT_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}  # Bearish, Bullish, Neutral
TOPIC_LABELS = dict(enumerate(
    ["Analyst Update", "Fed | Central Banks", "Company | Product News", "Treasuries | Corporate Debt", "Dividend",
     "Earnings", "Energy | Oil", "Financials", "Currencies", "General News | Opinion", "Gold | Metals | Materials",
     "IPO", "Legal | Regulation", "M&A | Investments", "Macro", "Markets", "Politics", "Personnel Change",
     "Stock Commentary", "Stock Movement"]))


def convert_twitter_sentiment(files: dict[str, bytes], out: Path) -> None:
    for src, dst in (("sent_train.csv", "train.csv"), ("sent_valid.csv", "valid.csv")):
        _write_csv(out / dst, ["text", "label"], _relabelled(files[src], SENTIMENT_LABELS))


def convert_twitter_topic(files: dict[str, bytes], out: Path) -> None:
    labels = {str(k): v for k, v in TOPIC_LABELS.items()}
    for src, dst in (("topic_train.csv", "train.csv"), ("topic_valid.csv", "valid.csv")):
        _write_csv(out / dst, ["text", "label"], _relabelled(files[src], labels))


def convert_sentfin(files: dict[str, bytes], out: Path) -> None:
    """One row per (headline, entity) from ``Decisions`` (a Python dict literal); repeats written once."""
    rows: dict[tuple[str, str, str], None] = {}
    for row in csv.DictReader(io.StringIO(files["SEntFiN.csv"].decode("utf-8"))):
        for entity, label in ast.literal_eval(row["Decisions"]).items():
            rows[(row["Title"], str(entity), str(label))] = None
    _write_csv(out / "all.csv", ["text", "entity", "label"], [list(r) for r in rows])


# --- where they are published -------------------------------------------------------------------

HF = "https://huggingface.co/datasets"
GH = "https://raw.githubusercontent.com"
DATASETS: list[DataSet] = [
    DataSet(
        "financial-phrasebank", "Malo, Sinha, Korhonen, Wallenius, Takala (2014), the original release v1.0",
        "CC BY-NC-SA 3.0 (non-commercial; a model trained on it inherits the restriction)",
        {"FinancialPhraseBank-v1.0.zip": Download(
            f"{HF}/takala/financial_phrasebank/resolve/main/data/FinancialPhraseBank-v1.0.zip",
            members={"Sentences_50Agree.txt": "bb1b4df6de05d50b146f87a9d4d024b69f947066445f2384f014c3564c1612c8",
                     "Sentences_66Agree.txt": "725adb1de7d33977b0c2f63c33d5ad60e3c623b916856e18663915dfe47b6981",
                     "Sentences_75Agree.txt": "a7ca39fb9dc60aed1c323ee635494aed4acdfc05e0349a9e74367502325303a4",
                     "Sentences_AllAgree.txt": "5fb370b3005b9a2759f708849a691ad2e4d2593d4c995c1afde229398a516594",
                     "License.txt": ""})},
        convert_phrasebank,
        {"all.csv": "335511f48aec814244f32455c92a7e5b9472dad76688124fd7a68a3bc9406b80"}),
    DataSet(
        "twitter-financial-news-sentiment", "zeroshot/twitter-financial-news-sentiment (Hugging Face), v1.0.0",
        "MIT (dataset card); the tweets remain subject to their authors' rights and the platform's terms",
        {"sent_train.csv": Download(f"{GH}/umaima-aman/Twee_Sentiment_Analysis-DeepLearning/"
                                    "0286b19b35c7d658dc28068381c765df4758545a/sent_train.csv",
                                    "184e6322b7f0e84c3103a83d198f1be8203de8b63a857f67a2964321b71c4e8d"),
         "sent_valid.csv": Download(f"{GH}/umaima-aman/Twee_Sentiment_Analysis-DeepLearning/"
                                    "0286b19b35c7d658dc28068381c765df4758545a/sent_valid.csv",
                                    "393572beac5064ed60c9f608a57dc66af2b41a91b89c149932d5c57f827e25da")},
        convert_twitter_sentiment,
        {"train.csv": "2d5f0bd0742775f0c9474cf388cee04232d79faf4e9b74e8a283279daf7f4fe5",
         "valid.csv": "111ca349d64b4e4efa03fb90544e913580b9b58c37802bbf67de3ecd3282e4c6"}),
    DataSet(
        "twitter-financial-news-topic", "zeroshot/twitter-financial-news-topic (Hugging Face), revision acbc8af",
        "MIT (dataset card); the tweets remain subject to their authors' rights and the platform's terms",
        {"topic_train.csv": Download(f"{HF}/zeroshot/twitter-financial-news-topic/resolve/"
                                     "acbc8af2a35ccf0916124efcbe9e6cf25f191012/topic_train.csv"),
         "topic_valid.csv": Download(f"{HF}/zeroshot/twitter-financial-news-topic/resolve/"
                                     "acbc8af2a35ccf0916124efcbe9e6cf25f191012/topic_valid.csv",
                                     "67396d6cd4a21c3755de783f20fb5842f12ae8edb9367eed5d2644dd85ca9243")},
        convert_twitter_topic,
        {"train.csv": "ffa39696baaf6a4ecdce52951f1131b16a01790179df25c61237ad42ca839490",
         "valid.csv": "9bd409c5d5852db8c45829e00a54a5a216f4a8c3f24b41ff9a0a68da12a8cfbc"}),
    DataSet(
        "sentfin", "Sinha, Kedas, Kumar, Malo (2022), SEntFiN 1.0, the authors' repository pyRis/SEntFiN",
        "MIT, copyright (c) 2021 Ankur Sinha, Satishwar Kedas, Rishu Kumar, Pekka Malo",
        {"SEntFiN.csv": Download(f"{GH}/pyRis/SEntFiN/eba43610fe3cb57a3e5773cd6c037da1f8992ad5/SEntFiN.csv",
                                 "570af7ba58f724f3fcc414dd5ba80da5b1a3b342134d76c6ebdf53a32c54a92f"),
         "LICENSE": Download(f"{GH}/pyRis/SEntFiN/eba43610fe3cb57a3e5773cd6c037da1f8992ad5/LICENSE")},
        convert_sentfin,
        {"all.csv": "8cbf25bf85e6af353ab9041367d542a592599d45c6080cca0c9c6d6c6a8ffac7"}),
]


# --- fetching ---------------------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _get(url: str, timeout_s: float) -> bytes:
    import httpx

    try:
        response = httpx.get(url, follow_redirects=True, timeout=timeout_s)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DownloadRefused(f"could not download {url}: {type(exc).__name__}: {exc}") from None
    return response.content


def _files(name: str, download: Download, data: bytes) -> dict[str, bytes]:
    """The checked files of one download: itself, or its archive members."""
    if download.sha256 and _sha256(data) != download.sha256:
        raise DownloadRefused(f"{name} from {download.url} has sha256 {_sha256(data)}, not the documented "
                              f"{download.sha256}: the published file changed or the download is damaged; nothing "
                              "was converted")
    if not download.members:
        return {name: data}
    found: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            member = Path(info.filename).name
            if member in download.members:
                found[member] = archive.read(info)
    for member, want in download.members.items():
        if member not in found:
            raise DownloadRefused(f"{name} from {download.url} has no {member}")
        if want and _sha256(found[member]) != want:
            raise DownloadRefused(f"{member} in {name} has sha256 {_sha256(found[member])}, not the documented {want}: "
                                  "nothing was converted")
    return found


def fetch(out: Path, datasets: list[DataSet] | None = None, timeout_s: float = 120.0) -> dict[str, dict[str, bool]]:
    """Download, check and convert every data set into ``out``; returns, per data set and converted
    file, whether it is identical to the copy the shipped model was trained on."""
    out = Path(out)
    verdicts: dict[str, dict[str, bool]] = {}
    for ds in datasets or DATASETS:
        files: dict[str, bytes] = {}
        for name, download in ds.downloads.items():
            log.info("downloading", extra={"data_set": ds.folder, "url": download.url})
            files.update(_files(name, download, _get(download.url, timeout_s)))
        folder = out / ds.folder
        ds.convert(files, folder)
        licence = files.get("License.txt") or files.get("LICENSE")
        (folder / "LICENSE.txt").write_bytes(licence or f"{ds.licence}\n".encode())
        (folder / "SOURCE.txt").write_text(f"{ds.publisher}\nLicence: {ds.licence}\n"
                                           + "".join(f"{n}: {d.url}\n" for n, d in ds.downloads.items()))
        verdicts[ds.folder] = {name: _sha256((folder / name).read_bytes()) == want for name, want in ds.reference.items()}
    return verdicts
