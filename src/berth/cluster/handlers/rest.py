"""The request dispatcher: authentication, fault injection, routing, verbs and error bodies.

One catch-all aiohttp handler parses the path itself (see routes.py), so every failure, including
an unknown path, a wrong method, a malformed or oversized body, comes back as a `Status` object
and never as a stack trace.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from berth.cluster import discovery, dra, errors, events, openapi, options, protobuf
from berth.cluster.api import BODY_TYPES, CUSTOM_BODY_TYPES, Api, patch_kind
from berth.cluster.errors import ApiError
from berth.cluster.faults import Faults
from berth.cluster.handlers.routes import Discovery, Route, parse
from berth.cluster.handlers.watch import serve_watch
from berth.cluster.limits import Limits
from berth.cluster.options import WriteOptions, warning_header
from berth.cluster.params import query_bool, query_int64
from berth.cluster.rbac import ADMIN, Authorizer, User, request_attributes
from berth.cluster.resources import BINDINGS, EVENTS, NEW_EVENTS, PODS, ResourceType
from berth.cluster.selectors import combine, parse_field_selector, parse_label_selector
from berth.cluster.store import Change, Store
from berth.cluster.tables import table, wants_table
from berth.cluster.webhooks import KEY as WEBHOOK_CONFIGURATIONS
from berth.cluster.webhooks import MutatingWebhooks, creates_only_warnings
from berth.safeload import InputError, YamlLimits, load_all, nesting_depth_exceeds

JSON = dict[str, Any]
log = logging.getLogger("berth.cluster")

_JSON = "application/json"
# Upstream answers a delete with the object, not a Status, for storage classes and CSINodes
# (ReturnDeletedObject) and for PVs and PVCs (they live on behind their protection finalizers).
RETURN_DELETED = frozenset(
    {
        "persistentvolumes",
        "persistentvolumeclaims",
        "storageclasses.storage.k8s.io",
        "csinodes.storage.k8s.io",
    }
)
_HEALTH = ("/healthz", "/livez", "/readyz")


@dataclass
class ServerSettings:
    """What the dispatcher needs to know about the server it runs in."""

    token: str | None
    limits: Limits
    bookmark_interval: float
    server_address: str
    # bearer tokens of other users than the admin (whose token is `token`)
    token_users: dict[str, User] = field(default_factory=dict)


def _media_type(request: web.Request) -> str:
    """The request's Content-Type without its parameters (`; charset=utf-8`)."""
    return request.headers.get("Content-Type", "").split(";")[0].strip()


def _json(body: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=_JSON)


def _raw(body: bytes, *, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=_JSON)


def _expired(err: ApiError) -> web.Response:
    """A watch from a compacted resourceVersion: HTTP 200 and one ERROR event, as upstream."""
    return _raw(b'{"type":"ERROR","object":' + err.body() + b"}\n")


def error_response(err: ApiError) -> web.Response:
    if isinstance(err, errors.NoRoute):
        return web.Response(text="404 page not found\n", status=404)
    retry = (err.details or {}).get("retryAfterSeconds")
    headers = {"Retry-After": str(retry)} if retry else None
    return web.Response(body=err.body(), status=err.code, content_type=_JSON, headers=headers)


def _is_watch(request: web.Request) -> bool:
    return request.method == "GET" and query_bool(request.query, "watch")


def _verb(method: str, route: Route, query: Any) -> str:
    item = bool(route.name)
    if method == "GET":
        if not item and query_bool(query, "watch"):
            return "watch"
        return "get" if item else "list"
    if method == "POST":
        return "create"
    if method == "PUT" and item:
        return "update"
    if method == "PATCH" and item:
        return "patch"
    if method == "DELETE":
        return "delete" if item else "deletecollection"
    raise errors.method_not_allowed(method)


class RestHandler:
    """The aiohttp handler of every Kubernetes API path."""

    def __init__(
        self,
        *,
        api: Api,
        store: Store,
        faults: Faults,
        settings: ServerSettings,
        authorizer: Authorizer | None = None,
        webhooks: MutatingWebhooks | None = None,
    ) -> None:
        self.api = api
        self.webhooks = webhooks
        self.store = store
        self.faults = faults
        self.settings = settings
        self.authorizer = authorizer
        self.inflight = 0

    def authenticate(self, request: web.Request) -> User:
        """The user of a request's bearer token; raises 401.

        The admin token (or, on a cluster without one, no token) is the admin. With
        authorization on, an unknown token is refused even on a cluster without an admin token,
        so a client that lost its token cannot pass unnoticed as the admin."""
        auth = request.headers.get("Authorization", "")
        users = self.settings.token_users
        if users and auth.startswith("Bearer "):
            user = users.get(auth[len("Bearer ") :])
            if user is not None:
                return user
        token = self.settings.token
        if token is None:
            if self.authorizer is not None and auth:
                raise errors.unauthorized()
            return ADMIN
        if auth != f"Bearer {token}":
            raise errors.unauthorized()
        return ADMIN

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Serve one request: watches and health as they come, anything else counted against
        the requests in flight (a body is read within the request timeout, see `_body`)."""
        if request.path in _HEALTH or _is_watch(request):
            return await self._serve(request)
        limits = self.settings.limits
        if self.inflight >= limits.max_requests_inflight:
            return error_response(errors.too_many_inflight(limits.max_requests_inflight))
        self.inflight += 1
        try:
            return await self._serve(request)
        finally:
            self.inflight -= 1

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        try:
            user = self.authenticate(request)
            if self.authorizer is not None:
                attributes = request_attributes(
                    user=user, method=request.method, path=request.path, query=request.query
                )
                self.authorizer.check(attributes)
                # for checks made while writing (a ResourceClaim's binding permission)
                dra.REQUEST.set((self.authorizer, attributes))
            path = request.path
            if path in _HEALTH:
                return web.Response(text="ok")
            if path.startswith(("/openapi/v3", "/openapi/v2")):
                return self._openapi(request, path)
            target = parse(path)
            if isinstance(target, Discovery):
                if request.method != "GET":
                    raise errors.method_not_allowed(request.method)
                accept = request.headers.get("Accept", "")
                if target.kind in ("api", "apis") and discovery.wants_aggregated(accept):
                    body = orjson.dumps(discovery.aggregated(core=target.kind == "api"))
                    headers = {"Content-Type": discovery.AGGREGATED, "Vary": "Accept"}
                    return web.Response(body=body, headers=headers)
                return self._discovery(target, path)
            return await self._resource(request, target, user)
        except ApiError as err:
            return error_response(err)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # never a stack trace on the wire
            log.exception("internal error serving %s %s", request.method, request.path)
            return error_response(errors.internal(f"internal error: {type(exc).__name__}"))

    def _openapi(self, request: web.Request, path: str) -> web.Response:
        if request.method != "GET":
            raise errors.method_not_allowed(request.method)
        if path.rstrip("/") == "/openapi/v2":
            accept = request.headers.get("Accept", "")
            if any(t in accept for t in openapi.V2_PROTOBUF_ACCEPT):
                return web.Response(
                    body=openapi.v2_protobuf(),
                    headers={"Content-Type": openapi.V2_PROTOBUF, "Vary": "Accept"},
                )
            return _raw(openapi.v2_json())
        rest = path[len("/openapi/v3") :].strip("/")
        doc = openapi.v3_root() if not rest else openapi.v3_document(rest)
        if doc is None:
            raise errors.page_not_found(path)
        return _raw(doc)

    def _discovery(self, target: Discovery, path: str) -> web.Response:
        doc: JSON | None
        if target.kind == "version":
            doc = discovery.version()
        elif target.kind == "api":
            doc = discovery.api_versions(server_address=self.settings.server_address)
        elif target.kind == "apis":
            doc = discovery.api_group_list()
        elif target.kind == "group":
            doc = discovery.api_group(target.group)
        else:
            doc = discovery.resource_list(target.group, target.version)
        if doc is None:
            raise errors.NoRoute(path)
        return _json(doc)

    async def _body(
        self, request: web.Request, verb: str = "", rt: ResourceType | None = None
    ) -> Any:
        """The decoded body (None when empty), within the body size and depth limits. A
        create's or update's (`verb`) or a patch's Content-Type for `rt` is checked first, as
        kube-apiserver refuses a type it cannot decode before it reads the body."""
        media = _media_type(request)
        if verb == "patch" and rt is not None:
            patch_kind(rt, media)  # as the handler reads it: not lowercased
        media = media.lower()  # mime.ParseMediaType, for every other body
        if verb in ("create", "update") and media:  # none at all is read as JSON
            accepted = CUSTOM_BODY_TYPES if rt is not None and rt.custom else BODY_TYPES
            if media not in accepted:
                raise errors.unsupported_media_type(accepted)
        limits = self.settings.limits
        limit = limits.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise errors.too_large(limit)
        data = bytearray()
        try:
            # The only wait of a non-watch request: the store is touched synchronously after
            # it, so a request cut here has written nothing.
            async with asyncio.timeout(limits.request_timeout):
                async for chunk in request.content.iter_chunked(65536):
                    data += chunk
                    if len(data) > limit:
                        raise errors.too_large(limit)
        except TimeoutError:
            raise ApiError(  # upstream's timeout filter: 504 with a Status
                code=504,
                reason="Timeout",
                message="Timeout: request did not complete within the allowed duration "
                f"({limits.request_timeout:g}s)",
            ) from None
        if not data:
            return None
        raw = bytes(data)
        if media == protobuf.CONTENT_TYPE:  # client-go's typed clients
            body = protobuf.decode(raw)
            if nesting_depth_exceeds(body, limits.max_depth):
                raise errors.too_deep(what="the request body", limit=limits.max_depth)
            return body
        if media in ("application/apply-patch+yaml", "application/yaml"):
            try:  # YAML (a superset of JSON), within the same depth limit and alias bounds
                docs = load_all(raw, limits=YamlLimits(max_depth=limits.max_depth))
            except InputError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from None
            if media == "application/yaml":  # a create or update: the first document, as Go
                return docs[0] if docs else None
            if len(docs) > 1:
                raise errors.bad_request(
                    f"error decoding YAML: expected one document, found {len(docs)}"
                )
            return docs[0] if docs else None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):
                raise errors.too_deep(what="the request body", limit=limits.max_depth) from exc
            raise errors.bad_request(
                f"the request body is not valid JSON: {exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}"
            ) from exc
        if nesting_depth_exceeds(body, limits.max_depth, encoded=raw):
            raise errors.too_deep(what="the request body", limit=limits.max_depth)
        return body

    async def _resource(
        self, request: web.Request, route: Route, user: User = ADMIN
    ) -> web.StreamResponse:
        query = request.query
        rt = route.rt
        if not route.served:  # pods/log, exec, ...: the object's 404 if it is missing
            self.api.get(rt, namespace=route.namespace or "", name=route.name)
            raise errors.page_not_found(request.path)
        verb = _verb(request.method, route, query)
        if rt is BINDINGS and not (verb == "create" and route.namespace and not route.name):
            raise errors.method_not_allowed(request.method)
        if route.subresource in ("binding", "eviction") and verb != "create":
            raise errors.method_not_allowed(request.method)
        if route.subresource and verb not in ("get", "update", "patch", "create"):
            raise errors.method_not_allowed(request.method)
        if verb == "create" and route.name and route.subresource not in ("binding", "eviction"):
            raise errors.method_not_allowed(request.method)
        if verb == "create" and rt.namespaced and route.namespace is None:
            raise errors.method_not_allowed(request.method)

        latency, rule = self.faults.pick(
            verb=verb, resource=rt.plural, subresource=route.subresource
        )
        if latency > 0:
            await asyncio.sleep(latency)
        if rule is not None:
            raise ApiError(
                code=rule.status,
                reason=rule.reason,
                message=f"injected fault: {verb} {rt.plural} failed with {rule.status}",
            )

        ns = route.namespace if rt.namespaced else ""
        name = route.name
        accept = request.headers.get("Accept", "")
        as_table = wants_table(accept)
        # events.k8s.io/v1 is a view of the core/v1 event storage.
        view = rt is NEW_EVENTS
        srt = EVENTS if view else rt

        def out(obj: JSON) -> web.Response:
            return _json(events.to_new(obj) if view else obj)

        def out_change(change: Change, *, status: int = 200) -> web.Response:
            if view:
                return _json(events.to_new(change.obj), status=status)
            return _raw(change.obj_bytes, status=status)

        if verb in ("list", "watch", "deletecollection"):
            predicate = combine(
                parse_label_selector(query.get("labelSelector")),
                parse_field_selector(
                    events.core_selector(query.get("fieldSelector"))
                    if view
                    else query.get("fieldSelector"),
                    supported=srt.field_labels,
                    kind=rt.kind,
                ),
            )
            if verb == "watch":
                return await self._watch(request, route, predicate, as_table, view=view)
            if verb == "deletecollection":
                opts = options.parse(
                    query, verb=verb, user_agent=request.headers.get("User-Agent", "")
                )
                body = await self._body(request)
                items = self.api.delete_collection(
                    srt,
                    namespace=route.namespace,
                    predicate=predicate,
                    options=body if isinstance(body, dict) else None,
                    opts=opts,
                )
            else:
                items = self.api.list_objects(srt, namespace=route.namespace, predicate=predicate)
            if view:
                items = [events.to_new(i) for i in items]
            return self._list_response(rt, items, as_table=as_table and verb == "list", query=query)

        if route.subresource == "scale":
            return await self._scale(request, route, verb)

        if verb == "get":
            obj = self.api.get(srt, namespace=ns or "", name=name)
            if view:
                obj = events.to_new(obj)
            if as_table:
                return _json(
                    table(
                        rt,
                        [obj],
                        resource_version=obj["metadata"]["resourceVersion"],
                        include_object=query.get("includeObject", "Metadata"),
                    )
                )
            return _json(obj)

        opts = options.parse(query, verb=verb, user_agent=request.headers.get("User-Agent", ""))
        body = await self._body(request, verb, rt)
        if (
            verb == "create"
            and self.webhooks is not None
            and rt is not BINDINGS
            and route.subresource not in ("binding", "eviction")
        ):  # mutating admission, before anything is checked
            body = await self.webhooks.admit_create(
                EVENTS if view else rt,
                namespace=route.namespace,
                body=body,
                user=user,
                dry_run="All" in query.getall("dryRun", ()),
                field_manager=query.get("fieldManager", ""),
            )
        response = self._write(
            request, route, verb, body, opts, view=view, out=out, out_change=out_change
        )
        for warning in opts.warnings:
            response.headers.add("Warning", warning_header(warning))
        return response

    def _write(
        self,
        request: web.Request,
        route: Route,
        verb: str,
        body: Any,
        opts: WriteOptions,
        *,
        view: bool,
        out: Callable[[JSON], web.Response],
        out_change: Callable[..., web.Response],
    ) -> web.Response:
        """A create, update, patch or delete, answered as upstream answers it."""
        rt, name = route.rt, route.name
        ns = route.namespace if rt.namespaced else ""
        srt = EVENTS if view else rt
        # The real API server decodes a body into typed structs first and answers a value of the
        # wrong shape with 400 BadRequest; a shape Berth's validation does not check field by
        # field raises below and is answered the same way, never as a 500.
        try:
            if view:
                opts = dataclasses.replace(opts, events_api=True)
                if isinstance(body, dict) and verb in ("create", "update"):
                    body = events.to_core(body)
            if verb == "create":
                if rt is BINDINGS:
                    bname = ((body or {}).get("metadata") or {}).get("name", "")
                    self.api.bind(namespace=ns or "", name=bname, body=body, opts=opts)
                    return _json(errors.success(code=201), status=201)
                if route.subresource == "binding":
                    self.api.bind(namespace=ns or "", name=name, body=body, opts=opts)
                    return _json(errors.success(code=201), status=201)
                if route.subresource == "eviction":
                    self.api.evict(namespace=ns or "", name=name, body=body, opts=opts)
                    return _json(errors.success(code=201), status=201)
                change = self.api.create(srt, namespace=route.namespace, body=body, opts=opts)
                answer = out_change(change, status=201)
                if srt.key == WEBHOOK_CONFIGURATIONS:
                    for text in creates_only_warnings(change.obj):
                        answer.headers.add("Warning", f'299 - "{text}"')
                return answer
            if verb == "update":
                change = self.api.update(
                    srt,
                    namespace=ns or "",
                    name=name,
                    body=body,
                    subresource=route.subresource,
                    opts=opts,
                )
                return out_change(change)
            if verb == "patch":
                ctype = _media_type(request)
                change = self.api.patch(
                    srt,
                    namespace=ns or "",
                    name=name,
                    content_type=ctype,
                    body=body,
                    subresource=route.subresource,
                    view=(events.to_new, lambda new, _old: events.to_core(new)) if view else None,
                    opts=opts,
                )
                created = change.type == "ADDED"  # an apply that created the object
                return out_change(change, status=201 if created else 200)
            # delete
            change = self.api.delete(
                srt,
                namespace=ns or "",
                name=name,
                options=body if isinstance(body, dict) else None,
                opts=opts,
            )
            if rt is PODS or rt.key in RETURN_DELETED or change.type == "MODIFIED":
                return out(change.obj)  # (MODIFIED: kept until its finalizers are removed)
            meta = change.obj["metadata"]
            details = {"name": name, "kind": rt.plural, "uid": meta["uid"]}
            if rt.group:
                details["group"] = rt.group
            return _json(errors.success(details=details))
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            log.debug("undecodable %s %s body", verb, rt.plural, exc_info=True)
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                "a field has a value of the wrong type"
            ) from exc

    async def _scale(self, request: web.Request, route: Route, verb: str) -> web.Response:
        """GET, PUT and PATCH of a workload's autoscaling/v1 Scale."""
        rt, ns, name = route.rt, route.namespace or "", route.name
        if verb == "get":
            return _json(self.api.get_scale(rt, namespace=ns, name=name))
        opts = options.parse(
            request.query, verb=verb, user_agent=request.headers.get("User-Agent", "")
        )
        body = await self._body(request, verb, rt)
        if verb == "update":
            return _json(self.api.update_scale(rt, namespace=ns, name=name, body=body, opts=opts))
        ctype = _media_type(request)
        change = self.api.patch(
            rt,
            namespace=ns,
            name=name,
            content_type=ctype,
            body=body,
            subresource="scale",
            view=self.api.scale_view(rt),
            opts=opts,
        )
        return _json(self.api.scale_view(rt)[0](change.obj))

    def _list_response(
        self, rt: Any, items: list[JSON], *, as_table: bool, query: Any
    ) -> web.Response:
        rv = str(self.store.rv)
        if as_table:
            return _json(
                table(
                    rt,
                    items,
                    resource_version=rv,
                    include_object=query.get("includeObject", "Metadata"),
                    listing=True,
                )
            )
        return _json(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": rv},
                "items": items,
            }
        )

    async def _watch(
        self, request: web.Request, route: Route, predicate: Any, as_table: bool, *, view: bool
    ) -> web.StreamResponse:
        query = request.query
        raw_rv = query.get("resourceVersion", "")
        send_initial = query_bool(query, "sendInitialEvents")
        since: int | None
        if raw_rv in ("", "0") or send_initial:
            since = None
        else:
            try:
                since = int(raw_rv)
            except ValueError as exc:
                raise errors.bad_request(f"invalid resource version: {raw_rv}") from exc
        if self.faults.take_expired_watch():
            return _expired(errors.gone(f"too old resource version: {raw_rv or 0} (forced)"))
        # upstream: timeoutSeconds is an int64; none (or 0) means a random time between the
        # minimum request timeout and twice it, so every watch ends and is renewed.
        timeout = float(query_int64(query, "timeoutSeconds") or 0)
        if timeout == 0:
            timeout = self.settings.limits.min_request_timeout * (1 + random.random())
        try:
            return await serve_watch(
                request,
                store=self.store,
                rt=route.rt,
                storage_rt=EVENTS if view else route.rt,
                transform=events.to_new if view else None,
                namespace=route.namespace,
                predicate=predicate,
                since=since,
                timeout=timeout,
                bookmarks=query_bool(query, "allowWatchBookmarks"),
                bookmark_interval=self.settings.bookmark_interval,
                send_initial_end=send_initial,
                as_table=query.get("includeObject", "Metadata") if as_table else None,
            )
        except ApiError as err:
            if err.code != 410:
                raise
            return _expired(err)
