"""A simulated CSI external provisioner beside the real PV controller: a claim the controller
handed to one of our provisioner names (annotation `volume.kubernetes.io/storage-provisioner`,
set once a WaitForFirstConsumer claim has its selected node) gets a PV pre-bound to it and pinned
to that node's zone, as external-provisioner does; the real PV controller then binds the two.
It never deletes or resizes volumes.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.aio.client import StorageV1Api

from berth.cluster.storage import ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER, provisioned_volume
from berth.kube.client import Connection, read_json, status_message
from berth.kube.informer import Informer, ObjectCache
from berth.upstream.controller import InformerController, QueuedKeys

log = logging.getLogger("berth.upstream.provisioner")
Obj = dict[str, Any]


class SimulatedProvisioner(InformerController):
    def __init__(self, *, connection: Connection, names: tuple[str, ...]) -> None:
        self.connection = connection
        self.names = set(names)
        keys = QueuedKeys()
        self.classes = ObjectCache()
        self.nodes = ObjectCache()
        core = connection.core
        self.claims = Informer(
            name="persistentvolumeclaims",
            call=core.list_persistent_volume_claim_for_all_namespaces_without_preload_content,
            handler=keys,
        )
        informers = [
            self.claims,
            Informer(
                name="storageclasses",
                call=StorageV1Api(connection.api).list_storage_class_without_preload_content,
                handler=self.classes,
            ),
            Informer(name="nodes", call=core.list_node_without_preload_content, handler=self.nodes),
        ]
        super().__init__(
            informers=informers,
            watched=self.claims,
            keys=keys,
            workers=1,
            log=log,
            what="provisioning",
            retry_after=1.0,
        )
        self.provisioned = 0

    async def handle(self, claim: Obj) -> None:
        meta = claim["metadata"]
        annotations = meta.get("annotations") or {}
        if (
            annotations.get(ANN_STORAGE_PROVISIONER) not in self.names
            or meta.get("deletionTimestamp")
            or (claim.get("spec") or {}).get("volumeName")
        ):
            return
        sc = self.classes.objects.get((claim.get("spec") or {}).get("storageClassName") or "")
        if sc is None:
            raise RuntimeError("its StorageClass is not known yet")
        selected = annotations.get(ANN_SELECTED_NODE)
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not selected:
            return
        node = self.nodes.objects.get(selected) if selected else None
        body = provisioned_volume(claim, sc, selected=selected, node=node)
        response = await self.connection.request("POST", "/api/v1/persistentvolumes", body)
        answer = await read_json(response)
        if response.status == 201:
            self.provisioned += 1
        elif response.status != 409:  # 409: provisioned already
            raise RuntimeError(f"create PV: {response.status} {status_message(answer)}")
