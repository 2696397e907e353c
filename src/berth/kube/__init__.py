"""Talking to a Kubernetes API server: client wiring, informers, binder, events, leader election.

Everything goes through the official `kubernetes.aio` client (its kubeconfig, in-cluster config,
exec auth and TLS handling); hot paths use its `*_without_preload_content` calls and parse the
JSON themselves, never building generated models (FIELD-NOTES: deserialisation dominates CPU).
"""
