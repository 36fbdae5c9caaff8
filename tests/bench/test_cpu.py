"""bench/cpu.py counts a process's whole tree: ``riskpulse worker`` does its work in a child."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.cpu import cpu_seconds, tree_cpu_seconds

BURN = """
import os, sys, time
x = 0
start = sum(os.times()[:2])
while sum(os.times()[:2]) - start < 0.3:  # CPU seconds, not wall time: the same work on a busy machine
    x += 1
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(60)
"""


def test_a_grandchild_s_cpu_counts_toward_its_ancestor(tmp_path: Path) -> None:
    done = tmp_path / "done"
    (tmp_path / "burn.py").write_text(BURN)
    # a parent that only waits, like the supervisor; the work happens one level down
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, "
                               f"{str(tmp_path / 'burn.py')!r}, {str(done)!r}])"])
    try:
        while not done.exists() or not done.read_text():
            assert parent.poll() is None, "the parent ended early"
            time.sleep(0.05)
        child = int(done.read_text())
        assert cpu_seconds(child) >= 0.29
        assert cpu_seconds(parent.pid) < 0.29  # the parent itself did not do the work
        assert tree_cpu_seconds(parent.pid) >= cpu_seconds(parent.pid) + cpu_seconds(child) - 0.02
    finally:
        parent.kill()
        parent.wait()
        subprocess.run(["pkill", "-f", str(tmp_path / "burn.py")], check=False)
