"""The import contracts of pyproject.toml ([tool.importlinter]): layers point down only."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_layers_point_down_only() -> None:
    done = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command as lint; lint()",
                           "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
