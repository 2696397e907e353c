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


def test_cached_per_image_scores_follow_node_changes() -> None:
    """Above 64 nodes the plugin caches each image's per-node scores; adding, changing and
    removing nodes (and a heartbeat that keeps the images) must give what a fresh plugin on
    the same state gives."""
    from berth.objects import parse_node
    from berth.plugins.imagelocality import ImageLocality

    big = [(["gcr.io/big:latest"], 900 * MB)]
    nodes = [node(f"n{i:03d}", images=big if i % 3 == 0 else []) for i in range(90)]
    state = make_state(nodes)
    cached = PluginHarness("ImageLocality", state)
    incoming = pod(containers=[{"name": "a", "image": "gcr.io/big"}])

    def check() -> dict[str, int]:
        fresh = PluginHarness("ImageLocality", state)
        got = cached.score(incoming)
        assert got == fresh.score(incoming)
        return got

    first = check()
    assert isinstance(cached.plugin, ImageLocality) and cached.plugin._per_slot
    state.upsert_node(parse_node(node("n001", images=big)))  # gains the image
    second = check()
    assert second != first and second["n001"] == second["n000"] > 0
    state.upsert_node(parse_node(node("n000", images=big)))  # heartbeat: same images
    assert check() == second
    state.upsert_node(parse_node(node("n003", images=[])))  # loses it
    assert check()["n003"] == 0
    state.remove_node("n006")
    state.upsert_node(parse_node(node("n999", images=big)))  # node set changes
    assert check()["n999"] > 0
