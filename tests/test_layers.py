"""The installed package: one namespace, its data files, and the import contracts of
pyproject.toml ([tool.importlinter]): layers point down only.

The checks run on a real (non-editable) install into a temporary folder, because that is what a
user gets, and because import-linter walks the installed tree: the repository's folders map to
`riskpulse.*` only through setuptools' package-dir, which an editable checkout hides.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SOURCES = ("pyproject.toml", "README.md", "LICENSE", "riskpulse", "stream", "models", "alerts", "dashboard", "store")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install .` into a folder, from a copy of the sources (a build leaves build/ behind)."""
    src, target = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("site")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return target


def test_nothing_but_riskpulse_lands_in_site_packages(installed: Path) -> None:
    top = {p.name for p in installed.iterdir() if p.name not in ("bin", "__pycache__")}
    assert {n for n in top if not n.endswith(".dist-info")} == {"riskpulse"}
    for sub in ("stream", "stream/core", "models", "alerts", "dashboard", "store"):
        assert (installed / "riskpulse" / sub / "__init__.py").is_file(), sub
    data = {p.relative_to(installed / "riskpulse").as_posix() for p in (installed / "riskpulse").rglob("*")
            if p.is_file() and p.suffix in (".json", ".xml", ".js", ".mako")}
    assert {"stream/broker/pom.xml", "dashboard/assets/session.js", "stream/schemas/news.schema.json",
            "store/migrations/script.py.mako"} <= data
    assert (installed / "riskpulse" / "store" / "migrations" / "versions" / "0001_baseline.py").is_file()
    shipped = installed / "riskpulse" / "shipped_model"  # the default model, served with nothing configured
    for name in ("riskpulse.json", "tokenizer.json", "card.md", "onnx/model.onnx", "onnx/manifest.json"):
        assert (shipped / name).read_bytes() == (REPO / "riskpulse" / "shipped_model" / name).read_bytes(), name
    kept = installed / "riskpulse" / "models" / "teachers" / "mpnet-s13"  # the default recipe's teacher
    for name in ("predictions.json", "predictions.npz"):
        assert (kept / name).read_bytes() == (REPO / "models" / "teachers" / "mpnet-s13" / name).read_bytes(), name


def test_layers_point_down_only(installed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command as lint; lint()",
                           "--no-cache", "--config", str(REPO / "pyproject.toml")],
                          cwd=installed, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
    assert str(installed) in subprocess.run(  # the contracts judged the installed tree, not the checkout
        [sys.executable, "-c", "import riskpulse.stream.core, sys; print(riskpulse.stream.core.__file__)"],
        cwd=installed, env=env, capture_output=True, text=True, timeout=60).stdout


def test_the_installed_package_runs_its_commands_and_scores_with_its_shipped_model(installed: Path,
                                                                                    tmp_path: Path) -> None:
    """What a user of the wheel runs first, from the installed tree alone (no checkout on the path)."""
    env = {**os.environ, "PYTHONPATH": str(installed), "RISKPULSE_HOME": str(tmp_path)}
    env.pop("RISKPULSE_MODEL_DIR", None)
    for command in ("train", "worker"):
        done = subprocess.run([sys.executable, "-m", "riskpulse.cli", command, "--help"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "usage" in done.stdout.lower(), done.stdout[-2000:] + done.stderr[-2000:]
    score = ("from datetime import datetime, timezone\n"
             "import riskpulse.stream.scoring as scoring\n"
             "from riskpulse.records import NewsItem\n"
             "from riskpulse.settings import Settings\n"
             "service = scoring.ScoringService.from_settings(Settings())\n"
             "item = NewsItem(id='1', headline='Tesla shares plunge after regulators open a probe',"
             " published_at=datetime.now(timezone.utc))\n"
             "(out,) = service.score_items([item], datetime.now(timezone.utc))\n"
             "print(scoring.__file__, out.sentiment, out.model_version)\n")
    done = subprocess.run([sys.executable, "-c", score], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    where, sentiment, _ = done.stdout.split()[-3:]
    assert where.startswith(str(installed)) and sentiment == "negative", done.stdout
