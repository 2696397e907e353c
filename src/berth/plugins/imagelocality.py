"""ImageLocality: prefer nodes that already hold the pod's images, weighted by how widespread.

Upstream: pkg/scheduler/framework/plugins/imagelocality/image_locality.go (init containers
included; the spread factor divides by every node in the snapshot).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from berth.framework.plugin import MAX_NODE_SCORE, CycleState, ScorePlugin
from berth.objects.pod import PodInfo
from berth.plugins.registry import register
from berth.state.cluster import IndexArray, IntArray, normalize_image

NAME = "ImageLocality"
MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


class ImageLocality(ScorePlugin):
    name = NAME

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args, handle=handle)
        # image -> (its holders' generation, node count, slot count) and the scaled size per
        # slot: rebuilt only when a node gains or loses the image or the node set changes.
        self._per_slot: dict[str, tuple[tuple[int, int, int], IntArray]] = {}

    def _scaled_sizes(self, image: str, holders: dict[int, int], total_nodes: int) -> IntArray:
        """upstream scaledImageScore for every slot: size x (nodes holding it / all nodes)."""
        state = self.state
        key = (state.image_generation.get(image, 0), total_nodes, len(state.present))
        cached = self._per_slot.get(image)
        if cached is not None and cached[0] == key:
            return cached[1]
        spread = float(len(holders)) / float(total_nodes)
        slots = np.fromiter(holders.keys(), dtype=np.intp, count=len(holders))
        sizes = np.fromiter(holders.values(), dtype=np.float64, count=len(holders))
        per_slot = np.zeros(len(state.present), dtype=np.int64)
        per_slot[slots] = np.trunc(sizes * spread).astype(np.int64)
        if len(self._per_slot) >= 256:
            self._per_slot.clear()
        self._per_slot[image] = (key, per_slot)
        return per_slot

    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        state = self.state
        total_nodes = state.num_nodes
        sums = np.zeros(len(nodes), dtype=np.int64)
        if total_nodes:
            position = {int(idx): i for i, idx in enumerate(nodes)} if len(nodes) < 64 else None
            for image in pod.images:
                name = normalize_image(image)
                holders = state.image_nodes.get(name)
                if not holders:
                    continue
                spread = float(len(holders)) / float(total_nodes)
                if position is not None:
                    for idx, size in holders.items():
                        pos = position.get(idx)
                        if pos is not None:
                            sums[pos] += int(float(size) * spread)
                else:
                    sums += self._scaled_sizes(name, holders, total_nodes).take(nodes)
        max_threshold = MAX_CONTAINER_THRESHOLD * len(pod.images)
        clipped = np.clip(sums, MIN_THRESHOLD, max(max_threshold, MIN_THRESHOLD))
        span = max_threshold - MIN_THRESHOLD
        if span <= 0:
            return np.zeros(len(nodes), dtype=np.int64)
        out: IntArray = (MAX_NODE_SCORE * (clipped - MIN_THRESHOLD)) // span
        return out


register(ImageLocality)
