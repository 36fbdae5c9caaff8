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
    supervisor with the Faust worker as its child), from one read of each process's stat. A child
    that ended is not counted: read it before and after a stretch in which none ends."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, frontier = 0.0, [pid]
    while frontier:
        p = frontier.pop()
        total += cpu.get(p, 0.0)
        frontier += children.get(p, [])
    return total
