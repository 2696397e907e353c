"""Live node metrics for placement: sources refreshed in the background into a per-node table.

`table` is the per-node metric table the MetricScore plugin reads, `refresher` the asyncio loop
that fills it (one task per source), and there is one module per source kind; the
`metricSources[]` models live with the rest of the configuration (`berth.config.metrics`).
Nothing here runs on a scheduling decision's path except the table. Import the submodules
directly; this package init stays empty.
"""
