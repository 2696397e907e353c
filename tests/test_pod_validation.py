"""What API validation refuses in a pod or node, Berth refuses when it reads one from a dump,
and what validation lets through Berth reads (rows found by the differential oracle, each
checked against kube-apiserver's validation there; upstream's words in core/validation)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.objects import ObjectError, parse_node, parse_pod
from tests.builders import PluginHarness, make_state, node, pod


def ports(*pairs: tuple[int, str]) -> list[dict[str, Any]]:
    return [{"containerPort": p, "hostPort": p, "protocol": proto} for p, proto in pairs]


def ctr(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **extra}


REFUSED = [
    # (row, pod, the field named)
    (
        "container name twice",
        pod(containers=[ctr("main"), ctr("main")]),
        "spec.containers[1].name",
    ),
    (
        "init container named as a container",
        pod(containers=[ctr("main")], spec={"initContainers": [ctr("main")]}),
        "spec.initContainers[0].name",
    ),
    (
        "host port twice across containers",
        pod(containers=[ctr("a", ports=ports((80, "TCP"))), ctr("b", ports=ports((80, "TCP")))]),
        "spec.containers[1].ports[0].hostPort",
    ),
    (
        "host port twice in one init container",
        pod(
            containers=[ctr("main")],
            spec={"initContainers": [ctr("i", ports=ports((80, "TCP"), (80, "TCP")))]},
        ),
        "spec.initContainers[0].ports[1].hostPort",
    ),
    (
        "request above limit",
        pod(containers=[ctr("c", resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})]),
        "spec.containers[0].resources.requests",
    ),
    (
        "extended request unequal to its limit",
        pod(
            containers=[
                ctr(
                    "c",
                    resources={
                        "requests": {"example.com/gpu": "1"},
                        "limits": {"example.com/gpu": "2"},
                    },
                )
            ]
        ),
        "spec.containers[0].resources.requests",
    ),
    (
        "scheduling gate not a qualified name",
        pod(spec={"schedulingGates": [{"name": "not a gate"}]}),
        "spec.schedulingGates[0]",
    ),
    (
        "scheduling gate twice",
        pod(spec={"schedulingGates": [{"name": "example.com/a"}, {"name": "example.com/a"}]}),
        "spec.schedulingGates[1]",
    ),
    (
        "toleration effect",
        pod(spec={"tolerations": [{"key": "k", "operator": "Exists", "effect": "Sometimes"}]}),
        "spec.tolerations[0].effect",
    ),
    (
        "tolerationSeconds without NoExecute",
        pod(spec={"tolerations": [{"operator": "Exists", "tolerationSeconds": 5}]}),
        "spec.tolerations[0].effect",
    ),
    (
        "toleration key",
        pod(spec={"tolerations": [{"key": "-k", "operator": "Exists"}]}),
        "spec.tolerations[0].key",
    ),
    (
        "toleration value",
        pod(spec={"tolerations": [{"key": "k", "value": "not valid!"}]}),
        "spec.tolerations[0].operator",
    ),
    ("label value", pod(labels={"app": "not valid!"}), "metadata.labels.app"),
    ("label key", pod(labels={"-app": "web"}), "metadata.labels.-app"),
    (
        "nodeSelector value",
        pod(spec={"nodeSelector": {"disk": "not a label value!"}}),
        "spec.nodeSelector.disk",
    ),
]


@pytest.mark.parametrize(("row", "raw", "where"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_as_validation_refuses_it(row: str, raw: dict[str, Any], where: str) -> None:
    with pytest.raises(ObjectError) as exc:
        parse_pod(raw)
    assert exc.value.field == where, row


ACCEPTED = [
    (
        "the same host port in an init container and a container",
        pod(
            containers=[ctr("main", ports=ports((80, "TCP")))],
            spec={"initContainers": [ctr("i", ports=ports((80, "TCP")))]},
        ),
    ),
    (
        "the same host port over TCP and UDP",
        pod(containers=[ctr("a", ports=ports((53, "TCP"))), ctr("b", ports=ports((53, "UDP")))]),
    ),
    (
        # Validation wants a limit here too; Berth reads a dump written by hand without one.
        "extended request without a limit",
        pod(containers=[ctr("c", resources={"requests": {"example.com/gpu": "1"}})]),
    ),
    (
        "Gt on a value that is not an integer",
        pod(
            spec={
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "gen", "operator": "Gt", "values": ["three"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            }
        ),
    ),
]


@pytest.mark.parametrize(("row", "raw"), ACCEPTED, ids=[r[0] for r in ACCEPTED])
def test_accepted_as_validation_accepts_it(row: str, raw: dict[str, Any]) -> None:
    parse_pod(raw)


def test_a_required_term_whose_gt_value_cannot_parse_matches_no_node() -> None:
    # component-helpers' LazyErrorNodeSelector: the term has a parse error, so it matches
    # nothing; the other term still does.
    state = make_state([node("n1", labels={"gen": "5"}), node("n2", labels={"gen": "1_0"})])
    h = PluginHarness("NodeAffinity", state)
    bad = {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["three"]}]}
    ok = {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["+3"]}]}

    def with_terms(*terms: dict[str, Any]) -> dict[str, Any]:
        required = {"nodeSelectorTerms": list(terms)}
        return pod(
            spec={
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}
                }
            }
        )

    mismatch = ["node(s) didn't match Pod's node affinity/selector"]
    assert h.reasons(with_terms(bad)) == {"n1": mismatch, "n2": mismatch}
    # "+3" parses as Go's ParseInt reads it; "1_0" is a label value ParseInt refuses.
    assert h.reasons(with_terms(bad, ok)) == {"n2": mismatch}


def test_a_node_with_an_invalid_label_is_refused() -> None:
    with pytest.raises(ObjectError) as exc:
        parse_node(node("n1", labels={"disk": "not valid!"}))
    assert exc.value.field == "metadata.labels.disk"
