"""The package installs whole: the wheel holds what the worker, the dashboard and training need
(schemas, migrations, the shipped model, the kept teacher predictions), nothing lands beside
`riskpulse` in site-packages, and the build raises no setuptools warning about data it would drop."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_data_file_the_package_reads_and_builds_without_warnings(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], check=True, capture_output=True).stdout
    files = [f for f in archive.decode().split("\0") if f and (REPO / f).is_file()]
    for name in files:  # the tracked tree, as a clone has it (no build folders, no caches)
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes((REPO / name).read_bytes())
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), "-v"], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    log = built.stdout + built.stderr
    assert "Package would be ignored" not in log and "absent from the `packages` configuration" not in log, log[-3000:]
    (wheel,) = (tmp_path / "dist").glob("riskpulse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} <= {"riskpulse", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for needed in ("riskpulse/models/teachers/README.md", "riskpulse/models/teachers/mpnet-s13/predictions.json",
                   "riskpulse/models/teachers/mpnet-s13/predictions.npz", "riskpulse/stream/schemas/news.scored.schema.json",
                   "riskpulse/store/migrations/versions/0006_revisions.py", "riskpulse/stream/broker/pom.xml"):
        assert needed in names, f"{needed} is not in the wheel"
    assert any(n.startswith("riskpulse/shipped_model/onnx/") for n in names)
