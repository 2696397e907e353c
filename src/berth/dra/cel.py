"""The CEL environment of DRA device selectors (upstream dynamic-resource-allocation/cel).

Evaluated with cel-expr-python, the official CEL C++ runtime with its type checker (chosen over
cel-python and the cel-rust binding: see docs/configuration.md for the comparison). Kubernetes'
own CEL libraries that selectors use are added as functions: quantity (`quantity("1Gi")`,
`compareTo`, `isGreaterThan`, `asInteger`, ...), semver (`semver("1.2.3")`, `isGreaterThan`,
`major`, ...), lists (`isSorted`, `sum`, `min`, `max`; the strings extension owns `indexOf`), regex
(`find`, `findAll`) and sets. Quantities and versions travel through CEL as one-key maps, so
`==` between two of them is upstream's semantic equality.

Upstream makes `device.attributes[d]` and `device.capacity[d]` an empty map for a domain the
device lacks; the C++ runtime has no such map, so the domains a selector names as string
literals (and the device's driver) are filled in as empty maps, unless the selector also uses
the map itself (`"d" in device.attributes`, `size(...)`, iteration), where a filled-in domain
would change the answer. Expressions are compiled once and cached.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import semver
from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_math, ext_optional, ext_strings

from berth.objects.dra import Device
from berth.objects.quantity import parse_quantity

QUANTITY_KEY = "__kubernetes.Quantity"
SEMVER_KEY = "__kubernetes.Semver"
# upstream resourceapi.CELSelectorExpressionMaxLength
MAX_EXPRESSION_LENGTH = 10 * 1024
COMPILE_CACHE_SIZE = 1024


class CelRuntimeError(Exception):
    """Evaluating a selector failed (upstream: a CEL runtime error aborts the allocation)."""


# ----- Kubernetes' quantity and semver libraries ----------------------------------------------


def quantity_value(q: dict[str, str]) -> Decimal:
    return Decimal(q[QUANTITY_KEY])


def make_quantity(value: Decimal) -> dict[str, str]:
    return {QUANTITY_KEY: str(value.normalize()) if value else "0"}


def _quantity(text: str) -> dict[str, str]:
    try:
        return make_quantity(parse_quantity(text))
    except (ValueError, InvalidOperation) as exc:
        raise ValueError(f"quantities must match the regular expression: {exc}") from None


def _is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except (ValueError, InvalidOperation):
        return False
    return True


def _version(text: str, normalize: bool = False) -> dict[str, str]:
    if normalize:
        text = _normalize_semver(text)
    try:
        v = semver.Version.parse(text)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return {SEMVER_KEY: str(v)}


def _normalize_semver(text: str) -> str:
    """upstream normalizeAndParse: drop a leading v, pad missing minor/patch with zeros."""
    text = text.removeprefix("v")
    core, sep, rest = re.match(r"([^-+]*)([-+]?)(.*)", text).groups()  # type: ignore[union-attr]
    parts = core.split(".")
    while len(parts) < 3:
        parts.append("0")
    parts = [p.lstrip("0") or "0" for p in parts]
    return ".".join(parts) + sep + rest


def _is_semver(text: str, normalize: bool = False) -> bool:
    try:
        _version(text, normalize)
    except ValueError:
        return False
    return True


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        if QUANTITY_KEY in value:
            return "quantity"
        if SEMVER_KEY in value:
            return "semver"
    raise ValueError("no such overload")


def _compare(a: dict[str, str], b: dict[str, str]) -> int:
    kind = _kind(a)
    if _kind(b) != kind:
        raise ValueError("no such overload")
    if kind == "quantity":
        x, y = quantity_value(a), quantity_value(b)
        return (x > y) - (x < y)
    return int(semver.Version.parse(a[SEMVER_KEY]).compare(b[SEMVER_KEY]))


def _semver_part(part: str) -> Callable[[dict[str, str]], int]:
    def get(v: dict[str, str]) -> int:
        if _kind(v) != "semver":
            raise ValueError("no such overload")
        return int(getattr(semver.Version.parse(v[SEMVER_KEY]), part))

    return get


def _q(v: dict[str, str]) -> Decimal:
    if _kind(v) != "quantity":
        raise ValueError("no such overload")
    return quantity_value(v)


def _as_integer(v: dict[str, str]) -> int:
    value = _q(v)
    if value != value.to_integral_value() or not -(2**63) <= value < 2**63:
        raise ValueError("cannot convert value to integer")
    return int(value)


def _is_integer(v: dict[str, str]) -> bool:
    value = _q(v)
    return value == value.to_integral_value() and -(2**63) <= value < 2**63


def _sign(v: dict[str, str]) -> int:
    value = _q(v)
    return (value > 0) - (value < 0)


def _add(v: dict[str, str], other: Any) -> dict[str, str]:
    x = _q(v)
    y = Decimal(other) if isinstance(other, int) else _q(other)
    return make_quantity(x + y)


def _sub(v: dict[str, str], other: Any) -> dict[str, str]:
    x = _q(v)
    y = Decimal(other) if isinstance(other, int) else _q(other)
    return make_quantity(x - y)


# ----- Kubernetes' lists, regex and sets libraries --------------------------------------------


def _is_sorted(items: list[Any]) -> bool:
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _sum(items: list[Any]) -> Any:
    total: Any = 0
    for x in items:
        total = total + x
    return total


def _min(items: list[Any]) -> Any:
    if not items:
        raise ValueError("min called on empty list")
    return min(items)


def _max(items: list[Any]) -> Any:
    if not items:
        raise ValueError("max called on empty list")
    return max(items)


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _find(text: str, pattern: str) -> str:
    m = _regex(pattern).search(text)
    return m.group(0) if m else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in _regex(pattern).finditer(text)]
    return found if limit < 0 else found[:limit]


T = cel.Type
_QT = T.Map(T.STRING, T.STRING)  # a Quantity or a Semver
_LIST = T.List(T.DYN)


def _fn(name: str, *overloads: tuple[str, Any, list[Any], bool, Callable[..., Any]]) -> Any:
    return cel.FunctionDecl(
        name,
        [
            cel.Overload(oid, return_type=ret, parameters=params, is_member=member, impl=impl)
            for oid, ret, params, member, impl in overloads
        ],
    )


def _functions() -> list[Any]:
    return [
        _fn("quantity", ("string_to_quantity", _QT, [T.STRING], False, _quantity)),
        _fn("isQuantity", ("is_quantity_string", T.BOOL, [T.STRING], False, _is_quantity)),
        _fn("sign", ("quantity_sign", T.INT, [_QT], False, _sign)),
        _fn(
            "isGreaterThan",
            ("k8s_is_greater_than", T.BOOL, [_QT, _QT], True, lambda a, b: _compare(a, b) == 1),
        ),
        _fn(
            "isLessThan",
            ("k8s_is_less_than", T.BOOL, [_QT, _QT], True, lambda a, b: _compare(a, b) == -1),
        ),
        _fn("compareTo", ("k8s_compare_to", T.INT, [_QT, _QT], True, _compare)),
        _fn(
            "asApproximateFloat",
            ("quantity_get_float", T.DOUBLE, [_QT], True, lambda v: float(_q(v))),
        ),
        _fn("asInteger", ("quantity_get_int", T.INT, [_QT], True, _as_integer)),
        _fn("isInteger", ("quantity_is_integer", T.BOOL, [_QT], True, _is_integer)),
        _fn(
            "add",
            ("quantity_add", _QT, [_QT, _QT], True, _add),
            ("quantity_add_int", _QT, [_QT, T.INT], True, _add),
        ),
        _fn(
            "sub",
            ("quantity_sub", _QT, [_QT, _QT], True, _sub),
            ("quantity_sub_int", _QT, [_QT, T.INT], True, _sub),
        ),
        _fn(
            "semver",
            ("string_to_semver", _QT, [T.STRING], False, _version),
            ("string_bool_to_semver", _QT, [T.STRING, T.BOOL], False, _version),
        ),
        _fn(
            "isSemver",
            ("is_semver_string", T.BOOL, [T.STRING], False, _is_semver),
            ("is_semver_string_bool", T.BOOL, [T.STRING, T.BOOL], False, _is_semver),
        ),
        _fn("major", ("semver_major", T.INT, [_QT], True, _semver_part("major"))),
        _fn("minor", ("semver_minor", T.INT, [_QT], True, _semver_part("minor"))),
        _fn("patch", ("semver_patch", T.INT, [_QT], True, _semver_part("patch"))),
        _fn("isSorted", ("list_is_sorted", T.BOOL, [_LIST], True, _is_sorted)),
        _fn("sum", ("list_sum", T.DYN, [_LIST], True, _sum)),
        _fn("min", ("list_min", T.DYN, [_LIST], True, _min)),
        _fn("max", ("list_max", T.DYN, [_LIST], True, _max)),
        _fn("find", ("string_find", T.STRING, [T.STRING, T.STRING], True, _find)),
        _fn(
            "findAll",
            ("string_find_all", T.List(T.STRING), [T.STRING, T.STRING], True, _find_all),
            ("string_find_all_n", T.List(T.STRING), [T.STRING, T.STRING, T.INT], True, _find_all),
        ),
        _fn(
            "sets.contains",
            (
                "list_sets_contains",
                T.BOOL,
                [_LIST, _LIST],
                False,
                lambda a, b: all(x in a for x in b),
            ),
        ),
        _fn(
            "sets.equivalent",
            (
                "list_sets_equivalent",
                T.BOOL,
                [_LIST, _LIST],
                False,
                lambda a, b: all(x in b for x in a) and all(x in a for x in b),
            ),
        ),
        _fn(
            "sets.intersects",
            (
                "list_sets_intersects",
                T.BOOL,
                [_LIST, _LIST],
                False,
                lambda a, b: any(x in b for x in a),
            ),
        ),
    ]


@functools.cache
def _env() -> Any:
    return cel.NewEnv(
        variables={"device": T.Map(T.STRING, T.DYN)},
        extensions=[
            ext_strings.ExtStrings(),
            ext_bindings.ExtBindings(),
            ext_math.ExtMath(),
            ext_optional.ExtOptional(),
        ],
        functions=_functions(),
    )


# ----- compiling and evaluating ---------------------------------------------------------------

_STRING_LITERAL = re.compile(
    r"""(?P<prefix>[rRbB]{0,2})(?P<q>'''|\"\"\"|'|")(?P<body>(?:\\.|(?!(?P=q)).)*?)(?P=q)""",
    re.DOTALL,
)
_MAP_USE = re.compile(r"device\s*\.\s*(attributes|capacity)\b\s*(?P<next>.?)")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled selector, or the compile error upstream would report for it."""

    expression: str
    error: str | None
    program: Any = None
    prefill_attributes: tuple[str, ...] = ()
    prefill_capacity: tuple[str, ...] = ()
    attributes_as_map: bool = False  # the selector uses device.attributes itself
    capacity_as_map: bool = False

    def matches(self, device: Device, driver: str) -> bool:
        """upstream CompilationResult.DeviceMatches; raises CelRuntimeError."""
        assert self.program is not None, self.error
        result = self.program.eval(data={"device": self.activation(device, driver)})
        kind = result.type()
        if kind == T.ERROR:
            raise CelRuntimeError(str(result.value()))
        if kind != T.BOOL:
            raise CelRuntimeError(
                f"CEL result of type {kind.name().lower()} could not be converted to bool"
            )
        return bool(result.value())

    def activation(self, device: Device, driver: str) -> dict[str, Any]:
        attributes: dict[str, dict[str, Any]] = {}
        for name, (kind, value) in device.attributes.items():
            if kind == "unknown":
                raise CelRuntimeError(f"attribute {name}: unsupported attribute value")
            domain, ident = _qualified(name, driver)
            attributes.setdefault(domain, {})[ident] = _attribute_value(kind, value)
        capacity: dict[str, dict[str, Any]] = {}
        for name, amount in device.capacity.items():
            domain, ident = _qualified(name, driver)
            capacity.setdefault(domain, {})[ident] = make_quantity(amount)
        if not self.attributes_as_map:
            for domain in (*self.prefill_attributes, driver):
                attributes.setdefault(domain, {})
        if not self.capacity_as_map:
            for domain in (*self.prefill_capacity, driver):
                capacity.setdefault(domain, {})
        return {
            "driver": driver,
            "allowMultipleAllocations": bool(device.allow_multiple_allocations),
            "attributes": attributes,
            "capacity": capacity,
        }


def _qualified(name: str, driver: str) -> tuple[str, str]:
    domain, sep, ident = name.partition("/")
    return (domain, ident) if sep else (driver, name)


def _attribute_value(kind: str, value: Any) -> Any:
    if kind == "version":
        return {SEMVER_KEY: value}
    if kind == "versions":
        return [{SEMVER_KEY: v} for v in value]
    if kind in ("ints", "bools", "strings"):
        return list(value)
    return value


def _literals(expression: str) -> tuple[list[str], str]:
    """The string literals of an expression, and the expression with them blanked out."""
    found: list[str] = []

    def blank(m: re.Match[str]) -> str:
        if "b" not in m.group("prefix").lower():
            body = m.group("body")
            if "r" not in m.group("prefix").lower():
                with contextlib.suppress(UnicodeDecodeError):
                    body = body.encode("latin-1", "backslashreplace").decode("unicode_escape")
            found.append(body)
        return '""'

    return found, _STRING_LITERAL.sub(blank, expression)


@functools.lru_cache(maxsize=COMPILE_CACHE_SIZE)
def compile_selector(expression: str) -> Compiled:
    """Compile a selector once (cached); a failure is returned, as upstream's cache does."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        return Compiled(
            expression, f"compilation failed: expression longer than {MAX_EXPRESSION_LENGTH}"
        )
    env = _env()  # a failure here is a bug in this module: let it raise
    try:
        program = env.compile(expression)
    except RuntimeError as exc:
        # the C++ runtime's status code, which cel-go's message does not carry
        text = str(exc).removeprefix("INVALID_ARGUMENT: ").removesuffix(" [INVALID_ARGUMENT]")
        return Compiled(expression, f"compilation failed: {text}")
    out = program.return_type()
    if out != T.BOOL and out != T.DYN:
        return Compiled(
            expression,
            f"must evaluate to bool or the unknown type, not {out.name().lower()}",
        )
    literals, bare = _literals(expression)
    as_map = {"attributes": False, "capacity": False}
    for m in _MAP_USE.finditer(bare):
        if m.group("next") != "[":
            as_map[m.group(1)] = True
    prefill = tuple(dict.fromkeys(literals))
    return Compiled(
        expression,
        None,
        program,
        prefill_attributes=prefill,
        prefill_capacity=prefill,
        attributes_as_map=as_map["attributes"],
        capacity_as_map=as_map["capacity"],
    )
