"""`berth bench`: scheduler_perf-style workloads at 500 to 5,000 nodes, measured three ways
(decision latency in-process, end-to-end throughput against the embedded cluster with the
cluster's own binding ceiling beside it, and the scheduler process's peak memory).

The runner lives in `berth.bench.runner` (`run_bench`, `Options`, `format_table`); this package
imports only the light workload model, so `berth --help` stays fast.
"""

from berth.bench.workload import (
    SIZES,
    Size,
    Workload,
    WorkloadError,
    builtin_workloads,
    load_workload,
)

__all__ = ["SIZES", "Size", "Workload", "WorkloadError", "builtin_workloads", "load_workload"]
