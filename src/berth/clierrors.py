"""How every `berth` command fails: one line on stderr (`error: THING: reason`), exit status 2
for unusable input (flags, files, configuration) and 1 for what went wrong at run time (a busy
port, an unreachable server), never a traceback unless `berth --debug` asks for one.

`BerthGroup.main` is the one place where an exception becomes that line. Errors are recognised
by class name along their MRO (`EXIT_CODES`), so neither this module nor the command line imports
the libraries whose errors it explains (aiohttp, urllib3, kubernetes) until they raised one.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import IO, Any, NoReturn

import click

USAGE = 2  # the command cannot run with what it was given
RUNTIME = 1  # it ran and something outside it failed
INTERRUPTED = 130

DEBUG_ENV = "BERTH_DEBUG"


class CommandError(click.ClickException):
    """A failure a command reports in one line (exit status 1: at run time)."""

    exit_code = RUNTIME

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class BadInput(CommandError):
    """A file or value a command was given that cannot be used (exit status 2)."""

    exit_code = USAGE


# Exceptions raised below the command line, by "module.QualName" of a class in their MRO: the
# exit status (2: the user's input; 1: at run time). Messages are the exception's own.
EXIT_CODES: dict[str, int] = {
    "berth.config.errors.ConfigError": USAGE,
    "berth.safeload.InputError": USAGE,
    "berth.dump.DumpError": USAGE,
    "berth.secretfile.TokenError": USAGE,
    "berth.bench.workload.WorkloadError": USAGE,
    "berth.listener.TLSFileError": USAGE,
    "berth.listener.ListenError": RUNTIME,
    "berth.bench.errors.BenchError": RUNTIME,
    "berth.metrics.annotate.AnnotateError": RUNTIME,
    "berth.upstream.errors.UpstreamError": RUNTIME,
    # a kubeconfig that cannot be used (the sync and the asyncio client's own class)
    "kubernetes.config.config_exception.ConfigException": USAGE,
    "kubernetes.aio.config.config_exception.ConfigException": USAGE,
}


def _class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _unwrap(exc: BaseException) -> BaseException:
    """The one exception inside (nested) exception groups of one member."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _network_reason(exc: BaseException) -> str | None:
    """A connection failure of aiohttp or urllib3 (the two HTTP stacks of the Kubernetes
    clients) as `cannot reach HOST:PORT: reason`, or None for anything else."""
    names = {_class_key(c) for c in type(exc).__mro__}
    if "aiohttp.client_exceptions.ClientConnectorError" in names:
        key = getattr(exc, "_conn_key", None)
        os_error = getattr(exc, "os_error", None)
        reason = getattr(os_error, "strerror", None) or str(os_error or exc)
        where = f"{key.host}:{key.port}" if key is not None else "the server"
        return f"cannot reach {where}: {reason}"
    if "urllib3.exceptions.MaxRetryError" in names:
        pool = getattr(exc, "pool", None)
        where = f"{pool.host}:{pool.port}" if pool is not None else "the server"
        reason = getattr(exc, "reason", None) or exc
        text = str(reason)
        # urllib3 says "<...NewConnectionError object at 0x..>: Failed to establish ...: [Errno
        # 111] Connection refused"; the last part is the reason.
        return f"cannot reach {where}: {_one_line(text.rsplit(': ', 1)[-1])}"
    if "aiohttp.client_exceptions.ServerTimeoutError" in names or isinstance(exc, TimeoutError):
        return f"timed out: {_one_line(str(exc))}" if str(exc) else "timed out"
    return None


def describe(exc: BaseException) -> tuple[list[str], int]:
    """What to print for `exc` (one line each, without the `error: ` prefix) and the exit
    status: the error's own words for the errors Berth and its libraries raise on purpose,
    the type and message for anything else (a bug: `--debug` shows where)."""
    exc = _unwrap(exc)
    if isinstance(exc, click.ClickException):
        return [_one_line(exc.format_message())], exc.exit_code
    for cls in type(exc).__mro__:
        code = EXIT_CODES.get(_class_key(cls))
        if code is None:
            continue
        problems = getattr(exc, "problems", None)
        if isinstance(problems, list) and problems:  # ConfigError: every problem, one each
            return [_one_line(str(p)) for p in problems], code
        return [_one_line(str(exc)) or type(exc).__name__], code
    network = _network_reason(exc)
    if network is not None:
        return [network], RUNTIME
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return [f"{where}{exc.strerror}"], RUNTIME
    text = _one_line(str(exc))
    return [
        f"unexpected {type(exc).__name__}{': ' + text if text else ''} "
        f"(run `berth --debug ...` for the traceback)"
    ], RUNTIME


def _usage_line(exc: click.UsageError) -> str:
    """click's usage error (usage, hint, message on four lines) as one line."""
    message = _one_line(exc.format_message())
    if exc.ctx is not None:
        return f"{exc.ctx.command_path}: {message} (see '{exc.ctx.command_path} --help')"
    return message


class BerthGroup(click.Group):
    """A click group whose commands fail in one line (see the module docstring).

    `--debug` (or BERTH_DEBUG=1) prints the traceback before the line."""

    debug = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Option(
                ["--debug"],
                is_flag=True,
                envvar=DEBUG_ENV,
                expose_value=False,
                is_eager=True,
                callback=self._set_debug,
                help=f"Show the traceback of an error (also ${DEBUG_ENV}=1).",
            )
        )

    def _set_debug(self, ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            self.debug = True

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except SystemExit:
            raise
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # `berth` alone: the help, as click prints it
            sys.exit(USAGE)
        except click.UsageError as exc:
            self._report([_usage_line(exc)], exc.exit_code, exc)
        except (click.Abort, KeyboardInterrupt):
            click.echo("error: interrupted", err=True)
            sys.exit(INTERRUPTED)
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(RUNTIME)
        except BaseException as exc:  # every error ends in one line
            lines, code = describe(exc)
            self._report(lines, code, exc)
        sys.exit(result if isinstance(result, int) else 0)

    def _report(self, lines: list[str], code: int, exc: BaseException) -> NoReturn:
        if self.debug or _env_debug():
            traceback.print_exception(exc, file=sys.stderr)
        for line in lines:
            click.echo(f"error: {line}", err=True)
        sys.exit(code)


def _env_debug() -> bool:
    import os

    return os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def _quiet_stdout() -> None:
    """The reader of stdout went away (`berth simulate ... | head`): say nothing more."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def require_temp_dir(purpose: str) -> None:
    """Fail in one line, before anything starts, when no temporary directory is writable
    (a read-only root file system without $TMPDIR or a tmpfs on /tmp)."""
    import tempfile

    try:
        tempfile.gettempdir()
    except FileNotFoundError:
        raise CommandError(
            f"{purpose} needs a writable temporary directory and none of $TMPDIR, /tmp, "
            "/var/tmp, /usr/tmp or the current directory is writable: set TMPDIR to one (in a "
            "container with a read-only root, mount a tmpfs or an emptyDir on /tmp)"
        ) from None
