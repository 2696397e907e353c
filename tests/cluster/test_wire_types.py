"""The typed-decode check's types: every kind the embedded cluster serves (custom resources
aside) has upstream's, and the shipped file is what tools/gen_wire_types.py makes from the
OpenAPI documents of the Kubernetes release Berth follows (when its module is on disk)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from berth.cluster import wiretypes
from berth.cluster.errors import ApiError
from berth.cluster.resources import RESOURCES

ROOT = Path(__file__).resolve().parents[2]
SPEC = Path("/root/go/pkg/mod/k8s.io/kubernetes@v1.37.2/api/openapi-spec/v3")


def test_every_served_kind_has_upstream_types() -> None:
    served = {f"{r.api_version}/{r.kind}" for r in RESOURCES if not r.custom}
    missing = served - wiretypes.known_kinds()
    assert not missing, f"run tools/gen_wire_types.py: no types for {sorted(missing)}"


@pytest.mark.skipif(not SPEC.is_dir(), reason="upstream's OpenAPI documents are not on disk")
def test_the_shipped_types_are_generated_from_upstream() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "tools" / "gen_wire_types.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    shipped = (ROOT / "src" / "berth" / "cluster" / "wire_types.json").read_text()
    assert gen.build(SPEC) == shipped, "run tools/gen_wire_types.py"


@pytest.mark.parametrize(
    ("name", "pod", "message"),
    [
        (
            "node affinity is an object",
            {"spec": {"affinity": {"nodeAffinity": 5}}},
            "cannot unmarshal number into Go struct field Affinity.spec.affinity.nodeAffinity "
            "of type v1.NodeAffinity",
        ),
        (
            "nodeName is a string",
            {"spec": {"nodeName": ["a"]}},
            "cannot unmarshal array into Go struct field PodSpec.spec.nodeName of type string",
        ),
        (
            "priority is an int32",
            {"spec": {"priority": 1.5}},
            "cannot unmarshal number 1.5 into Go struct field PodSpec.spec.priority of type int32",
        ),
        (
            "tolerations are a list",
            {"spec": {"tolerations": {"key": "k"}}},
            "cannot unmarshal object into Go struct field PodSpec.spec.tolerations of type "
            "[]v1.Toleration",
        ),
        (
            "a container's field",
            {"spec": {"containers": [{"name": 5}]}},
            "cannot unmarshal number into Go struct field Container.spec.containers.name of type "
            "string",
        ),
        (
            "labels are strings",
            {"metadata": {"labels": {"a": 1}}},
            # a map's value: Go names the value's type, as for any map (checked against go1.26)
            "cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type "
            "string",
        ),
    ],
)
def test_wrong_types_are_refused_as_upstream_words_it(
    name: str, pod: dict[str, object], message: str
) -> None:
    with pytest.raises(ApiError) as exc:
        wiretypes.check(api_version="v1", kind="Pod", obj=pod)
    assert exc.value.code == 400
    assert exc.value.message == f'Pod in version "v1" cannot be handled as a Pod: json: {message}'


@pytest.mark.parametrize(
    "pod",
    [
        {"spec": {"containers": [{"resources": {"requests": {"cpu": 1, "memory": "1Gi"}}}]}},
        {"spec": {"nodeName": None, "affinity": None}},  # null is accepted anywhere
        {"spec": {"unknownField": {"anything": [1, 2]}}},  # unknown fields are not checked
        {"spec": {"priority": 7.0}},  # an integral number is an int
    ],
)
def test_what_upstream_decodes_passes(pod: dict[str, object]) -> None:
    wiretypes.check(api_version="v1", kind="Pod", obj=pod)


def test_custom_resources_are_not_checked() -> None:
    wiretypes.check(api_version="scheduling.x-k8s.io/v1alpha1", kind="PodGroup", obj={"spec": 5})
