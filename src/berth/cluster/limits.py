"""The bounds of the embedded API server, in one place: what one request may send, what one stored
object may weigh, how much of the past the watch cache keeps, and what the listener allows.

Each limit has one check (the store for objects, the dispatcher for bodies and requests in flight,
the listener for connections and timeouts) so a writer cannot get around it by taking another
path. Defaults are upstream's where upstream has one (kube-apiserver, etcd, Go's http.Server).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from berth.safeload import DEFAULT_MAX_DEPTH

# orjson serialises at most 254 levels and a stored object is sent inside up to 4 more (a
# Table row in a watch event), so a depth limit above this could store what cannot be served.
MAX_DEPTH_CEILING = 200


@dataclass(frozen=True)
class Limits:
    """User-settable bounds; `berth cluster` has one flag per field (dashes for underscores)."""

    # kube-apiserver --max-request-body-bytes (MaxRequestBodyBytes): 3 MiB.
    max_body_bytes: int = 3 * 1024 * 1024
    # etcd --max-request-bytes: 1.5 MiB; the encoded object as stored.
    max_object_bytes: int = 1536 * 1024
    # Levels of JSON objects and arrays, in a request body and in a stored object.
    max_depth: int = DEFAULT_MAX_DEPTH
    # kube-apiserver JSONPatchMaxCopyBytes: what the "copy" operations of one patch may add.
    json_patch_max_copy_bytes: int = 3 * 1024 * 1024
    # kube-apiserver maxJSONPatchOperations.
    json_patch_max_operations: int = 10_000
    # The watch cache: the last N events, and at most this many bytes of them.
    watch_window: int = 50_000
    watch_cache_bytes: int = 256 * 1024 * 1024
    # Open connections (watches included); more are closed at once.
    max_connections: int = 1024
    # Requests being served at once, watches excepted (kube-apiserver --max-requests-inflight);
    # more get 429 with Retry-After.
    max_requests_inflight: int = 400
    # Go http.Server as kube-apiserver configures it: ReadHeaderTimeout 32 s, IdleTimeout 90 s.
    header_timeout: float = 32.0
    idle_timeout: float = 90.0
    # kube-apiserver --request-timeout: reading a body and answering a non-watch request.
    request_timeout: float = 60.0
    # kube-apiserver --min-request-timeout: a watch without timeoutSeconds ends after a random
    # time between this and twice this, so clients re-watch and load spreads.
    min_request_timeout: float = 1800.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{f.name.replace('_', '-')}: must be a positive number")
        if self.max_depth > MAX_DEPTH_CEILING:
            raise ValueError(f"max-depth: at most {MAX_DEPTH_CEILING}")
        if self.max_object_bytes > self.watch_cache_bytes:
            raise ValueError("watch-cache-bytes: must be at least max-object-bytes")


LIMIT_NAMES = frozenset(f.name for f in fields(Limits))
