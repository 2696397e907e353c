"""node-annotation and node-label sources: a number written on the node object (e.g. a price).

No network: values are read from the cluster state the scheduler already watches, on the same
refresh schedule as other sources, so MetricScore treats them exactly like measured metrics. The
query is the annotation or label key; a value that is not a number is reported, not guessed.
"""

from __future__ import annotations

import math

import aiohttp

from berth.metrics.base import FetchResult, NodeDirectory, Source
from berth.metrics.table import MetricKey


def parse_number(text: str) -> float | None:
    """A finite float from an annotation/label value ("0.12", "3", "1e-3"), else None."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class NodeFieldSource(Source):
    """Reads `metadata.annotations[query]` (node-annotation) or `metadata.labels[query]`."""

    def needs_session(self) -> bool:
        return False

    async def fetch(
        self, key: MetricKey, *, nodes: NodeDirectory, session: aiohttp.ClientSession | None
    ) -> FetchResult:
        use_labels = self.config.type == "node-label"
        out = FetchResult(values={})
        for node in nodes.nodes.values():
            fields = node.labels if use_labels else node.annotations
            text = fields.get(key.query)
            if text is None:
                continue
            value = parse_number(text)
            if value is None:
                out.unmatched.append(f"node {node.name}: {key.query}={text!r} is not a number")
                continue
            out.values[node.name] = value
        return out


__all__ = ["NodeFieldSource", "parse_number"]
