"""Compact, typed views of raw Kubernetes JSON, parsed once per object change.

Decisions read these structs, never the raw dicts nor generated client models (FIELD-NOTES: model
deserialisation dominates CPU in Python Kubernetes clients)."""

from berth.objects.errors import ObjectError
from berth.objects.node import NodeInfo, Taint, parse_node
from berth.objects.pod import PodInfo, Toleration, parse_pod
from berth.objects.quantity import parse_quantity

__all__ = [
    "NodeInfo",
    "ObjectError",
    "PodInfo",
    "Taint",
    "Toleration",
    "parse_node",
    "parse_pod",
    "parse_quantity",
]
