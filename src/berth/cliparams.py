"""Command-line value types shared by the `berth` commands: listen addresses, hosts, ports and
resource quantities, checked while the flags are parsed so a bad value is a usage error (exit 2)
that names the flag, not a failure deep inside a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    _StrParam = click.ParamType[str]
else:  # click before 8.2 has no generic ParamType
    _StrParam = click.ParamType


class Address(_StrParam):
    """`host:port`, `[::1]:port` or `:port`, port 0-65535; '' is kept when `allow_empty`."""

    name = "host:port"

    def __init__(self, *, allow_empty: bool = False) -> None:
        self.allow_empty = allow_empty

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from berth.telemetry import parse_address

        text = str(value)
        if text == "" and self.allow_empty:
            return text
        try:
            parse_address(text)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return text


class Host(_StrParam):
    """An IP address or a host name."""

    name = "host"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from berth.telemetry import check_host

        try:
            return check_host(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Quantity(_StrParam):
    """A Kubernetes resource quantity ("32", "500m", "128Gi"), kept as written."""

    name = "quantity"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from berth.objects.quantity import parse_quantity

        try:
            if parse_quantity(str(value)) < 0:
                self.fail(f"{value!r} is negative", param, ctx)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


PORT = click.IntRange(min=0, max=65535)
ADDRESS = Address()
ADDRESS_OR_EMPTY = Address(allow_empty=True)
HOST = Host()
QUANTITY = Quantity()
