"""How busy the machine is: benchmark figures mean little while other work shares the CPUs."""

from __future__ import annotations

import os
import resource
from pathlib import Path


class MachineLoad:
    """How much of the CPUs other processes used since creation (Linux), and the load average."""

    def __init__(self) -> None:
        self.start = (_machine_cpu(), _own_cpu())

    def __str__(self) -> str:
        load = "/".join(f"{x:.2f}" for x in os.getloadavg())
        (m0, own0), m1 = self.start, _machine_cpu()
        if m0 is None or m1 is None:
            return f"load average {load}"
        busy, total = m1[0] - m0[0], m1[1] - m0[1]
        others = max(0.0, busy - (_own_cpu() - own0)) / total if total else 0.0
        return (
            f"other processes used {others:.0%} of the {os.cpu_count()} CPUs; load average {load}"
        )


def _machine_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the machine since boot, from /proc/stat."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, sum(ticks) / hz


def _own_cpu() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)
