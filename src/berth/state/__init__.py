"""The cluster state the engine decides on: a columnar node table and the pods placed on it."""

from berth.state.cluster import ClusterState

__all__ = ["ClusterState"]
