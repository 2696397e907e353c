"""`berth simulate` with storage in the dump (`kubectl get nodes,pods,pv,pvc,storageclasses -A`):
local PVs tie StatefulSet pods to nodes, a claim chosen once is taken, zonal PVs, missing claims."""

from typing import Any

from tests.builders import node, pod
from tests.plugins.volume_builders import pod_with_claims, pv, pvc, storage_class
from tests.test_simulate import as_list, lines, run

HOST = "kubernetes.io/hostname"


def on(host: str) -> list[dict[str, Any]]:
    return [{"matchExpressions": [{"key": HOST, "operator": "In", "values": [host]}]}]


def test_local_volumes_and_statefulset_claims() -> None:
    dump = as_list(
        node("n1"),
        node("n2"),
        node("n3"),
        storage_class("local", provisioner="kubernetes.io/no-provisioner"),
        pv("local-n2", cls="local", affinity=on("n2")),
        pv("local-n3", cls="local", affinity=on("n3")),
        pvc("data-db-0", cls="local"),
        pvc("data-db-1", cls="local"),
        pvc("data-db-2", cls="local"),
        pod_with_claims("data-db-0", name="db-0"),
        pod_with_claims("data-db-1", name="db-1"),
        pod_with_claims("data-db-2", name="db-2"),
        pod_with_claims("missing", name="lost"),
        pod("plain"),
    )
    result = run(["simulate", "-", "-o", "json", "--seed", "3"], stdin=dump)
    assert result.exit_code == 0, result.output
    out = {d["pod"]: d for d in lines(result.output)}
    placed = {out["default/db-0"]["node"], out["default/db-1"]["node"]}
    assert placed == {"n2", "n3"}  # one local PV each; the second pod cannot reuse the first's
    assert out["default/db-2"]["node"] is None
    assert out["default/db-2"]["reasons"]["n1"] == [
        "node(s) didn't find available persistent volumes to bind"
    ]
    assert out["default/lost"]["node"] is None
    assert 'persistentvolumeclaim "missing" not found' in out["default/lost"]["message"]
    assert out["default/plain"]["node"] is not None
