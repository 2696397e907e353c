"""Resource quantities ("100m", "1.5Gi", "1e3") parsed exactly as Kubernetes parses them.

The arithmetic is the official client's `parse_quantity` (Decimal, exact); this module adds
upstream's grammar check, which that function does not do (Python's Decimal would otherwise
accept "NaN", "1_000" or " 1"), and upstream's rounding: CPU in millicores and everything else
in whole units, both rounded up as `Quantity.MilliValue()` / `Quantity.Value()` do.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal, localcontext
from typing import cast

from kubernetes.utils import quantity as _k8s_quantity

# apimachinery/pkg/api/resource/quantity.go: <signedNumber><suffix>, where suffix is a binary SI
# suffix, a decimal SI suffix or a decimal exponent (e|E followed by a signed integer).
_GRAMMAR = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)

# The message the API server gives for a malformed quantity, so users recognise it.
_UPSTREAM_MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)

# Kubernetes quantities are bounded (int64 milli-values); refuse absurd exponents before Decimal
# tries to build a gigantic number.
_MAX_EXPONENT = 30


def parse_quantity(value: str | int | float) -> Decimal:
    """Return the exact value of a quantity; raise ValueError naming the problem otherwise."""
    if isinstance(value, bool):
        raise ValueError(_UPSTREAM_MESSAGE)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"a quantity must be a string or a number, not {type(value).__name__}")
    text = value
    if not _GRAMMAR.fullmatch(text):
        raise ValueError(f"{text!r}: {_UPSTREAM_MESSAGE}")
    exp = re.search(r"[eE]([+-]?[0-9]+)$", text)
    if exp and abs(int(exp.group(1))) > _MAX_EXPONENT:
        raise ValueError(f"{text!r}: exponent out of range")
    return cast(Decimal, _k8s_quantity.parse_quantity(text))  # type: ignore[no-untyped-call]


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def milli_value(value: str | int | float) -> int:
    """The quantity in thousandths, rounded up (upstream `Quantity.MilliValue`)."""
    return _ceil(parse_quantity(value) * 1000)


def int_value(value: str | int | float) -> int:
    """The quantity in whole units, rounded up (upstream `Quantity.Value`)."""
    return _ceil(parse_quantity(value))


# Amounts are kept in int64 columns and summed per node: a value above this (4.6e15 cores or
# 4 EiB, nothing a real node has) is refused rather than allowed to overflow a sum.
MAX_AMOUNT = 1 << 62


def resource_value(resource: str, value: str | int | float) -> int:
    """The integer Berth stores for a resource: millicores for cpu, whole units otherwise."""
    amount = milli_value(value) if resource == "cpu" else int_value(value)
    if abs(amount) > MAX_AMOUNT:
        unit = "millicores" if resource == "cpu" else "units"
        raise ValueError(f"{value!r} is too large: over 2^62 {unit}")
    return amount


# ----- quantities with their format, printed as apimachinery prints them -----------------------

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"
_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P"}
_DECIMAL_SUFFIXES[18] = "E"
_NANO = Decimal("1e-9")
MAX_INT64 = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Quantity:
    """A quantity's exact value and its format (upstream resource.Quantity's Format), which
    decides how it is written back: str() is upstream's canonical form (`Quantity.String`)."""

    value: Decimal
    format: str = DECIMAL_SI

    def __str__(self) -> str:
        return canonical_quantity(self.value, self.format)


def parse_formatted_quantity(value: str | int | float) -> Quantity:
    """upstream ParseQuantity: the value (rounded up to nano units) and the format its suffix
    implies."""
    amount = parse_quantity(value)
    fmt = DECIMAL_SI
    if isinstance(value, str):
        if value.endswith("i"):
            fmt = BINARY_SI
        elif re.search(r"[eE][+-]?[0-9]+$", value):
            fmt = DECIMAL_EXPONENT
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9:
        with localcontext() as ctx:
            ctx.prec = 60
            amount = amount.quantize(_NANO, rounding=ROUND_UP)
    if fmt == BINARY_SI and amount > MAX_INT64:
        amount = Decimal(MAX_INT64)  # upstream caps binary quantities at its int64 maximum
    if fmt == BINARY_SI and 0 < abs(amount) < 1:
        fmt = DECIMAL_SI
    return Quantity(amount, fmt)


def canonical_quantity(value: Decimal, fmt: str) -> str:
    """upstream Quantity.CanonicalizeBytes: a binary quantity in Ki/Mi/... when it is a whole
    number of at least 1024, a decimal one with the SI suffix (or exponent) of the largest
    multiple of three that keeps the mantissa whole."""
    if value == 0:
        return "0"
    if fmt == BINARY_SI:
        if -1024 < value < 1024:
            fmt = DECIMAL_SI
        else:
            rounded = value.to_integral_value(rounding=ROUND_UP)
            if rounded != value:
                fmt = DECIMAL_SI
            else:
                amount, times = int(rounded), 0
                while amount % 1024 == 0:
                    amount //= 1024
                    times += 1
                suffix = _BINARY_SUFFIXES[times] if times < len(_BINARY_SUFFIXES) else ""
                return f"{amount}{suffix}"
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)) or "0")
    shift = exponent % 3
    mantissa *= 10**shift
    exponent -= shift
    number = f"-{mantissa}" if sign else str(mantissa)
    if fmt == DECIMAL_EXPONENT:
        return number if exponent == 0 else f"{number}e{exponent}"
    return number + _DECIMAL_SUFFIXES.get(exponent, "")
