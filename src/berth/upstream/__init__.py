"""The real control plane as test and benchmark tooling: building `berth-upstream` from the Go
sources under `upstream/` (needs Go) and running its components (needs only the binary).

Public surface: `ControlPlane` and its `Options`, `find_binary`, `build`, `UpstreamError`.
"""

from berth.upstream.build import build, find_binary
from berth.upstream.controlplane import ControlPlane, Options
from berth.upstream.errors import UpstreamError

__all__ = ["ControlPlane", "Options", "UpstreamError", "build", "find_binary"]
