"""filter / prioritize / preempt over HTTP against an in-process extender, with NodeList
payloads as kube-scheduler sends them when nodeCacheCapable is false."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from berth.config import parse_config
from berth.engine import Engine
from berth.extender.adapter import scale_score
from berth.objects import parse_pod
from tests.builders import node, pod
from tests.extender.conftest import args, post, serving

GPU_TAINT = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_filter_reasons_are_berths_and_only_sent_nodes_come_back() -> None:
    nodes = [
        node("ok-1", cpu="4"),
        node("small", cpu="1"),
        node("tainted", cpu="4", taints=GPU_TAINT),
        node("wrong-zone", cpu="4", labels={"zone": "b"}),
        node("ok-2", cpu="4", labels={"zone": "a"}),
        node("full", cpu="4"),
    ]
    engine = Engine(config=parse_config({}), seed=1)
    engine.state.add_pod(parse_pod(pod("running", cpu="3", node_name="full")))
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}]}
                ]
            }
        }
    }
    p = pod("web", cpu="2", spec={"affinity": affinity})

    async def main() -> None:
        async with serving(engine=engine) as (url, _):
            # An earlier request taught the extender about a node this one does not send.
            await post(f"{url}/filter", args(pod("warmup"), node("elsewhere", cpu="64")))
            code, body = await post(f"{url}/filter", args(p, *nodes))
            assert code == 200, body
            assert body["Error"] == ""
            assert body["NodeNames"] is None
            assert [n["metadata"]["name"] for n in body["Nodes"]["items"]] == ["ok-1", "ok-2"]
            # Room taken by bound pods can be freed (preemption): Unschedulable; a request above
            # the node's allocatable cannot (upstream's NodeResourcesFit): unresolvable.
            assert body["FailedNodes"] == {"full": "Insufficient cpu"}
            assert body["FailedAndUnresolvableNodes"] == {
                "small": "Insufficient cpu",
                "tainted": "node(s) had untolerated taint(s)",
                "wrong-zone": "node(s) didn't match Pod's node affinity/selector",
            }
            sent = {n["metadata"]["name"] for n in nodes}
            returned = {n["metadata"]["name"] for n in body["Nodes"]["items"]}
            assert returned | set(body["FailedNodes"]) | set(body["FailedAndUnresolvableNodes"])
            assert returned <= sent
            assert "elsewhere" not in str(body)
            # The passing nodes come back as they were sent.
            assert body["Nodes"]["items"][0] == nodes[0]

    run(main())


def test_filter_in_names_mode_uses_the_node_table() -> None:
    engine = Engine(config=parse_config({}), seed=1)

    async def main() -> None:
        async with serving(engine=engine, nodes_from_informer=True) as (url, _):
            from berth.objects import parse_node

            for n in (node("a", cpu="4"), node("b", cpu="1"), node("c", cpu="8")):
                engine.state.upsert_node(parse_node(n))
            body = {"Pod": pod("x", cpu="2"), "NodeNames": ["a", "b", "ghost"]}
            code, out = await post(f"{url}/filter", body)
            assert code == 200
            assert out["Nodes"] is None
            assert out["NodeNames"] == ["a"]  # "c" was not sent, so it never comes back
            assert out["FailedNodes"] == {}
            assert out["FailedAndUnresolvableNodes"] == {
                "b": "Insufficient cpu",
                "ghost": "node(s) not found in berth's node cache",
            }

    run(main())


def test_bound_pods_count_and_unchanged_nodes_are_not_reparsed() -> None:
    engine = Engine(config=parse_config({}), seed=1)
    n1 = node("n1", cpu="4")
    n1["metadata"]["resourceVersion"] = "10"

    async def main() -> None:
        async with serving(engine=engine) as (url, server):
            _, out = await post(f"{url}/filter", args(pod("p1", cpu="3"), n1))
            assert [n["metadata"]["name"] for n in out["Nodes"]["items"]] == ["n1"]
            # The pods informer would count this bound pod; do what it does.
            engine.state.add_pod(parse_pod(pod("running", cpu="3", node_name="n1")))
            _, out = await post(f"{url}/filter", args(pod("p2", cpu="3"), n1))
            assert out["FailedNodes"] == {"n1": "Insufficient cpu"}
            assert server.adapter.stats.parsed == 1
            assert server.adapter.stats.reused == 1
            n1["metadata"]["resourceVersion"] = "11"
            n1["status"]["allocatable"]["cpu"] = "8"
            _, out = await post(f"{url}/filter", args(pod("p3", cpu="3"), n1))
            assert out["FailedNodes"] == {}
            assert server.adapter.stats.parsed == 2

    run(main())


def test_prioritize_scores_0_to_10_for_the_sent_nodes_only() -> None:
    nodes = [node("busy", cpu="4"), node("idle", cpu="4"), node("tainted-soft", cpu="4")]
    nodes[2]["spec"]["taints"] = [{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]
    engine = Engine(config=parse_config({}), seed=1)
    engine.state.add_pod(parse_pod(pod("load", cpu="3", memory="8Gi", node_name="busy")))

    async def main() -> None:
        async with serving(engine=engine) as (url, _):
            code, out = await post(f"{url}/prioritize", args(pod("p", cpu="500m"), *nodes))
            assert code == 200, out
            assert [h["Host"] for h in out] == ["busy", "idle", "tainted-soft"]
            assert all(set(h) == {"Host", "Score"} for h in out)
            scores = {h["Host"]: h["Score"] for h in out}
            assert all(0 <= s <= 10 for s in scores.values())
            assert scores["idle"] > scores["busy"]
            assert scores["idle"] > scores["tainted-soft"]

    run(main())


def test_preempt_drops_nodes_where_the_victims_do_not_make_room() -> None:
    engine = Engine(config=parse_config({}), seed=1)

    async def main() -> None:
        async with serving(engine=engine) as (url, _):
            from berth.objects import parse_node

            engine.state.upsert_node(parse_node(node("n1", cpu="4")))
            engine.state.upsert_node(parse_node(node("n2", cpu="4")))
            for name, where in (("a", "n1"), ("b", "n1"), ("c", "n2"), ("d", "n2")):
                engine.state.add_pod(parse_pod(pod(name, cpu="2", node_name=where)))
            body = {
                "Pod": pod("big", cpu="3", priority=100),
                "NodeNameToMetaVictims": {
                    "n1": {"Pods": [{"UID": "uid-a"}, {"UID": "uid-b"}], "NumPDBViolations": 0},
                    "n2": {"Pods": [{"UID": "uid-c"}], "NumPDBViolations": 1},
                    "unknown": {"Pods": [], "NumPDBViolations": 0},
                },
            }
            code, out = await post(f"{url}/preempt", body)
            assert code == 200, out
            victims = out["NodeNameToMetaVictims"]
            assert set(victims) == {"n1", "unknown"}  # removing c leaves 2 of 4 cpu on n2
            assert victims["n1"] == {
                "Pods": [{"UID": "uid-a"}, {"UID": "uid-b"}],
                "NumPDBViolations": 0,
            }
            assert engine.state.node_of("default/a") == "n1"  # victims put back

    run(main())


def test_errors_are_json_with_an_error_field() -> None:
    async def main() -> None:
        async with serving(max_body_bytes=4096) as (url, _):
            code, out = await post(f"{url}/filter", None, raw=b"{not json")
            assert code == 400 and "malformed JSON" in out["Error"]
            code, out = await post(f"{url}/filter", {"Nodes": {"items": []}})
            assert code == 400 and out["Error"] == "Pod: required"
            code, out = await post(f"{url}/frobnicate", {})
            assert code == 404 and "unknown verb 'frobnicate'" in out["Error"]
            code, out = await post(f"{url}/filter", None, raw=b"[" + b"1," * 5000 + b"1]")
            assert code == 413 and "over 4096" in out["Error"]
            # A chunked body (no Content-Length) over the limit is refused too.

            async def chunks() -> Any:
                for _ in range(10):
                    yield b" " * 1000

            async with (
                aiohttp.ClientSession() as s,
                s.post(f"{url}/filter", data=chunks()) as r,
            ):
                assert r.status == 413
                assert "Error" in await r.json(content_type=None)
            # A pod Berth cannot parse: filter answers 200 with Error, as upstream reads it.
            bad = pod("bad")
            bad["spec"]["containers"] = "nope"
            code, out = await post(f"{url}/filter", args(bad, node("n")))
            assert code == 200 and out["Error"].startswith("invalid pod:")
            code, out = await post(f"{url}/prioritize", args(bad, node("n")))
            assert code == 400 and out["Error"].startswith("invalid pod:")

    run(main())


def test_bind_without_a_cluster_answers_an_error() -> None:
    async def main() -> None:
        async with serving(bind_token="t") as (url, _):
            body = {"PodName": "p", "PodNamespace": "d", "PodUID": "u", "Node": "n"}
            code, out = await post(f"{url}/bind", body, token="t")
            assert code == 200 and "no cluster connection" in out["Error"]

    run(main())


def test_health_and_metrics_per_verb() -> None:
    async def main() -> None:
        n = node("n")
        n["metadata"]["resourceVersion"] = "1"
        async with serving() as (url, server):
            await post(f"{url}/filter", args(pod("p"), n))
            await post(f"{url}/prioritize", args(pod("p"), n))
            base = f"http://127.0.0.1:{server.port}"
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{base}/healthz") as r:
                    assert r.status == 200
                async with s.get(f"{base}/readyz") as r:
                    assert r.status == 200
                async with s.get(f"{base}/metrics") as r:
                    text = await r.text()
            assert 'berth_extender_requests_total{code="200",verb="filter"} 1.0' in text
            assert 'berth_extender_request_duration_seconds_count{verb="prioritize"} 1.0' in text
            assert "berth_extender_nodes_parsed_total 1.0" in text
            assert "berth_extender_nodes_reused_total 1.0" in text

    run(main())


def test_thousand_node_nodelist_is_answered() -> None:
    nodes = []
    for i in range(1000):
        n = node(f"node-{i:04d}", cpu="8", labels={"zone": f"z{i % 3}"})
        n["metadata"]["resourceVersion"] = str(i + 1)
        if i % 10 == 0:
            n["spec"]["taints"] = GPU_TAINT
        nodes.append(n)

    async def main() -> None:
        async with serving() as (url, server):
            for name in ("first", "second"):
                code, out = await post(f"{url}/filter", args(pod(name, cpu="1"), *nodes))
                assert code == 200 and out["Error"] == ""
                assert len(out["Nodes"]["items"]) == 900
                assert len(out["FailedAndUnresolvableNodes"]) == 100
            assert server.adapter.stats.parsed == 1000  # the second request reused them all
            code, scores = await post(f"{url}/prioritize", args(pod("p", cpu="1"), *nodes))
            assert code == 200 and len(scores) == 1000

    run(main())


def test_score_mapping_is_a_fraction_of_the_best_possible_total() -> None:
    assert scale_score(1200, 1200) == 10
    assert scale_score(0, 1200) == 0
    assert scale_score(540, 1200) == 5  # 4.5 rounds half up
    assert scale_score(539, 1200) == 4
    assert scale_score(5, 0) == 0  # nothing scored


def test_prioritize_with_one_weighted_plugin_maps_its_score() -> None:
    config = {
        "profiles": [
            {
                "schedulerName": "berth",
                "plugins": {
                    "multiPoint": {"disabled": [{"name": "*"}]},
                    "score": {"enabled": [{"name": "NodeResourcesFit", "weight": 5}]},
                    "bind": {"enabled": [{"name": "DefaultBinder"}]},
                },
            }
        ]
    }
    nodes = [node("empty", cpu="4", memory="4Gi"), node("half", cpu="4", memory="4Gi")]
    engine = Engine(config=parse_config(config), seed=1)
    engine.state.add_pod(parse_pod(pod("load", cpu="2", memory="2Gi", node_name="half")))

    async def main() -> None:
        async with serving(engine=engine) as (url, _):
            _, out = await post(f"{url}/prioritize", args(pod("p", cpu="0", memory="0"), *nodes))
            # LeastAllocated: 100 on the empty node, 50 on the half-full one; x5 / (100 x 5).
            assert out == [{"Host": "empty", "Score": 10}, {"Host": "half", "Score": 5}]

    run(main())


class _FakeBinder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def bind(self, pod: Any, node_name: str) -> Any:
        from berth.framework.status import SUCCESS

        self.calls.append((pod.key, node_name))
        return SUCCESS


def test_bind_counts_a_filtered_pod_on_its_node_at_once() -> None:
    engine = Engine(config=parse_config({}), seed=1)
    binder = _FakeBinder()
    nodes = [node("n1", cpu="4"), node("n2", cpu="4")]

    async def main() -> None:
        async with serving(engine=engine, binder=binder, bind_token="t") as (url, _):  # type: ignore[arg-type]
            _, out = await post(f"{url}/filter", args(pod("a", cpu="3"), *nodes))
            assert len(out["Nodes"]["items"]) == 2
            bind = {"PodName": "a", "PodNamespace": "default", "PodUID": "uid-a", "Node": "n1"}
            assert await post(f"{url}/bind", bind, token="t") == (200, {"Error": ""})
            assert binder.calls == [("default/a", "n1")]
            assert engine.state.node_of("default/a") == "n1"
            # Before any watch event, the next pod already sees n1 as 3 cpu fuller.
            _, out = await post(f"{url}/filter", args(pod("b", cpu="3"), *nodes))
            assert out["FailedNodes"] == {"n1": "Insufficient cpu"}

    run(main())


def test_room_nominated_to_a_higher_priority_pod_is_kept() -> None:
    from berth.feed import Feed

    engine = Engine(config=parse_config({}), seed=1)
    feed = Feed(state=engine.state, ports=engine.ports, responsible=lambda _: True)
    for n in (node("n1", cpu="4"), node("n2", cpu="4")):
        feed.add(n)
    watch = feed.handler("Pod")  # the extender's pods informer
    preemptor = pod("preemptor", cpu="3", priority=1000)
    preemptor["status"] = {"nominatedNodeName": "n1"}
    watch.on_add(preemptor)
    assert engine.handle.ports.nominator.node_of("default/preemptor") == "n1"

    async def main() -> None:
        async with serving(engine=engine, nodes_from_informer=True) as (url, _):
            body = {"Pod": pod("low", cpu="2", priority=0), "NodeNames": ["n1", "n2"]}
            _, out = await post(f"{url}/filter", body)
            assert out["NodeNames"] == ["n2"]
            assert out["FailedNodes"] == {"n1": "Insufficient cpu"}
            body = {"Pod": pod("high", cpu="2", priority=2000), "NodeNames": ["n1", "n2"]}
            _, out = await post(f"{url}/filter", body)
            assert out["NodeNames"] == ["n1", "n2"]
            # Once bound, the nomination is gone and the pod is counted instead.
            bound = {**preemptor, "spec": {**preemptor["spec"], "nodeName": "n1"}}
            watch.on_update(preemptor, bound)
            assert not len(engine.handle.ports.nominator)
            assert engine.state.node_of("default/preemptor") == "n1"

    run(main())


def test_nodes_not_sent_for_the_ttl_are_forgotten() -> None:
    from berth.extender.adapter import ExtenderAdapter
    from berth.extender.wire import ExtenderArgs

    engine = Engine(config=parse_config({}), seed=1)
    adapter = ExtenderAdapter(engine, node_ttl=0.0)
    adapter.filter(ExtenderArgs.from_wire(args(pod("a"), node("n1"), node("n2"))))
    assert set(engine.state.index) == {"n1", "n2"}
    adapter._last_prune = float("-inf")  # the prune runs at most every 10 s
    result = adapter.filter(ExtenderArgs.from_wire(args(pod("b"), node("n2"))))
    assert set(engine.state.index) == {"n2"}
    assert result.nodes is not None
    assert [n["metadata"]["name"] for n in result.nodes["items"]] == ["n2"]
