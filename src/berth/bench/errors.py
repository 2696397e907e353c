"""The benchmark's one error type."""

from __future__ import annotations


class BenchError(Exception):
    """The benchmark could not complete (a child failed, pods were left unbound), or Berth's
    placements broke a rule (`berth.bench.verify.PlacementError`)."""
