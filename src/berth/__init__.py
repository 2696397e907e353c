"""Berth: a Kubernetes scheduler with upstream kube-scheduler semantics and live-metric scoring."""

__version__ = "0.1.0"
