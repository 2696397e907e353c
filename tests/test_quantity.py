"""Quantities parse as Kubernetes parses them (apimachinery resource.Quantity)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth.objects.quantity import (
    canonical_quantity,
    int_value,
    milli_value,
    parse_formatted_quantity,
    parse_quantity,
    resource_value,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1.5Gi", Decimal(1536 * 1024 * 1024)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("0.5", Decimal("0.5")),
        ("5k", Decimal(5000)),
        ("1Ki", Decimal(1024)),
        ("128Mi", Decimal(128 * 1024 * 1024)),
        ("2M", Decimal(2_000_000)),
        ("1.", Decimal(1)),
        (".5", Decimal("0.5")),
        ("+1", Decimal(1)),
        ("500u", Decimal("0.0005")),
        ("7n", Decimal("0.000000007")),
        ("1e-3", Decimal("0.001")),
    ],
)
def test_valid_quantities(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "NaN", "Infinity", "1_000", " 1", "1 ", "1ki", "1KB", "m", "1.2.3", "0x10", "1e999"],
)
def test_invalid_quantities(text: str) -> None:
    with pytest.raises(ValueError, match=r"quantities must match|exponent out of range"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("resource", "text", "stored"),
    [
        ("cpu", "100m", 100),
        ("cpu", "0.1", 100),
        ("cpu", "2", 2000),
        ("cpu", "0.0001", 1),  # MilliValue rounds up
        ("memory", "1.5Gi", 1610612736),
        ("memory", "0.5", 1),  # Value rounds up
        ("memory", "1e3", 1000),
        ("nvidia.com/gpu", "2", 2),
    ],
)
def test_stored_units(resource: str, text: str, stored: int) -> None:
    assert resource_value(resource, text) == stored


@given(st.integers(min_value=0, max_value=10**12))
def test_integers_round_trip(n: int) -> None:
    assert int_value(str(n)) == n
    assert milli_value(f"{n}m") == n


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from([("Ki", 1024), ("Mi", 1024**2), ("Gi", 1024**3), ("k", 1000), ("M", 10**6)]),
)
def test_suffixes_multiply(n: int, suffix: tuple[str, int]) -> None:
    name, factor = suffix
    assert int_value(f"{n}{name}") == n * factor


@given(st.text(alphabet="0123456789.eEkKMGiu+-_ x", min_size=1, max_size=8))
def test_only_value_errors_and_finite_results(text: str) -> None:
    try:
        value = parse_quantity(text)
    except ValueError as exc:
        assert "quantities must match" in str(exc) or "exponent" in str(exc)
    else:
        assert value.is_finite()


def test_amounts_too_large_for_the_node_columns_are_refused() -> None:
    """Amounts live in int64 columns and are summed per node: one beyond 2^62 (found by the
    extender fuzz test as an OverflowError, a 500) is a clear error for the object instead."""
    import pytest

    from berth.objects.quantity import MAX_AMOUNT, resource_value

    assert resource_value("cpu", "4611686018427387") == 4611686018427387000  # < 2^62 millicores
    assert resource_value("memory", str(MAX_AMOUNT)) == MAX_AMOUNT
    for resource, value in (("cpu", 9_223_372_036_854_776), ("memory", "8Ei"), ("pods", 2**63)):
        with pytest.raises(ValueError, match="too large"):
            resource_value(resource, value)


# apimachinery's TestQuantityString: (value, scale, format) -> canonical form, and another
# spelling of the same quantity that parses to it
QUANTITY_STRING = [
    (1024 * 1024 * 1024, 0, "BinarySI", "1Gi", "1024Mi"),
    (300 * 1024 * 1024, 0, "BinarySI", "300Mi", "307200Ki"),
    (6 * 1024, 0, "BinarySI", "6Ki", ""),
    (1001 * 1024 * 1024 * 1024, 0, "BinarySI", "1001Gi", "1025024Mi"),
    (1024 * 1024 * 1024 * 1024, 0, "BinarySI", "1Ti", "1024Gi"),
    (5, 0, "BinarySI", "5", "5000m"),
    (500, -3, "BinarySI", "500m", "0.5"),
    (1, 9, "DecimalSI", "1G", "1000M"),
    (1000, 6, "DecimalSI", "1G", "0.001T"),
    (1000000, 3, "DecimalSI", "1G", ""),
    (1000000000, 0, "DecimalSI", "1G", ""),
    (1, -3, "DecimalSI", "1m", "1000u"),
    (80, -3, "DecimalSI", "80m", ""),
    (1080, -3, "DecimalSI", "1080m", "1.08"),
    (108, -2, "DecimalSI", "1080m", "1080000000n"),
    (10800, -4, "DecimalSI", "1080m", ""),
    (300, 6, "DecimalSI", "300M", ""),
    (1, 12, "DecimalSI", "1T", ""),
    (1234567, 6, "DecimalSI", "1234567M", ""),
    (1234567, -3, "BinarySI", "1234567m", ""),
    (3, 3, "DecimalSI", "3k", ""),
    (1025, 0, "BinarySI", "1025", ""),
    (0, 0, "DecimalSI", "0", ""),
    (0, 0, "BinarySI", "0", ""),
    (1, 9, "DecimalExponent", "1e9", ".001e12"),
    (1, -3, "DecimalExponent", "1e-3", "0.001e0"),
    (1, -9, "DecimalExponent", "1e-9", "1000e-12"),
    (80, -3, "DecimalExponent", "80e-3", ""),
    (300, 6, "DecimalExponent", "300e6", ""),
    (1, 12, "DecimalExponent", "1e12", ""),
    (1, 3, "DecimalExponent", "1e3", ""),
    (3, 3, "DecimalExponent", "3e3", ""),
    (3, 3, "DecimalSI", "3k", ""),
    (0, 0, "DecimalExponent", "0", "00"),
    (1, -9, "DecimalSI", "1n", ""),
    (80, -9, "DecimalSI", "80n", ""),
    (1080, -9, "DecimalSI", "1080n", ""),
    (108, -8, "DecimalSI", "1080n", ""),
    (10800, -10, "DecimalSI", "1080n", ""),
    (1, -6, "DecimalSI", "1u", ""),
    (80, -6, "DecimalSI", "80u", ""),
    (1080, -6, "DecimalSI", "1080u", ""),
]


@pytest.mark.parametrize(("value", "scale", "fmt", "expect", "alternate"), QUANTITY_STRING)
def test_quantity_string(value: int, scale: int, fmt: str, expect: str, alternate: str) -> None:
    assert canonical_quantity(Decimal(value).scaleb(scale), fmt) == expect
    assert str(parse_formatted_quantity(expect)) == expect
    if alternate:
        assert str(parse_formatted_quantity(alternate)) == expect


# apimachinery's TestQuantityParseEmit, with and without a minus sign
PARSE_EMIT = [
    ("1Ki", "1Ki"),
    ("1Mi", "1Mi"),
    ("1Gi", "1Gi"),
    ("1024Mi", "1Gi"),
    ("1000M", "1G"),
    (".001Ki", "1024m"),
    (".000001Ki", "1024u"),
    (".000000001Ki", "1024n"),
    (".000000000001Ki", "2n"),
]


@pytest.mark.parametrize(("text", "expect"), PARSE_EMIT)
def test_quantity_parse_emit(text: str, expect: str) -> None:
    assert str(parse_formatted_quantity(text)) == expect
    assert str(parse_formatted_quantity("-" + text)) == "-" + expect


# What apimachinery v0.37.2's Quantity.String prints for these (checked with Go): 10^21 has no
# DecimalSI suffix and is written "1", a binary quantity is capped at int64's maximum.
GO_PRINTS = [
    ("1000000000000000000000", "1"),
    ("1000000000000000000002", "1000000000000000000002"),
    ("8Ei", "9223372036854775807"),
    ("1.0000000001", "1000000001n"),
    ("12e6", "12e6"),
]


@pytest.mark.parametrize(("text", "expect"), GO_PRINTS)
def test_quantities_print_as_go_prints_them(text: str, expect: str) -> None:
    assert str(parse_formatted_quantity(text)) == expect
