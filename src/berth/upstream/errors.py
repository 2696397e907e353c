"""The one error the upstream tooling raises: a message that is the whole story in one line."""

from __future__ import annotations


class UpstreamError(Exception):
    """The binary is missing, a build or a component failed, a port is taken, ..."""
