"""More of `berth run`: several profiles in one process, a pod deleted while its bind is in
flight, JSON logs, and the README's main job (`berth demo`)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from berth.cli import main
from berth.cluster import EmbeddedCluster, FaultRule
from berth.telemetry import JsonFormatter
from tests.live.conftest import create, events, eventually, node_of, pod, pods, running
from tests.upstream import needs_faults


def test_every_profile_is_served_by_one_process(cluster: EmbeddedCluster) -> None:
    profiles = {
        "profiles": [
            {"schedulerName": "berth"},
            {"schedulerName": "berth-batch", "plugins": {"score": {"disabled": [{"name": "*"}]}}},
        ]
    }

    async def main_() -> None:
        async with running(cluster, profiles) as (_, conn):
            await create(conn, pod("a", scheduler="berth"))
            await create(conn, pod("b", scheduler="berth-batch"))
            await create(conn, pod("c", scheduler="someone-else"))

            async def both() -> bool:
                listed = await pods(conn)
                return bool(node_of(listed["a"]) and node_of(listed["b"]))

            await eventually(both)
            assert node_of((await pods(conn))["c"]) is None

    asyncio.run(main_())


@needs_faults
def test_pod_deleted_while_binding_is_dropped(cluster: EmbeddedCluster) -> None:
    async def main_() -> None:
        cluster.faults.set_rules(FaultRule(verb="create", resource="pods/binding", latency=1.0))
        try:
            async with running(cluster) as (runner, conn):
                await create(conn, pod("doomed"))

                async def assumed() -> bool:
                    return runner.engine.state.is_assumed("default/doomed")

                await eventually(assumed)
                r = await conn.core.delete_namespaced_pod_without_preload_content(
                    name="doomed", namespace="default"
                )
                r.release()

                async def settled() -> bool:
                    return (
                        runner.scheduler.bind_failures == 1
                        and "default/doomed" not in runner.queue
                        and runner.engine.state.node_of("default/doomed") is None
                    )

                await eventually(settled, timeout=10)
                assert not [e for e in await events(conn) if e["reason"] == "Scheduled"]
        finally:
            cluster.faults.clear()

    asyncio.run(main_())


def test_json_log_lines_carry_structured_fields() -> None:
    record = logging.LogRecord(
        "berth.scheduler", logging.INFO, __file__, 1, "pod unschedulable", None, None
    )
    record.pod = "default/p"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "pod unschedulable"
    assert line["pod"] == "default/p"
    assert line["level"] == "info" and line["logger"] == "berth.scheduler"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kubeconfig", "{tmp}/missing"], "does not exist"),
        (["--kubeconfig", "{tmp}/broken"], "cannot load the kubeconfig"),
        (["--kubeconfig", "{tmp}/empty"], "current-context"),
        (["--bind-address", "nonsense"], "'--bind-address': 'nonsense': expected host:port"),
    ],
)
def test_run_refuses_a_bad_kubeconfig_or_address_without_a_traceback(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    (tmp_path / "broken").write_text("clusters: [\n")
    (tmp_path / "empty").write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    argv = ["run", *(a.format(tmp=tmp_path) for a in args)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_demo_places_the_sample_workload_and_explains_the_rest() -> None:
    result = CliRunner().invoke(main, ["demo", "--timeout", "20"])
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line.split(None, 2)[1:]
        for line in result.output.splitlines()
        if line.startswith("default/")
    }
    assert rows["default/trainer"][0] == "node-004"  # tolerates the taint of node-004
    assert rows["default/batch-huge"][0] == "<pending>"
    assert rows["default/batch-huge"][1].startswith("0/5 nodes are available:")
    assert "1 node(s) were unschedulable" in rows["default/batch-huge"][1]
    assert rows["default/not-ours"][0] == "<pending>"
    placed_web = [
        k for k, v in rows.items() if k.startswith("default/web-") and v[0] != "<pending>"
    ]
    assert len(placed_web) == 3  # three schedulable nodes, hostname anti-affinity
    assert "pods placed" in result.output


def test_demo_reports_a_workload_in_other_namespaces_and_profiles(tmp_path: Path) -> None:
    """`berth demo --workload` with pods outside `default` and a second profile: every pod of
    the workload is in the table (its Namespace created first), each profile's pods placed."""
    workload = tmp_path / "w.yaml"
    workload.write_text(
        yaml.safe_dump_all(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "batch"}}]
            + [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {
                        "schedulerName": scheduler,
                        "containers": [{"name": "c", "image": "busybox"}],
                    },
                }
                for name, ns, scheduler in (
                    ("a", "default", "berth"),
                    ("b", "batch", "berth-batch"),
                )
            ]
        )
    )
    config = tmp_path / "berth.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "berth.io/v1alpha1",
                "kind": "BerthConfiguration",
                "leaderElection": {"leaderElect": False},
                "profiles": [{"schedulerName": "berth"}, {"schedulerName": "berth-batch"}],
            }
        )
    )
    result = CliRunner().invoke(
        main, ["demo", "--timeout", "20", "--workload", str(workload), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line.split()[1]
        for line in result.output.splitlines()
        if "/" in line.split(" ")[0]
    }
    assert rows["default/a"].startswith("node-")
    assert rows["batch/b"].startswith("node-")
    assert "2/2 pods placed" in result.output
