"""Consumable capacity as columns, for DynamicResources' vectorised Filter.

Per device of the plugin's device table: each capacity in milli-units, what the shares of
allocated claims consume of it (kept current from the index's share log), and per request what
one share would take (berth.dra.capacity's rounding, computed once per distinct device
capacity). Whether a share fits is then one comparison over all devices. Only exact values
take this path: a capacity or share that is not a whole number of milli-units below 2^62, or a
request some device refuses with an error, leaves the decision to the allocator's search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from berth.dra.capacity import CapacityError, consumed_for, fits
from berth.objects.dra import Device, DeviceCapacity, RequestSpec

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MILLI_LIMIT = 1 << 62
DeviceID = tuple[str, str, str]


def exact_milli(value: Decimal) -> int | None:
    """The value in milli-units when that is exact and far from int64's limits."""
    milli = value * 1000
    if milli != milli.to_integral_value() or abs(milli) > MILLI_LIMIT:
        return None
    return int(milli)


@dataclass(slots=True)
class _Share:
    ok: BoolArray  # the device has what is asked for and the policy allows the share
    take: dict[str, IntArray]  # milli-units one share consumes, per capacity


@dataclass(slots=True)
class CapacityColumns:
    rows: dict[DeviceID, int]
    devices: Sequence[Device]
    names: list[str]
    value: dict[str, IntArray]  # milli-units, -1 where the device lacks the capacity
    multi: BoolArray  # allows multiple allocations
    inexact: BoolArray  # a capacity is not exact in milli-units: the search decides
    consumed: dict[str, IntArray] = field(default_factory=dict)
    log_at: int = 0
    log_epoch: int = -1
    exact: bool = True  # False once a share's consumption is not exact in milli-units
    shares: dict[tuple[Any, ...], _Share | None] = field(default_factory=dict)

    @classmethod
    def build(cls, ids: Sequence[DeviceID], devices: Sequence[Device]) -> CapacityColumns:
        names = sorted({n for d in devices for n in d.capacities})
        value = {n: np.full(len(devices), -1, dtype=np.int64) for n in names}
        inexact = np.zeros(len(devices), dtype=bool)
        for i, d in enumerate(devices):
            for n, c in d.capacities.items():
                milli = exact_milli(c.value.value)
                if milli is None:
                    inexact[i] = True
                else:
                    value[n][i] = milli
        multi = np.fromiter(
            (d.allow_multiple_allocations is True for d in devices), dtype=bool, count=len(devices)
        )
        return cls({d: i for i, d in enumerate(ids)}, devices, names, value, multi, inexact)

    def follow(
        self,
        log: Sequence[tuple[DeviceID, Mapping[str, Decimal], int]],
        epoch: int,
        current: Mapping[DeviceID, Mapping[str, Decimal]],
    ) -> None:
        """Bring `consumed` up to the index's shares: rebuilt from `current` when the log was
        cut short (a new epoch), else the log's entries since the last call."""
        if epoch != self.log_epoch:
            self.consumed = {n: np.zeros(len(self.devices), dtype=np.int64) for n in self.names}
            self.exact = True
            for device, amounts in current.items():
                self._add(device, amounts, 1)
            self.log_epoch, self.log_at = epoch, len(log)
            return
        for device, amounts, sign in log[self.log_at :]:
            self._add(device, amounts, sign)
        self.log_at = len(log)

    def _add(self, device: DeviceID, amounts: Mapping[str, Decimal], sign: int) -> None:
        row = self.rows.get(device)
        if row is None:
            return
        for name, amount in amounts.items():
            column = self.consumed.get(name)
            if column is None:
                continue  # a capacity the device does not publish (any more): not compared
            milli = exact_milli(amount)
            if milli is None:
                self.exact = False
                continue
            column[row] += sign * milli

    def share(self, key: tuple[Any, ...], spec: RequestSpec, matched: BoolArray) -> _Share | None:
        """What one share of `spec` takes of each matched device; None when some matched
        device refuses the request with an error or a share is not exact (the search then
        decides, and reports the error where upstream does)."""
        if key in self.shares:
            return self.shares[key]
        n = len(self.devices)
        ok = np.zeros(n, dtype=bool)
        take = {name: np.zeros(n, dtype=np.int64) for name in self.names}
        per_shape: dict[tuple[Any, ...], tuple[bool, dict[str, int]] | None] = {}
        result: _Share | None = _Share(ok, take)
        for i in np.flatnonzero(matched).tolist():
            device = self.devices[i]
            shape = tuple(sorted(device.capacities.items()))
            if shape not in per_shape:
                per_shape[shape] = _one_share(spec, device.capacities)
            found = per_shape[shape]
            if found is None:
                result = None
                break
            ok[i], amounts = found
            for name, milli in amounts.items():
                take[name][i] = milli
        self.shares[key] = result
        return result

    def fits(self, share: _Share) -> BoolArray:
        """Devices where one more share fits beside the allocated shares (upstream
        CmpRequestOverCapacity, vectorised)."""
        out = share.ok.copy()
        for name in self.names:
            value = self.value[name]
            out &= (value < 0) | (self.consumed[name] + share.take[name] <= value)
        return out


def _one_share(
    spec: RequestSpec, capacities: Mapping[str, DeviceCapacity]
) -> tuple[bool, dict[str, int]] | None:
    try:
        if not fits(None, spec.capacity, capacities, None):
            return False, {}
        amounts = {}
        for name, cap in capacities.items():
            q = consumed_for((spec.capacity or {}).get(name), cap)
            milli = exact_milli(q.value)
            if milli is None:
                return None
            amounts[name] = milli
        return True, amounts
    except CapacityError:
        return None
