"""Lease-based leader election: several replicas run, one schedules.

The election loop is the official client's (`kubernetes.aio.leaderelection` with a LeaseLock on
coordination.k8s.io/v1, optimistic concurrency through the Lease's resourceVersion). Berth adds
what it lacks: an `is_leader` flag the scheduling loop checks before every decision, and
`release()` on shutdown (upstream's ReleaseOnCancel), so a successor does not wait a full lease.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kubernetes.aio.leaderelection import electionconfig, leaderelection
from kubernetes.aio.leaderelection.resourcelock.leaselock import LeaseLock

from berth.kube.client import Connection, read_json

if TYPE_CHECKING:
    from berth.config.model import LeaderElection

log = logging.getLogger("berth.leader")


class _LeaseLock(LeaseLock):
    """The client's LeaseLock, with `create` fixed and a timeout on every call.

    kubernetes 37.0.2's aio LeaseLock.create passes `pretty=True` to a pydantic-validated method
    that only accepts strings, so the first replica can never create the Lease (a
    ValidationError escapes the election loop). Its calls also carry no timeout (the client's
    default is 5 minutes), so a hung API server would let a leader keep scheduling long after
    its lease ran out; here each call gives up well within renewDeadline.
    """

    call_timeout: float = 5.0

    async def get(self, name: str, namespace: str) -> Any:
        from kubernetes.aio.client.exceptions import ApiException

        try:
            lease = await self.api_instance.read_namespaced_lease(
                name, namespace, _request_timeout=self.call_timeout
            )
        except ApiException as exc:
            return False, exc
        except (TimeoutError, OSError) as exc:
            return False, ApiException(status=0, reason=repr(exc))
        self.lease_reference = lease
        return True, self.election_record(lease)

    async def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        from kubernetes.aio.client.exceptions import ApiException

        try:
            assert self.lease_reference is not None
            self.lease_reference.spec = self.update_lease(updated_record, self.lease_reference.spec)
            await self.api_instance.replace_namespaced_lease(
                name=name,
                namespace=namespace,
                body=self.lease_reference,
                _request_timeout=self.call_timeout,
            )
            return True
        except (ApiException, TimeoutError, OSError) as exc:
            log.warning("could not renew the lease", extra={"error": repr(exc)})
            return False

    async def create(self, name: str, namespace: str, election_record: Any) -> bool:
        from kubernetes.aio import client
        from kubernetes.aio.client.exceptions import ApiException

        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=name),
            spec=self.update_lease(election_record),
        )
        try:
            await self.api_instance.create_namespaced_lease(
                namespace, body, _request_timeout=self.call_timeout
            )
            return True
        except ApiException as exc:
            log.warning("could not create the lease", extra={"status": exc.status})
            return False


class LeaderElector:
    def __init__(
        self,
        *,
        connection: Connection,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
    ) -> None:
        self.connection = connection
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False

    @classmethod
    def configured(
        cls, connection: Connection, config: LeaderElection, identity: str
    ) -> LeaderElector:
        """An elector on the Lease a configuration's leaderElection names, with its timings."""
        return cls(
            connection=connection,
            namespace=config.resourceNamespace,
            name=config.resourceName,
            identity=identity,
            lease_duration=config.leaseDuration,
            renew_deadline=config.renewDeadline,
            retry_period=config.retryPeriod,
        )

    async def run(
        self,
        *,
        on_started: Callable[[], Awaitable[None]],
        on_stopped: Callable[[], Awaitable[None]],
    ) -> None:
        """Campaign; run `on_started` while leading; call `on_stopped` when the lease is lost."""
        lock = _LeaseLock(self.name, self.namespace, self.identity, self.connection.api)
        lock.call_timeout = max(1.0, self.renew_deadline / 2)

        async def started() -> None:
            self.is_leader = True
            log.info("became leader", extra={"lease": f"{self.namespace}/{self.name}"})
            try:
                await on_started()
            finally:
                self.is_leader = False

        async def stopped() -> None:
            self.is_leader = False
            log.warning("leader lease lost", extra={"lease": f"{self.namespace}/{self.name}"})
            await on_stopped()

        config = electionconfig.Config(
            lock,
            # Lease.spec.leaseDurationSeconds is an integer; the client stores it via int(str(x)).
            lease_duration=math.ceil(self.lease_duration),
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
            onstarted_leading=started,
            onstopped_leading=stopped,
        )
        await leaderelection.LeaderElection(config).run()

    async def release(self) -> None:
        """Give the lease up if we hold it (holder cleared, duration 1 s)."""
        core = self.connection.api
        from kubernetes.aio.client import CoordinationV1Api

        api = CoordinationV1Api(core)
        try:
            response = await api.read_namespaced_lease_without_preload_content(
                name=self.name, namespace=self.namespace, _request_timeout=5
            )
            lease = await read_json(response)
            if response.status != 200:
                return
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            spec.update(holderIdentity=None, leaseDurationSeconds=1, renewTime=stamp)
            lease["spec"] = spec
            response = await api.replace_namespaced_lease_without_preload_content(
                name=self.name, namespace=self.namespace, body=lease, _request_timeout=5
            )
            await read_json(response)
            log.info("released leader lease", extra={"status": response.status})
        except Exception as exc:  # shutting down anyway; the lease will expire
            log.warning("could not release lease", extra={"error": repr(exc)})


async def read_lease(
    *, connection: Connection, namespace: str, name: str, timeout: float
) -> tuple[bool, Any]:
    """The Lease `namespace/name` as the official client's LeaseLock reads it: `(True,
    LeaderElectionRecord)` (holder_identity, lease_duration, acquire_time, renew_time, strings
    or None), or `(False, ApiException)` (status 404 when there is none, 0 on a network error
    or timeout). For observers of an election, such as `berth webhook`."""
    lock = _LeaseLock(name, namespace, "", connection.api)
    lock.call_timeout = timeout
    found: tuple[bool, Any] = await lock.get(name, namespace)
    return found
