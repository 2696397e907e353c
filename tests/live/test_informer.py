"""The informer on its own: relist semantics and resources the server does not serve."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes.aio.client import CustomObjectsApi

from berth.cluster import EmbeddedCluster
from berth.kube.client import connect, raw_body, read_json
from berth.kube.informer import Informer
from berth.state.store import object_key


class Recorder:
    """An informer handler that keeps the latest objects and logs what it is told."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.objects[object_key(obj)] = obj
        self.log.append(("add", obj["metadata"]["name"]))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.objects[object_key(new)] = new
        self.log.append(("update", new["metadata"]["name"]))

    def on_delete(self, obj: dict[str, Any]) -> None:
        self.objects.pop(object_key(obj), None)
        self.log.append(("delete", obj["metadata"]["name"]))


def test_missing_resource_marks_informer_synced_and_not_served(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        api = CustomObjectsApi(conn.api)

        async def call(**kwargs: Any) -> Any:
            return await api.list_cluster_custom_object_without_preload_content(
                group="nope.example.com", version="v1", plural="things", **kwargs
            )

        informer = Informer(name="things", call=call, handler=Recorder(), optional=True)
        task = asyncio.create_task(informer.run())
        await asyncio.wait_for(informer.synced.wait(), timeout=5)
        assert informer.served is False
        task.cancel()
        await conn.close()

    asyncio.run(main())


def test_relist_turns_vanished_objects_into_deletes(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        handler = Recorder()
        informer = Informer(
            name="configmaps",
            call=conn.core.list_namespaced_config_map_without_preload_content,
            handler=handler,
            # the real controller-manager publishes kube-root-ca.crt into every namespace
            extra={"namespace": "default", "label_selector": "test=relist"},
        )
        for name in ("a", "b"):
            r = await conn.core.create_namespaced_config_map_without_preload_content(
                namespace="default",
                body=raw_body(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": name, "labels": {"test": "relist"}},
                    }
                ),
            )
            await read_json(r)
        await informer._list()
        assert sorted(handler.objects) == ["default/a", "default/b"]
        r = await conn.core.delete_namespaced_config_map_without_preload_content(
            name="a", namespace="default"
        )
        await read_json(r)
        await informer._list()  # as after a 410: "a" vanished while we were not watching
        assert ("delete", "a") in handler.log
        assert sorted(handler.objects) == ["default/b"]
        await conn.close()

    asyncio.run(main())
