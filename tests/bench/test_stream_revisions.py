"""bench_stream_revisions measures each revision's own code, not the checkout it is started in."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.bench_stream_revisions import link_packages, stream_origin
from tests.helpers import REPO


def test_a_worktree_imports_its_own_stream_not_the_editable_checkout(tmp_path: Path) -> None:
    tree = tmp_path / "rev"
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(tree), "HEAD"], cwd=REPO, check=True,
                   capture_output=True)
    try:
        # without the links, `make install`'s editable mapping sends riskpulse.stream to this checkout
        link_packages(tree)
        link_packages(tree)  # idempotent
        assert stream_origin(tree) == tree / "riskpulse" / "stream" / "__init__.py"
        assert (tree / "riskpulse" / "stream").resolve() == (tree / "stream").resolve()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
        shutil.rmtree(tree, ignore_errors=True)
