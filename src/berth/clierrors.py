"""The error every `berth` command exits with for input it cannot use: one line on stderr
(`error: FILE: line N: reason`), exit status 2, never a traceback or a usage dump."""

from __future__ import annotations

from typing import IO, Any

import click


class BadInput(click.ClickException):
    """A file or value a command was given that cannot be used (exit status 2)."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)
