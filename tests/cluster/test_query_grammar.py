"""Query parameters and field selectors read as upstream's apimachinery reads them, one parser
for the list handler and the authorizer (fields/selector.go, runtime/conversion.go)."""

from __future__ import annotations

import pytest

from berth.cluster.errors import ApiError
from berth.cluster.params import query_bool, query_int64
from berth.cluster.rbac import ADMIN, request_attributes
from berth.cluster.selectors import parse_field_terms, requires_exact_match


@pytest.mark.parametrize(
    ("selector", "terms"),
    [
        ("metadata.name=a", [("metadata.name", "=", "a")]),
        ("metadata.name==a", [("metadata.name", "=", "a")]),
        ("spec.nodeName!=", [("spec.nodeName", "!=", "")]),
        # terms are sorted; escaped commas and equals signs are data
        ("b=2,a=1", [("a", "=", "1"), ("b", "=", "2")]),
        (r"metadata.name=a\,b", [("metadata.name", "=", "a,b")]),
        (r"metadata.name=a\=b\\c", [("metadata.name", "=", "a=b\\c")]),
        # no whitespace trimming: the field is "metadata.name " (then unsupported)
        ("metadata.name =a", [("metadata.name ", "=", "a")]),
        # parentheses mean nothing: each comma splits
        (
            "metadata.namespace!=(,metadata.name=allowed,x=)",
            [
                ("metadata.name", "=", "allowed"),
                ("metadata.namespace", "!=", "("),
                ("x", "=", ")"),
            ],
        ),
    ],
)
def test_field_selector_terms(selector: str, terms: list[tuple[str, str, str]]) -> None:
    assert parse_field_terms(selector) == terms


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
        (r"metadata.name=a\x", "invalid field selector: invalid escape sequence: \\x"),
    ],
)
def test_field_selector_errors(selector: str, message: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_field_terms(selector)
    assert (exc.value.code, exc.value.message) == (400, message)


def test_requires_exact_match_is_the_first_equality() -> None:
    terms = parse_field_terms("metadata.name!=x,metadata.name=b,metadata.name=a")
    assert requires_exact_match(terms, "metadata.name") == "a"  # sorted first
    assert requires_exact_match(parse_field_terms("metadata.name!=a"), "metadata.name") is None


@pytest.mark.parametrize(
    ("value", "watch"),
    [
        (None, False),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("", True),
        ("yes", True),
        ("1", True),
        ("true", True),
        ("no", True),
    ],
)
def test_watch_is_upstreams_bool_for_server_and_authorizer(value: str | None, watch: bool) -> None:
    query = {} if value is None else {"watch": value}
    assert query_bool(query, "watch") is watch
    attributes = request_attributes(user=ADMIN, method="GET", path="/api/v1/pods", query=query)
    assert attributes.verb == ("watch" if watch else "list")


@pytest.mark.parametrize("value", ["nan", "1.5", "", "1e3", "9223372036854775808"])
def test_timeout_seconds_is_an_int64(value: str) -> None:
    with pytest.raises(ApiError) as exc:
        query_int64({"timeoutSeconds": value}, "timeoutSeconds")
    assert exc.value.code == 400
    assert query_int64({"timeoutSeconds": "-5"}, "timeoutSeconds") == -5
