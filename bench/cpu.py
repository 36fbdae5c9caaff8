"""CPU seconds spent by processes, from Linux's /proc: the benches' share of a machine's work.

Rates on these shared machines move with whatever else runs; CPU seconds per item move much
less, and they say what a rate could be on cores of its own (``cores / cpu_per_item``).
"""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of ``pid`` and every live process under it (``riskpulse worker`` is a
    supervisor with the Faust worker as its child). A child that ended is not counted: read it
    before and after a stretch in which none ends."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # ended while we looked
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    total = 0.0
    for p in tree:
        try:
            total += cpu_seconds(p)
        except OSError:
            continue
    return total
