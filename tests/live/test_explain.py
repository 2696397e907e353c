"""`berth explain` on a live cluster (the embedded one and the real control plane) beside
`berth run`: pods are created one at a time, each decided on the state the one before left, so
the scheduler's own decision is what an explanation "as of now" must agree with. Each pod is
explained by the command as users run it, through its informers (read-only) and through the
running scheduler's debug endpoint (bearer token); both name the node the scheduler bound the
pod to among the winners, with the same totals; a pod that fits nowhere gets upstream's
message as the scheduler's condition says it; --annotate writes kube-scheduler-simulator's
annotations; a wrong token is refused."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from berth.cluster import EmbeddedCluster
from berth.explain import FILTER_RESULT, FINAL_SCORE_RESULT, PASSED, SCORE_RESULT, SELECTED_NODE
from tests.live.conftest import create, eventually, node_of, pod, pods, running

TOKEN = "explain-token-0123456789"


async def berth(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "berth",
        *map(str, args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def explained(*args: str | Path) -> dict[str, Any]:
    code, out, err = await berth("explain", *args, "-o", "json")
    assert code == 0, err
    return dict(json.loads(out))


def totals(doc: dict[str, Any]) -> dict[str, int]:
    return {n: v["total"] for n, v in doc["nodes"].items() if v["feasible"]}


def workload() -> list[dict[str, Any]]:
    zone_spread = pod("spread-0", cpu="1")
    zone_spread["metadata"]["labels"] = {"app": "spread"}
    zone_spread["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "spread"}},
        }
    ]
    second = json.loads(json.dumps(zone_spread))
    second["metadata"]["name"] = "spread-1"
    apart = pod(
        "apart",
        cpu="500m",
        affinity={
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"app": "spread"}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
    )
    return [
        pod("plain-0", cpu="1500m"),
        pod("plain-1", cpu="700m"),
        zone_spread,
        second,
        apart,
        pod("plain-2", cpu="2"),
    ]


def test_explain_agrees_with_the_live_scheduler(cluster: EmbeddedCluster, tmp_path: Path) -> None:
    kubeconfig = cluster.kubeconfig_path
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)

    async def main() -> None:
        async with running(cluster, debug_token=TOKEN) as (runner, conn):
            server = f"http://127.0.0.1:{runner.health.port}"
            for body in workload():
                name = body["metadata"]["name"]
                await create(conn, body)

                async def bound(name: str = name) -> bool:
                    return node_of((await pods(conn))[name]) is not None

                await eventually(bound, timeout=60)
                where = node_of((await pods(conn))[name])
                local = await explained(f"default/{name}", "--kubeconfig", kubeconfig)
                remote = await explained(
                    f"default/{name}", "--server", server, "--token-file", token_file
                )
                for doc in (local, remote):
                    assert doc["node"] == where, (name, doc["node"], where)
                    # nothing changed since its decision: the scheduler's node is a best one
                    assert doc["wouldStay"] is True, (name, doc["winners"], where)
                    assert where in doc["winners"]
                assert totals(local) == totals(remote), name
                assert local["winners"] == remote["winners"]

            # a pod that fits nowhere: each node's reason, upstream's message as the scheduler's
            await create(conn, pod("huge", cpu="64"))

            async def unschedulable() -> bool:
                status = (await pods(conn))["huge"].get("status") or {}
                return any(
                    c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
                    for c in status.get("conditions") or []
                )

            await eventually(unschedulable, timeout=60)
            condition = next(
                c
                for c in (await pods(conn))["huge"]["status"]["conditions"]
                if c["type"] == "PodScheduled"
            )
            for doc in (
                await explained("default/huge", "--kubeconfig", kubeconfig),
                await explained("default/huge", "--server", server, "--token-file", token_file),
            ):
                assert doc["node"] is None and doc["feasible"] == [] and doc["winner"] is None
                assert {v["plugin"] for v in doc["nodes"].values()} == {"NodeResourcesFit"}
                assert all(v["reasons"] == ["Insufficient cpu"] for v in doc["nodes"].values())
                assert condition["message"].startswith(doc["message"]), (
                    condition["message"],
                    doc["message"],
                )

            # --annotate: kube-scheduler-simulator's annotations on the pod
            code, out, err = await berth(
                "explain", "default/apart", "--kubeconfig", kubeconfig, "--annotate"
            )
            assert code == 0, err
            apart = (await pods(conn))["apart"]
            notes = apart["metadata"]["annotations"]
            assert notes[SELECTED_NODE] == node_of(apart)
            filters = json.loads(notes[FILTER_RESULT])
            assert set(filters) == set(local["nodes"])  # every node, its filters as run
            assert all(v == PASSED for v in filters[node_of(apart)].values())
            final = json.loads(notes[FINAL_SCORE_RESULT])
            assert node_of(apart) in final and node_of(apart) in json.loads(notes[SCORE_RESULT])
            assert out.splitlines()[-1].startswith(("winner ", "tie at the best total"))

            # the debug endpoint wants its token
            wrong = tmp_path / "wrong"
            wrong.write_text("not-the-token\n")
            code, out, err = await berth(
                "explain", "default/apart", "--server", server, "--token-file", wrong
            )
            assert code != 0 and "HTTP 401" in err and len(err.strip().splitlines()) == 1, err
            code, out, err = await berth(
                "explain", "default/nothere", "--server", server, "--token-file", token_file
            )
            assert code != 0 and "nothere" in err and "Traceback" not in err, err

    asyncio.run(main())
