"""What the benchmark reads from outside a scheduler process, the same way for Berth and for
kube-scheduler: CPU time and peak RSS from /proc/PID, and a histogram quantile from the text a
/metrics endpoint serves (parsed by prometheus_client, computed as PromQL's histogram_quantile).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

SLI_METRIC = "scheduler_pod_scheduling_sli_duration_seconds"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # the command name (field 2) is in parentheses and may contain spaces: split after it
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on


def _descendants(pid: int) -> list[int]:
    """The live processes below `pid` (children, theirs, ...), from /proc/*/stat's ppid."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(_stat_fields(int(entry))[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and every process below it: Berth's scheduler is two processes (the
    decisions and the API dispatcher). Children that exited and were reaped count through
    their parent's cutime/cstime; a restarted dispatcher's earlier CPU is not lost."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in (pid, *_descendants(pid)):
        try:
            fields = _stat_fields(p)
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return total / ticks


def tree_peak_rss_mb(pid: int) -> float:
    """The peak RSS of `pid` plus those of the live processes below it (each its own VmHWM;
    their sum bounds the peak of their total from above)."""
    total = peak_rss_mb(pid)
    for p in _descendants(pid):
        try:
            total += peak_rss_mb(p)
        except OSError:
            continue
    return round(total, 1)


def peak_rss_mb(pid: int) -> float:
    """Process `pid`'s peak resident set (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    raise OSError(f"/proc/{pid}/status has no VmHWM")


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (upper bound, count), summed over every label set."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    total: float

    def quantile(self, q: float) -> float | None:
        """PromQL's histogram_quantile: linear interpolation inside the bucket holding rank
        q x count (from 0 for the first bucket); the highest finite bound if it falls in +Inf."""
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in self.buckets:
            if count >= rank:
                if math.isinf(bound):
                    return lower_bound
                if count == lower_count:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                    count - lower_count
                )
            lower_bound, lower_count = bound, count
        return lower_bound


def histogram(text: str, name: str) -> Histogram | None:
    """The histogram `name` from Prometheus exposition `text`, label sets summed; None if the
    text does not have it."""
    by_bound: dict[float, float] = {}
    count = total = 0.0
    found = False
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        found = True
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                bound = float(sample.labels["le"])
                by_bound[bound] = by_bound.get(bound, 0.0) + sample.value
            elif sample.name == f"{name}_count":
                count += sample.value
            elif sample.name == f"{name}_sum":
                total += sample.value
    if not found:
        return None
    return Histogram(buckets=tuple(sorted(by_bound.items())), count=count, total=total)


__all__ = [
    "SLI_METRIC",
    "Histogram",
    "cpu_seconds",
    "histogram",
    "peak_rss_mb",
    "tree_cpu_seconds",
    "tree_peak_rss_mb",
]
