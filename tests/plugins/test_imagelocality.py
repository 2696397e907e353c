"""ImageLocality (image_locality_test.go, with today's thresholds: init containers count, and the
upper threshold is 1000MB per container)."""

import pytest

from tests.builders import PluginHarness, make_state, node, pod

MB = 1024 * 1024
M1 = [
    (["gcr.io/40:latest"], 40 * MB),
    (["gcr.io/300:latest"], 300 * MB),
    (["gcr.io/2000:latest"], 2000 * MB),
]
M2 = [(["gcr.io/250:latest"], 250 * MB), (["gcr.io/10:latest"], 10 * MB)]


def two_images(a: str, b: str) -> dict:  # type: ignore[type-arg]
    return pod(containers=[{"name": "a", "image": a}, {"name": "b", "image": b}])


@pytest.mark.parametrize(
    ("name", "images", "with_m3", "want"),
    [
        (
            "two images spread on two nodes",
            ("gcr.io/40", "gcr.io/250"),
            False,
            {"m1": 0, "m2": 5},
        ),
        ("two images on one node", ("gcr.io/40", "gcr.io/300"), False, {"m1": 7, "m2": 0}),
        ("one big image", ("gcr.io/10", "gcr.io/2000"), False, {"m1": 49, "m2": 0}),
        (
            "spread over three nodes",
            ("gcr.io/10", "gcr.io/2000"),
            True,
            {"m1": 32, "m2": 0, "m3": 0},
        ),
    ],
)
def test_image_locality(
    name: str, images: tuple[str, str], with_m3: bool, want: dict[str, int]
) -> None:
    nodes = [node("m1", images=M1), node("m2", images=M2)]
    if with_m3:
        nodes.append(node("m3"))
    h = PluginHarness("ImageLocality", make_state(nodes))
    assert h.score(two_images(*images)) == want, name


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("nginx", "nginx:latest"),
        ("gcr.io/foo", "gcr.io/foo:latest"),
        ("localhost:5000/foo", "localhost:5000/foo:latest"),
        ("foo:1.0", "foo:1.0"),
        ("foo@sha256:abc", "foo@sha256:abc"),
    ],
)
def test_normalized_image_name(name: str, normalized: str) -> None:
    from berth.state.cluster import normalize_image

    assert normalize_image(name) == normalized
