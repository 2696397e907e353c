"""Live node metrics for placement: sources refreshed in the background into a per-node table.

`berth.metrics.config` holds the `metricSources[]` models, `table` the per-node metric table the
MetricScore plugin reads, `refresher` the asyncio loop that fills it (one task per source), and
one module per source kind. Nothing here runs on a scheduling decision's path except the table.
Import the submodules directly; this package init stays empty so the configuration model can
import `berth.metrics.config` without pulling in the network code.
"""
