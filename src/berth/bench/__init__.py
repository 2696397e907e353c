"""`berth bench`: scheduler_perf-style workloads at 500 to 5,000 nodes, measured three ways
(decision latency in-process, end-to-end throughput against the embedded cluster with the
cluster's own binding ceiling beside it, and the scheduler process's peak memory).
"""

from berth.bench.runner import Options, format_table, run_bench
from berth.bench.workload import (
    SIZES,
    Size,
    Workload,
    WorkloadError,
    builtin_workloads,
    load_workload,
)

__all__ = [
    "SIZES",
    "Options",
    "Size",
    "Workload",
    "WorkloadError",
    "builtin_workloads",
    "format_table",
    "load_workload",
    "run_bench",
]
