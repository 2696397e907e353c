"""Label selectors and node selector terms behave as apimachinery's do."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth.objects import ObjectError
from berth.objects.selectors import parse_label_selector, parse_node_selector_term


def sel(raw):  # type: ignore[no-untyped-def]
    return parse_label_selector(raw, where="s", kind="Pod", name="p")


@pytest.mark.parametrize(
    ("name", "selector", "labels", "want"),
    [
        ("nil selects nothing", None, {"a": "1"}, False),
        ("empty selects everything", {}, {}, True),
        ("matchLabels equal", {"matchLabels": {"a": "1"}}, {"a": "1"}, True),
        ("matchLabels differ", {"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ("matchLabels missing", {"matchLabels": {"a": "1"}}, {}, False),
        (
            "In",
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        (
            "NotIn missing key",
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {},
            True,
        ),
        (
            "NotIn present",
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ("Exists", {"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        (
            "DoesNotExist",
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
            {"a": "x"},
            False,
        ),
        (
            "ANDed",
            {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
            {"a": "1"},
            False,
        ),
    ],
)
def test_label_selector(name: str, selector: object, labels: dict[str, str], want: bool) -> None:
    assert sel(selector).matches(labels) is want, name


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "s.matchExpressions[0].values",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "s.matchExpressions[0].values",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            "s.matchExpressions[0].operator",
        ),
        ({"matchLabels": {"a": 1}}, "s.matchLabels.a"),
    ],
)
def test_label_selector_errors_name_the_field(raw: object, field: str) -> None:
    with pytest.raises(ObjectError) as info:
        sel(raw)
    assert info.value.field == field


def term(raw):  # type: ignore[no-untyped-def]
    return parse_node_selector_term(raw, where="t", kind="Pod", name="p")


@pytest.mark.parametrize(
    ("name", "raw", "labels", "node", "want"),
    [
        ("empty term matches nothing", {}, {"a": "1"}, "n1", False),
        (
            "Gt",
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]},
            {"cores": "8"},
            "n1",
            True,
        ),
        (
            "Gt not integer",
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]},
            {"cores": "eight"},
            "n1",
            False,
        ),
        (
            "Lt",
            {"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]},
            {"cores": "8"},
            "n1",
            False,
        ),
        (
            "matchFields name",
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
            {},
            "n1",
            True,
        ),
        (
            "matchFields NotIn",
            {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]},
            {},
            "n1",
            False,
        ),
    ],
)
def test_node_selector_term(
    name: str, raw: object, labels: dict[str, str], node: str, want: bool
) -> None:
    assert term(raw).matches(labels, node) is want, name


def test_match_fields_only_metadata_name() -> None:
    with pytest.raises(ObjectError, match="not a valid field selector key"):
        term({"matchFields": [{"key": "spec.x", "operator": "In", "values": ["a"]}]})


keys = st.sampled_from(["a", "b", "c"])
values = st.sampled_from(["1", "2", "3"])


@given(st.dictionaries(keys, values), st.dictionaries(keys, values))
def test_match_labels_is_subset(want: dict[str, str], labels: dict[str, str]) -> None:
    expected = all(labels.get(k) == v for k, v in want.items())
    assert sel({"matchLabels": want}).matches(labels) is expected


@given(keys, st.lists(values, min_size=1, max_size=3), st.dictionaries(keys, values))
def test_in_and_notin_are_complements(key: str, vals: list[str], labels: dict[str, str]) -> None:
    inside = sel({"matchExpressions": [{"key": key, "operator": "In", "values": vals}]})
    outside = sel({"matchExpressions": [{"key": key, "operator": "NotIn", "values": vals}]})
    assert inside.matches(labels) is not outside.matches(labels)
