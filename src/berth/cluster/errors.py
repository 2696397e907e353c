"""API errors as the real API server reports them: a `Status` body with code, reason and message.

Handlers raise `ApiError`; the dispatcher turns it into JSON. Keeping the constructors here means
every error message has exactly one spelling, upstream's, and can be found by grepping it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

JSON = dict[str, Any]


class ApiError(Exception):
    """An error with an HTTP status code and a Kubernetes `Status` body."""

    def __init__(
        self,
        *,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> JSON:
        """The `Status` object upstream would send for this error."""
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:  # an internal error upstream words without one
            del body["reason"]
        if self.details is not None:
            body["details"] = self.details
        return body

    def body(self) -> bytes:
        return orjson.dumps(self.status())


def _details(*, name: str, group: str, kind: str, causes: list[JSON] | None = None) -> JSON:
    details: JSON = {"name": name, "kind": kind} if name else {"kind": kind}
    if group:
        details["group"] = group
    if causes:
        details["causes"] = causes
    return details


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(*, plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        code=404,
        reason="NotFound",
        message=f'{_qualified(plural, group)} "{name}" not found',
        details=_details(name=name, group=group, kind=plural),
    )


def already_exists(*, plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        code=409,
        reason="AlreadyExists",
        message=f'{_qualified(plural, group)} "{name}" already exists',
        details=_details(name=name, group=group, kind=plural),
    )


def conflict(*, plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        code=409,
        reason="Conflict",
        message=f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
        details=_details(name=name, group=group, kind=plural),
    )


def stale(*, plural: str, group: str, name: str) -> ApiError:
    return conflict(
        plural=plural,
        group=group,
        name=name,
        why="the object has been modified; please apply your changes to the latest version "
        "and try again",
    )


def invalid(*, kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; each cause is (reason type, field path, message) as upstream's field errors."""
    parts = [f"{field}: {msg}" for _, field, msg in causes]
    message = f'{kind}{"." + group if group else ""} "{name}" is invalid: ' + ", ".join(parts)
    if len(parts) > 1:
        message = (
            f'{kind}{"." + group if group else ""} "{name}" is invalid: [' + ", ".join(parts) + "]"
        )
    return ApiError(
        code=422,
        reason="Invalid",
        message=message,
        details=_details(
            name=name,
            group=group,
            kind=kind,
            causes=[{"reason": r, "message": m, "field": f} for r, f, m in causes],
        ),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(code=400, reason="BadRequest", message=message)


def forbidden(*, plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        code=403,
        reason="Forbidden",
        message=f'{_qualified(plural, group)} "{name}" is forbidden: {why}',
        details=_details(name=name, group=group, kind=plural),
    )


def gone(message: str) -> ApiError:
    return ApiError(code=410, reason="Expired", message=message)


def too_many_requests(message: str, *, details: JSON | None = None) -> ApiError:
    return ApiError(code=429, reason="TooManyRequests", message=message, details=details)


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        code=405,
        reason="MethodNotAllowed",
        message=f"the server does not allow this method on the requested resource ({method})",
    )


def page_not_found(path: str) -> ApiError:
    """A resource (or subresource) an API group does not serve, as kube-apiserver answers it
    (`path` only for the log)."""
    return ApiError(
        code=404,
        reason="NotFound",
        message="the server could not find the requested resource",
        details={},
    )


class NoRoute(ApiError):
    """A path outside every served API group: kube-apiserver's mux answers Go's plain-text
    `404 page not found`, not a Status."""

    def __init__(self, path: str) -> None:
        super().__init__(code=404, reason="NotFound", message="404 page not found")
        self.path = path


def unsupported_media_type(accepted: Iterable[str]) -> ApiError:
    """The handlers' 415 (apiserver's negotiation.NewUnsupportedMediaTypeError)."""
    return ApiError(
        code=415,
        reason="UnsupportedMediaType",
        message="the body of the request was in an unknown format - accepted media types "
        f"include: {', '.join(accepted)}",
    )


def route_unsupported_media_type() -> ApiError:
    """go-restful's 415, before any handler, for a PATCH of a built-in resource whose
    Content-Type is no patch type (its route consumes those only)."""
    return ApiError(
        code=415, reason="UnsupportedMediaType", message="415: Unsupported Media Type", details={}
    )


def unauthorized() -> ApiError:
    return ApiError(code=401, reason="Unauthorized", message="Unauthorized")


def too_large(limit: int) -> ApiError:
    return ApiError(
        code=413,
        reason="RequestEntityTooLarge",
        message=f"the request body is larger than the limit of {limit} bytes",
    )


def object_too_large(*, size: int, limit: int) -> ApiError:
    """A write whose object is over the stored-object limit: upstream answers etcd's refusal as
    a 500 with etcd's words, which is what users search for."""
    return ApiError(
        code=500,
        reason="InternalError",
        message=f"etcdserver: request is too large (the object would be {size} bytes; "
        f"objects are stored up to {limit} bytes)",
    )


def too_deep(*, what: str, limit: int) -> ApiError:
    return ApiError(
        code=400,
        reason="BadRequest",
        message=f"{what} nests deeper than {limit} levels of objects and arrays",
    )


def too_many_inflight(limit: int) -> ApiError:
    """kube-apiserver's max-in-flight refusal (a client retries after Retry-After)."""
    return ApiError(
        code=429,
        reason="TooManyRequests",
        message=f"Too many requests, please try again later. ({limit} requests in flight)",
        details={"retryAfterSeconds": 1},
    )


def too_large_resource_version(*, requested: int, current: int) -> ApiError:
    """upstream storage.NewTooLargeResourceVersionError: a 504 client-go answers by relisting."""
    return ApiError(
        code=504,
        reason="Timeout",
        message=f"Timeout: Too large resource version: {requested}, current: {current}",
        details={
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )


def internal(message: str) -> ApiError:
    return ApiError(code=500, reason="InternalError", message=message)


def success(*, code: int = 200, details: JSON | None = None) -> JSON:
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body
