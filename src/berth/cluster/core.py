"""The cluster itself, without its network listener: configuration, the store and its seed
objects (namespaces, priority classes, nodes and their leases), the simulated kubelet, the
disruption and ResourceClaim controllers, persistence and the aiohttp application that serves
them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from berth.cluster import wiretypes
from berth.cluster.api import Api
from berth.cluster.controllers import make_controllers
from berth.cluster.controllers.base import Controller
from berth.cluster.controllers.garbagecollector import GarbageCollector
from berth.cluster.errors import ApiError
from berth.cluster.faults import Faults
from berth.cluster.handlers.admin import add_admin_routes
from berth.cluster.handlers.rest import RestHandler, ServerSettings
from berth.cluster.kubelet import Kubelet
from berth.cluster.limits import Limits
from berth.cluster.nodes import NodeShape, make_node, make_node_lease
from berth.cluster.pdb import DisruptionController
from berth.cluster.persistence import SqlitePersistence
from berth.cluster.rbac import Authorizer, User, user_for
from berth.cluster.resourceclaims import ResourceClaimController
from berth.cluster.resources import (
    BY_KEY,
    BY_PATH,
    LEASES,
    NAMESPACES,
    NODES,
    PRIORITY_CLASSES,
    SERVICES,
    STORED,
)
from berth.cluster.storage import VolumeController
from berth.cluster.store import Store
from berth.cluster.webhooks import MutatingWebhooks

JSON = dict[str, Any]
log = logging.getLogger("berth.cluster")

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SYSTEM_PRIORITY_CLASSES = (
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another "
        "node if necessary.",
    ),
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
)

# The API server's own Service, as kube-apiserver keeps it in `default`.
KUBERNETES_SERVICE: JSON = {
    "metadata": {
        "name": "kubernetes",
        "labels": {"component": "apiserver", "provider": "kubernetes"},
    },
    "spec": {
        "clusterIP": "10.96.0.1",
        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
        "sessionAffinity": "None",
        "type": "ClusterIP",
    },
}


@dataclass
class ClusterConfig:
    """Everything `berth cluster` and `EmbeddedCluster` can be told."""

    host: str = "127.0.0.1"
    port: int = 0
    nodes: int = 3
    zones: int = 1
    node_cpu: str = "32"
    node_memory: str = "128Gi"
    node_pods: int = 110
    kubeconfig_out: Path | None = None
    data_dir: Path | None = None
    tls: bool = False
    token: str | None = None
    kubelet: bool = True
    kubelet_delay: float = 0.0
    kubelet_interval: float = 0.05
    volume_controller: bool = True
    # the workload controllers, the garbage collector and the EndpointSlice controller
    controllers: bool = True
    # how long the simulated kubelet runs a Job's pod before it succeeds
    kubelet_job_seconds: float = 1.0
    limits: Limits = field(default_factory=Limits)
    admin: bool = False
    bookmark_interval: float = 5.0
    # With a data directory: 0 commits every write before it is acknowledged; more buffers
    # writes for that many seconds (a crash may lose them).
    persist_interval: float = 0.0
    faults: Faults = field(default_factory=Faults)
    # RBAC: None = no authorization (any authenticated request may do anything); a list of
    # Role/ClusterRole/RoleBinding/ClusterRoleBinding documents (possibly empty) = enforce RBAC
    # for every user except the admin (the holder of `token`; with RBAC on and no token given,
    # one is generated, so a request without a token is never the admin).
    rbac: list[JSON] | None = None
    # extra bearer tokens and their users: TOKEN -> "NAME[,GROUP...]" or a User
    token_users: dict[str, str | User] = field(default_factory=dict)


class ClusterCore:
    """The store, controllers and HTTP application of one embedded cluster."""

    def __init__(self, *, config: ClusterConfig) -> None:
        if config.rbac is not None and config.token is None:
            config.token = secrets.token_urlsafe(32)
        self.config = config
        self.faults = config.faults
        self.persistence: SqlitePersistence | None = None
        if config.data_dir is not None:
            self.persistence = SqlitePersistence(
                data_dir=config.data_dir, sync=config.persist_interval <= 0
            )
        self.store = Store(
            limits=config.limits,
            writer=self.persistence.write if self.persistence else None,
        )
        if self.persistence is not None:
            self.store.reserve = self.persistence.reserve
        self.disruption = DisruptionController(store=self.store)
        self.api = Api(store=self.store, disruption=self.disruption)
        self.claims = ResourceClaimController(api=self.api, interval=config.kubelet_interval)
        self.webhooks = MutatingWebhooks(store=self.store, limits=config.limits)
        self.kubelet: Kubelet | None = None
        if config.kubelet:
            self.kubelet = Kubelet(
                store=self.store,
                delay=config.kubelet_delay,
                interval=config.kubelet_interval,
                job_seconds=config.kubelet_job_seconds,
            )
        self.controllers: list[Controller | GarbageCollector] = []
        if config.controllers:
            self.controllers = make_controllers(self.api)
        self.volumes: VolumeController | None = None
        if config.volume_controller:
            self.volumes = VolumeController(store=self.store, interval=config.kubelet_interval)
        self.authorizer: Authorizer | None = None
        if config.rbac is not None:
            self.authorizer = Authorizer(store=self.store)
        token_users = {
            t: user_for(u) if isinstance(u, str) else u for t, u in config.token_users.items()
        }
        self.settings = ServerSettings(
            token=config.token,
            token_users=token_users,
            limits=config.limits,
            bookmark_interval=config.bookmark_interval,
            server_address=f"{config.host}:{config.port}",
        )
        self._tasks: list[asyncio.Task[None]] = []
        if self.persistence is not None and not self.persistence.is_empty():
            self._restore()
        else:
            self._seed()
        if config.rbac:
            self.apply_rbac(config.rbac)

    # --- state -------------------------------------------------------------------------------

    def _restore(self) -> None:
        """Load the data directory. A row that cannot be served (undecodable, or refused by
        the limits, as a store written by an older version may hold) is skipped and named in
        the log, never the reason the cluster does not start."""
        assert self.persistence is not None
        for key, obj, raw in self.persistence.load():
            rt = BY_KEY.get(key)
            if rt is None or rt not in STORED:
                continue
            try:
                if obj is None or not isinstance(obj.get("metadata"), dict):
                    raise ValueError("not a JSON object with metadata")
                wiretypes.check(api_version=rt.api_version, kind=rt.kind, obj=obj)
                self.store.load(rt, obj)
            except (ApiError, ValueError, TypeError, KeyError) as exc:
                log.warning(
                    "skipped a stored %s that cannot be served (%d bytes): %s",
                    key,
                    len(raw),
                    exc,
                )
        # Every version handed out before a crash is below the reserved bound: resume there, so
        # versions only grow, and a watch from any earlier version gets 410 Gone.
        rv = max(self.store.rv, self.persistence.rv, self.persistence.reserved)
        self.store.rv = self.store.compacted_rv = self.store.reserved_rv = rv

    def _seed(self) -> None:
        for ns in INITIAL_NAMESPACES:
            self.api.create(NAMESPACES, namespace=None, body={"metadata": {"name": ns}})
        for name, value, description in SYSTEM_PRIORITY_CLASSES:
            self.api.create(
                PRIORITY_CLASSES,
                namespace=None,
                body={"metadata": {"name": name}, "value": value, "description": description},
            )
        self.api.create(SERVICES, namespace="default", body=KUBERNETES_SERVICE)
        self.add_nodes(count=self.config.nodes)

    def add_nodes(self, *, count: int, start: int | None = None) -> list[JSON]:
        """Create `count` generated nodes (and their Leases); returns the stored nodes."""
        c = self.config
        shape = NodeShape(cpu=c.node_cpu, memory=c.node_memory, pods=c.node_pods)
        first = start if start is not None else self.store.count(NODES) + 1
        total = max(c.nodes, first + count - 1)
        out = []
        for i in range(first, first + count):
            node = make_node(index=i, total=total, zones=c.zones, shape=shape)
            created = self.api.create(NODES, namespace=None, body=node).obj
            self.api.create(LEASES, namespace="kube-node-lease", body=make_node_lease(node=created))
            out.append(created)
        return out

    def apply_rbac(self, documents: list[JSON]) -> None:
        """Create (or replace) Roles, ClusterRoles and their bindings in the store."""
        for doc in documents:
            group, _, version = str(doc.get("apiVersion", "")).partition("/")
            rt = next(
                (
                    r
                    for (g, v, _p), r in BY_PATH.items()
                    if (g, v) == (group, version) and r.kind == doc.get("kind")
                ),
                None,
            )
            if rt is None:
                raise ValueError(f"not an RBAC object: {doc.get('apiVersion')} {doc.get('kind')}")
            meta = doc.get("metadata") or {}
            namespace = str(meta.get("namespace") or "default") if rt.namespaced else ""
            body = {**doc, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
            if self.store.get(rt, namespace, str(meta.get("name", ""))) is None:
                self.api.create(rt, namespace=namespace or None, body=body)
            else:
                self.api.update(rt, namespace=namespace, name=str(meta["name"]), body=body)

    # --- lifecycle ---------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.limits.max_body_bytes + 1)
        if self.config.admin:
            add_admin_routes(app, faults=self.faults, store=self.store, token=self.config.token)
        handler = RestHandler(
            api=self.api,
            store=self.store,
            faults=self.faults,
            settings=self.settings,
            authorizer=self.authorizer,
            webhooks=self.webhooks,
        )

        async def serve(request: web.Request) -> web.StreamResponse:
            return await handler(request)

        app.router.add_route("*", "/{tail:.*}", serve)
        return app

    def start_background(self) -> None:
        """Start the kubelet, volume and disruption controllers and the persistence flusher."""
        loop = asyncio.get_running_loop()
        if self.kubelet is not None:
            self._tasks.append(loop.create_task(self.kubelet.run()))
        if self.volumes is not None:
            self._tasks.append(loop.create_task(self.volumes.run()))
        for controller in self.controllers:
            self._tasks.append(loop.create_task(controller.run(), name=controller.name))
        self._tasks.append(loop.create_task(self.disruption.run()))
        self._tasks.append(loop.create_task(self.claims.run()))
        if self.persistence is not None:
            self._tasks.append(loop.create_task(self._flush_loop()))

    async def _flush_loop(self) -> None:
        assert self.persistence is not None
        interval = self.config.persist_interval
        while True:
            await asyncio.sleep(interval if interval > 0 else 1.0)
            try:
                self.persistence.flush(rv=self.store.rv)
            except Exception:  # the writes stay buffered; the next pass retries
                log.exception("persisting to %s failed", self.persistence.path)

    async def stop_background(self) -> None:
        """Stop the controllers and commit every acknowledged write, whatever state the
        controllers ended in (a controller's failure is logged, never a reason to lose data)."""
        try:
            await self.webhooks.close()
            if self.store.close_watches():
                await asyncio.sleep(0.05)  # let each stream end its chunked body cleanly
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("cluster task %s had failed", task.get_name())
            self._tasks.clear()
        finally:
            if self.persistence is not None:
                self.persistence.close(rv=self.store.rv)
                self.persistence = None
