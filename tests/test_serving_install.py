"""The serving install (requirements/serve.lock: worker, ingest, rss, dashboard on ONNX Runtime)
needs no torch, transformers or scikit-learn, and the locks agree with pyproject and each other.

A real serving environment is built and measured by bench/bench_env_size.py; here the same
promise is held on every run: the serving code is imported, and the model served, in a process
where the training stack cannot be imported at all.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import REPO

TRAINING_STACK = ("torch", "transformers", "safetensors", "sklearn", "onnx", "onnxscript", "triton")
HEAVY_DISTRIBUTIONS = {"torch", "transformers", "scikit-learn", "triton", "safetensors", "onnx"}


def pins(lock: str) -> dict[str, str]:
    text = (REPO / "requirements" / lock).read_text()
    return {canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, re.M)}


@pytest.fixture(scope="module")
def serving_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder holding exactly the distributions of serve.lock (links into this environment),
    so a process on it sees what the slim image has: no torch, no transformers, no scikit-learn."""
    keep = set(pins("serve.lock")) | {"riskpulse"}
    site = tmp_path_factory.mktemp("serving-site")
    for dist in importlib.metadata.distributions():
        if canonicalize_name(dist.metadata["Name"]) not in keep:
            continue
        root = Path(str(dist.locate_file("")))
        for top in {Path(str(f)).parts[0] for f in dist.files or []} - {".."}:
            if (root / top).exists() and not (site / top).exists():
                (site / top).symlink_to(root / top)
    return site


def run_serving(site: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a python that sees the standard library and ``site`` only (-S: no site-packages)."""
    prelude = (f"import site, sys; sys.path[:] = [p for p in sys.path if p and 'site-packages' not in p]; "
               f"site.addsitedir({str(site)!r})\n")
    return subprocess.run([sys.executable, "-S", "-c", prelude + code], cwd=cwd, capture_output=True, text=True,
                          timeout=180)


NOTHING_HEAVY = f"assert not [m for m in sys.modules if m.split('.')[0] in {TRAINING_STACK!r}], 'imported'\n"


def test_the_serving_lock_holds_no_training_stack_and_agrees_with_the_dev_lock() -> None:
    serve, train, dev = pins("serve.lock"), pins("train.lock"), pins("dev.lock")
    assert not HEAVY_DISTRIBUTIONS & set(serve), "the serving lock pulls in the training stack"
    assert not [name for name in serve if name.startswith("nvidia-")]
    assert {"torch", "transformers", "onnx"} <= set(train)
    for lock in (serve, train):  # every image runs the versions CI tested
        assert {name: version for name, version in lock.items() if dev.get(name) != version} == {}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {"serve.lock": project["dependencies"],
                "train.lock": project["dependencies"] + project["optional-dependencies"]["train"],
                "dev.lock": [r for extra in ("train", "test") for r in project["optional-dependencies"][extra]]}
    for lock, requirements in declared.items():  # a dependency added to pyproject but not locked: run scripts/lock.sh
        missing = {Requirement(r).name for r in requirements} - set(pins(lock))
        assert {canonicalize_name(n) for n in missing} == set(), f"{lock} is stale: run bash scripts/lock.sh"
    assert "--hash=sha256:" in (REPO / "requirements" / "serve.lock").read_text()


def test_the_services_start_without_the_training_stack(serving_site: Path, tmp_path: Path) -> None:
    code = f"""
import importlib.util
assert importlib.util.find_spec("torch") is None and importlib.util.find_spec("sklearn") is None
from riskpulse.settings import Settings
from riskpulse.stream.agents import build_app
import riskpulse.stream.ingest, riskpulse.stream.rss, riskpulse.stream.replay, riskpulse.alerts.delivery
import gunicorn.app.wsgiapp
from riskpulse.dashboard.app import create_app
from riskpulse.models.scorer import available_backends
build_app(Settings(home={str(tmp_path)!r}))
create_app(Settings(home={str(tmp_path)!r}, store_url="sqlite:///{tmp_path}/store.db"), 5000)
print(available_backends())
""" + NOTHING_HEAVY
    done = run_serving(serving_site, code, tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "'onnx'" in done.stdout and "torch" not in done.stdout


def test_a_training_command_in_a_serving_install_says_which_extra_to_install(serving_site: Path,
                                                                             tmp_path: Path) -> None:
    done = run_serving(serving_site, "from riskpulse.cli import main; raise SystemExit(main(['train']))", tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "pip install 'riskpulse[train]'" in done.stderr and "Traceback" not in done.stderr


def test_the_model_is_served_on_onnx_runtime_without_the_training_stack(serving_site: Path, tiny_model: Path,
                                                                        tmp_path: Path) -> None:
    code = f"""
from riskpulse.models.scorer import Scorer
scorer = Scorer({str(tiny_model)!r}, backend="onnx")
print(scorer.score(["Shares plunge after the bank misses earnings", "Fed holds rates"])[0])
""" + NOTHING_HEAVY
    done = run_serving(serving_site, code, tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "sentiment=" in done.stdout
