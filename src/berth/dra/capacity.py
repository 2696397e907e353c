"""Consumable capacity: how much of a shared device's capacity one allocation consumes.

A transcription of upstream's structured/internal/incubating/consumable_capacity.go with 1.37's
default gates: DRAConsumableCapacity on, DRAFractionalCapacityRange off (beta in 1.37, but on by
default only with --min-compatibility-version=1.37, and components default to 1.36: steps are
counted in whole units, Quantity.Value). A device that allows
multiple allocations is shared by several claims; each share consumes what its request asks
for, rounded up to the capacity's requestPolicy (validRange steps, validValues), or the
policy's default (the whole capacity without one) when it asks for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal

from berth.objects.dra import CapacityPolicy, DeviceCapacity
from berth.objects.quantity import MAX_INT64, Quantity


class CapacityError(Exception):
    """A capacity the allocator cannot act on: the allocation is aborted, not the device
    skipped (upstream errCapacityRequestNotRepresentable, errNegativeCapacity)."""


# DRAFractionalCapacityRange as 1.37's components run by default (see above)
FRACTIONAL_DEFAULT = False
_NOT_REPRESENTABLE = "capacity request cannot be represented in the device's range arithmetic"


def _value(q: Quantity) -> int:
    """upstream Quantity.Value: whole units, rounded up."""
    return int(q.value.to_integral_value(rounding=ROUND_CEILING))


def _milli(q: Quantity) -> int:
    """upstream Quantity.MilliValue."""
    return int((q.value * 1000).to_integral_value(rounding=ROUND_CEILING))


def _safe_milli(q: Quantity) -> int | None:
    """upstream safeMilliValue: the milli value when the conversion is lossless."""
    milli = _milli(q)
    if abs(milli) > MAX_INT64 or Decimal(milli) / 1000 != q.value:
        return None
    return milli


def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncated toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _go_rem(a: int, b: int) -> int:
    return a - b * _go_div(a, b)


Range = tuple[Quantity | None, Quantity | None, Quantity | None]  # validRange (min, max, step)


def _use_milli(valid_range: Range, fractional: bool) -> bool:
    """upstream useMilli: with fractional ranges (DRAFractionalCapacityRange), milli-value
    arithmetic when every bound has a lossless milli value and the step is at least 1m."""
    if not fractional:
        return False
    for i, q in enumerate(valid_range):
        if q is None:
            continue
        milli = _safe_milli(q)
        if milli is None:
            return False
        if i == 2 and milli < 1:
            return False
    return True


def _round_up_range(requested: Quantity, valid_range: Range, fractional: bool) -> Quantity:
    """upstream roundUpRange: at least min, then up to the next step from min."""
    low, _, step = valid_range
    assert low is not None
    if requested.value < low.value:
        return low
    if step is None:
        return requested
    if _use_milli(valid_range, fractional):
        requested_milli = _safe_milli(requested)
        if requested_milli is None:
            raise CapacityError(
                f"{_NOT_REPRESENTABLE}: request {requested} is not a representable milli value"
            )
        step_milli, min_milli = _milli(step), _milli(low)
        added = requested_milli - min_milli
        n = _go_div(added, step_milli)
        if _go_rem(added, step_milli) != 0:
            n += 1
        if n > _go_div(MAX_INT64 - min_milli, step_milli):
            raise CapacityError(
                f"{_NOT_REPRESENTABLE}: rounding request {requested} up to the next step passes "
                "the milli-value range"
            )
        value = min_milli + step_milli * n
        if value % 1000 == 0:
            return Quantity(Decimal(value // 1000), step.format)
        return Quantity(Decimal(value) / 1000, step.format)
    if requested.value > MAX_INT64:
        raise CapacityError(f"{_NOT_REPRESENTABLE}: request {requested} exceeds MaxInt64")
    requested_int, step_int, min_int = _value(requested), _value(step), _value(low)
    if step_int == 0:
        raise CapacityError(f"{_NOT_REPRESENTABLE}: step {step} is zero")
    added = requested_int - min_int
    n = _go_div(added, step_int)
    if _go_rem(added, step_int) != 0:
        n += 1
    if min_int >= 0 and n > _go_div(MAX_INT64 - min_int, step_int):
        raise CapacityError(
            f"{_NOT_REPRESENTABLE}: rounding request {requested} up to the next step passes "
            "MaxInt64"
        )
    return Quantity(Decimal(min_int + step_int * n), step.format)


def _round_up_valid_values(requested: Quantity, values: tuple[Quantity, ...]) -> Quantity:
    """upstream roundUpValidValues: the first valid value at least the request (sorted by
    validation), the request itself past the last."""
    for v in values:
        if requested.value <= v.value:
            return v
    return requested


def consumed_for(
    requested: Quantity | None, capacity: DeviceCapacity, fractional: bool = FRACTIONAL_DEFAULT
) -> Quantity:
    """upstream calculateConsumedCapacity."""
    policy = capacity.policy
    if requested is None:
        if policy is not None and policy.default is not None:
            return policy.default
        return capacity.value
    if policy is None:
        return requested
    if policy.valid_range is not None and policy.valid_range[0] is not None:
        return _round_up_range(requested, policy.valid_range, fractional)
    if policy.valid_values is not None:
        return _round_up_valid_values(requested, policy.valid_values)
    return requested


def _violates_range(requested: Quantity, valid_range: Range, fractional: bool) -> bool:
    low, high, step = valid_range
    if high is not None and requested.value > high.value:
        return True
    if step is not None:
        if _use_milli(valid_range, fractional):
            milli = _safe_milli(requested)
            if milli is None:
                return True
            value, step_v, low_v = milli, _milli(step), _milli(low) if low is not None else 0
        else:
            value, step_v = _value(requested), _value(step)
            low_v = _value(low) if low is not None else 0
        if step_v == 0 or _go_rem(value - low_v, step_v) != 0:
            return True
    return False


def _violates_policy(requested: Quantity, policy: CapacityPolicy | None, fractional: bool) -> bool:
    """upstream violatesPolicy: the policy's default is always allowed; otherwise within the
    range, on a step from its min, or one of the valid values."""
    if policy is None:
        return False
    if policy.default is not None and requested.value == policy.default.value:
        return False
    if policy.valid_range is not None:
        return _violates_range(requested, policy.valid_range, fractional)
    if policy.valid_values:
        return not any(requested.value == v.value for v in policy.valid_values)
    return False


def fits(
    consumed: Mapping[str, Decimal] | None,
    requests: Mapping[str, Quantity] | None,
    capacities: Mapping[str, DeviceCapacity],
    allocating: Mapping[str, Decimal] | None,
    *,
    fractional: bool = FRACTIONAL_DEFAULT,
) -> bool:
    """upstream CmpRequestOverCapacity: whether one more share asking for `requests` fits
    beside the capacity already `consumed` (allocated claims) and `allocating` (this attempt);
    raises CapacityError for a request no device could take."""
    if requests and any(name not in capacities for name in requests):
        return False  # this device lacks a requested capacity: another may have it
    shares: dict[str, Quantity] = {}
    for name in sorted(capacities):
        share = _consumed(name, (requests or {}).get(name), capacities[name], fractional)
        if share.value < 0:
            raise CapacityError(f'capacity "{name}": capacity value is negative')
        shares[name] = share
    for name in sorted(capacities):
        cap, share = capacities[name], shares[name]
        if _violates_policy(share, cap.policy, fractional):
            return False
        total = share.value
        if consumed is not None:
            total += consumed.get(name, Decimal(0))
        if allocating is not None:
            total += allocating.get(name, Decimal(0))
        if total > cap.value.value:
            return False
    return True


def consumed_capacity(
    requests: Mapping[str, Quantity] | None,
    capacities: Mapping[str, DeviceCapacity],
    *,
    fractional: bool = FRACTIONAL_DEFAULT,
) -> dict[str, Quantity]:
    """upstream GetConsumedCapacityFromRequest: what one share consumes of every capacity."""
    return {
        name: _consumed(name, (requests or {}).get(name), cap, fractional)
        for name, cap in capacities.items()
    }


def _consumed(
    name: str, requested: Quantity | None, capacity: DeviceCapacity, fractional: bool
) -> Quantity:
    try:
        return consumed_for(requested, capacity, fractional)
    except CapacityError as exc:
        raise CapacityError(f'capacity "{name}": {exc}') from None
