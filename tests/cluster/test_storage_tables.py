"""The two storage printer helpers whose cases the live fidelity test cannot all reach:
access modes with ReadWriteOncePod (the API refuses RWOP beside other modes) and the effective
default StorageClass's tie-break (two classes created in one second)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.cluster.storage_tables import access_modes, effective_default_class

DEFAULT = {"storageclass.kubernetes.io/is-default-class": "true"}
BETA_DEFAULT = {"storageclass.beta.kubernetes.io/is-default-class": "true"}
NOT_DEFAULT = {"storageclass.kubernetes.io/is-default-class": "false"}
DAY1, DAY2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


@pytest.mark.parametrize(
    ("modes", "want"),
    [
        (["ReadWriteOncePod"], "RWOP"),
        (["ReadWriteMany", "ReadWriteOnce", "ReadWriteMany"], "RWO,RWX"),
        (["ReadOnlyMany", "ReadWriteOncePod", "ReadWriteOnce"], "RWO,ROX,RWOP"),
        ([], ""),
        (None, ""),
    ],
)
def test_access_modes_print_in_upstreams_order_once_each(modes: Any, want: str) -> None:
    assert access_modes(modes) == want


def _class(name: str, made: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": made}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("classes", "want"),
    [
        pytest.param([_class("a", DAY1)], "", id="none annotated"),
        pytest.param([_class("a", DAY1, NOT_DEFAULT)], "", id="annotated false"),
        pytest.param(
            [_class("old", DAY1, DEFAULT), _class("new", DAY2, BETA_DEFAULT)],
            "new",
            id="newest wins (the beta key counts)",
        ),
        pytest.param(
            [_class("new", DAY2, DEFAULT), _class("old", DAY1, DEFAULT)],
            "new",
            id="order does not matter",
        ),
        pytest.param(
            [_class("b", DAY1, DEFAULT), _class("a", DAY1, DEFAULT)], "a", id="tie: smaller name"
        ),
    ],
)
def test_effective_default_class(classes: list[dict[str, Any]], want: str) -> None:
    assert effective_default_class(classes) == want
