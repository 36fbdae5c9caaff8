"""`riskpulse data fetch`, offline: small files in the publishers' formats served over real HTTP by
a local server, and round trips that show the conversions rebuild ../shared/data byte for byte."""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from riskpulse.models import fetch as fetching
from riskpulse.models.data import read_labelled_csv
from riskpulse.models.fetch import DATASETS, Download, DownloadRefused, fetch


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _published_csv(header: list[str], rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def _phrasebank_zip() -> bytes:
    """The release layout: latin-1, CRLF, ``sentence@label``, nested agreement subsets."""
    unanimous = ["Sepp\u00e4l\u00e4 Oy 's net sales rose 12 % .@positive", "Operating loss widened to EUR 3mn .@negative"]
    three_quarters = ["The contract is worth EUR 1mn .@neutral"]
    two_thirds = ["Shares of the company were up , at sales@home stores .@positive"]  # an @ inside the sentence
    half = ["The board proposes a dividend .@neutral"]
    # a line repeated in the release: its two occurrences belong to different subsets
    files = {"Sentences_AllAgree.txt": unanimous + ["Profit fell .@negative"],
             "Sentences_75Agree.txt": unanimous + ["Profit fell .@negative"] + three_quarters,
             "Sentences_66Agree.txt": unanimous + ["Profit fell .@negative"] + three_quarters + two_thirds,
             "Sentences_50Agree.txt": unanimous + ["Profit fell .@negative"] + three_quarters + two_thirds + half
             + ["Profit fell .@negative"]}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, lines in files.items():
            archive.writestr(f"FinancialPhraseBank-v1.0/{name}", "\r\n".join(lines).encode("latin-1") + b"\r\n")
        archive.writestr("FinancialPhraseBank-v1.0/License.txt", "CC BY-NC-SA 3.0 (fixture)\r\n")
    return buf.getvalue()


PUBLISHED = {
    "FinancialPhraseBank-v1.0.zip": _phrasebank_zip(),
    "sent_train.csv": _published_csv(["text", "label"], [["$TSLA - Tesla slides, again https://t.co/x", 0],
                                                         ["Fed holds rates", 2], ["$AAPL beats", 1]]),
    "sent_valid.csv": _published_csv(["text", "label"], [["Oil \"surges\" on cuts", 1]]),
    "topic_train.csv": _published_csv(["text", "label"], [["Exxon &amp; Chevron merge? https://t.co/y", 13],
                                                          ["Yields climb", 3]]),
    "topic_valid.csv": _published_csv(["text", "label"], [["Gold, silver rally", 10]]),
    "SEntFiN.csv": _published_csv(["S No.", "Title", "Decisions", "Words"],
                                  [[1, "SpiceJet, Jet Airways shares fall", "{'SpiceJet': 'negative', 'Jet Airways': 'negative'}", 5],
                                   [2, "MMTC Q2 net loss at Rs 10.4 crore", "{\"MMTC\": \"neutral\"}", 7],
                                   [3, "MMTC Q2 net loss at Rs 10.4 crore", "{\"MMTC\": \"neutral\"}", 7]]),
    "LICENSE": b"MIT License (fixture)\n",
}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving the published files by name (404 otherwise)."""
    served = dict(PUBLISHED)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = served.get(self.path.rsplit("/", 1)[-1])
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _local(base: str, published: dict[str, bytes] = PUBLISHED) -> list[fetching.DataSet]:
    """The real data set list, pointed at the local server, with the fixtures' digests."""
    out = []
    for ds in DATASETS:
        downloads = {}
        for name, d in ds.downloads.items():
            members = d.members
            if members:
                with zipfile.ZipFile(io.BytesIO(published[name])) as archive:
                    members = {Path(n).name: _sha(archive.read(n)) for n in archive.namelist()}
            downloads[name] = Download(f"{base}/{name}", _sha(published[name]) if d.sha256 else None, members)
        out.append(replace(ds, downloads=downloads))
    return out


def test_fetch_downloads_checks_and_converts_every_data_set_with_its_licence(server: str, tmp_path: Path) -> None:
    verdicts = fetch(tmp_path, _local(server))
    assert set(verdicts) == {"financial-phrasebank", "twitter-financial-news-sentiment",
                             "twitter-financial-news-topic", "sentfin"}
    assert not any(v for files in verdicts.values() for v in files.values())  # fixtures, not the reference copies
    for folder in verdicts:
        assert (tmp_path / folder / "LICENSE.txt").read_text().strip()
        assert "Licence:" in (tmp_path / folder / "SOURCE.txt").read_text()
    assert "CC BY-NC-SA" in (tmp_path / "financial-phrasebank" / "LICENSE.txt").read_text()

    pb = read_labelled_csv(tmp_path / "financial-phrasebank" / "all.csv")
    assert list(pb.columns) == ["text", "label", "agreement"]
    by_text = dict(zip(pb.text, pb.agreement))
    assert by_text["Sepp\u00e4l\u00e4 Oy 's net sales rose 12 % ."] == "100"  # latin-1 decoded, UTF-8 written
    assert by_text["The contract is worth EUR 1mn ."] == "75"
    assert by_text["Shares of the company were up , at sales@home stores ."] == "66"
    assert by_text["The board proposes a dividend ."] == "50"
    assert by_text["Profit fell ."] == "100" and list(pb.text).count("Profit fell .") == 1  # repeat written once

    sent = read_labelled_csv(tmp_path / "twitter-financial-news-sentiment" / "train.csv")
    assert list(sent.label) == ["negative", "neutral", "positive"]
    topic = read_labelled_csv(tmp_path / "twitter-financial-news-topic" / "train.csv")
    assert list(topic.label) == ["M&A | Investments", "Treasuries | Corporate Debt"]
    assert read_labelled_csv(tmp_path / "twitter-financial-news-topic" / "valid.csv").label.tolist() == [
        "Gold | Metals | Materials"]
    sentfin = read_labelled_csv(tmp_path / "sentfin" / "all.csv")
    assert sentfin[["entity", "label"]].values.tolist() == [["SpiceJet", "negative"], ["Jet Airways", "negative"],
                                                            ["MMTC", "neutral"]]


def test_a_download_that_is_not_the_documented_file_is_refused(server: str, tmp_path: Path) -> None:
    datasets = _local(server)
    sentiment = next(ds for ds in datasets if ds.folder == "twitter-financial-news-sentiment")
    tampered = replace(sentiment, downloads={**sentiment.downloads, "sent_valid.csv": replace(
        sentiment.downloads["sent_valid.csv"], sha256="0" * 64)})
    with pytest.raises(DownloadRefused, match="sent_valid.csv .* not the documented"):
        fetch(tmp_path, [tampered])
    assert not (tmp_path / "twitter-financial-news-sentiment").exists()  # nothing converted
    archive = next(ds for ds in datasets if ds.folder == "financial-phrasebank")
    download = archive.downloads["FinancialPhraseBank-v1.0.zip"]
    broken = replace(archive, downloads={"FinancialPhraseBank-v1.0.zip": replace(
        download, members={**download.members, "Sentences_AllAgree.txt": "1" * 64})})
    with pytest.raises(DownloadRefused, match="Sentences_AllAgree.txt in .* not the documented"):
        fetch(tmp_path, [broken])
    missing = replace(sentiment, downloads={"sent_train.csv": Download(f"{server}/gone.csv")})
    with pytest.raises(DownloadRefused, match="could not download .*gone.csv"):
        fetch(tmp_path, [missing])


# --- round trips through the real data: the conversions rebuild ../shared/data byte for byte -----------

def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_twitter_conversions_rebuild_the_reference_files(data_dir: Path, tmp_path: Path) -> None:
    for ds, prefix, labels in (("twitter-financial-news-sentiment", "sent", fetching.SENTIMENT_LABELS),
                               ("twitter-financial-news-topic", "topic", {str(k): v for k, v in fetching.TOPIC_LABELS.items()})):
        ids = {v: k for k, v in labels.items()}
        published = {f"{prefix}_{split}.csv": _published_csv(["text", "label"], [[r["text"], ids[r["label"]]] for r in
                                                                                 _rows(data_dir / ds / f"{split}.csv")])
                     for split in ("train", "valid")}
        spec = next(d for d in DATASETS if d.folder == ds)
        spec.convert(published, tmp_path / ds)
        for name, want in spec.reference.items():
            assert _sha((tmp_path / ds / name).read_bytes()) == want, (ds, name)


def test_the_phrasebank_and_sentfin_conversions_rebuild_the_reference_files(data_dir: Path, tmp_path: Path) -> None:
    pb = _rows(data_dir / "financial-phrasebank" / "all.csv")
    subsets = {"Sentences_50Agree.txt": 50, "Sentences_66Agree.txt": 66, "Sentences_75Agree.txt": 75,
               "Sentences_AllAgree.txt": 100}
    published = {name: "\r\n".join(f"{r['text']}@{r['label']}" for r in pb if int(r["agreement"]) >= level)
                 .encode("latin-1") + b"\r\n" for name, level in subsets.items()}
    spec = next(d for d in DATASETS if d.folder == "financial-phrasebank")
    spec.convert(published, tmp_path / "pb")
    assert _sha((tmp_path / "pb" / "all.csv").read_bytes()) == spec.reference["all.csv"]

    rows = _rows(data_dir / "sentfin" / "all.csv")
    titles = [[i, r["text"], repr({r["entity"]: r["label"]}), 0] for i, r in enumerate(rows)]
    spec = next(d for d in DATASETS if d.folder == "sentfin")
    spec.convert({"SEntFiN.csv": _published_csv(["S No.", "Title", "Decisions", "Words"], titles)}, tmp_path / "sf")
    assert _sha((tmp_path / "sf" / "all.csv").read_bytes()) == spec.reference["all.csv"]
