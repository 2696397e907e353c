"""Files that hold secrets (kubeconfigs with tokens, private keys, the cluster's database) and
tokens read from files or the environment.

A secret file is created with mode 0600 from its first byte (never written and then restricted,
which leaves a window in which anyone may read it) and replaced atomically, so a reader never
sees half a file. Tokens come from a file or an environment variable so they stay off argv
(visible to every user in `ps`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter (created so, or tightened)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    return path


def create_private(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist; tighten it if it does."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return
    os.close(fd)


def write_private(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` (mode 0600), atomically: a temporary file in the same directory,
    created 0600, then renamed over `path`."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


class TokenError(ValueError):
    """A token source that cannot be used; the message is one line for users."""


def read_token(*, value: str | None, file: str | Path | None, what: str) -> str | None:
    """A token from the flag or environment (`value`) or from `file` (first line, trimmed);
    None when neither is given. Both at once, or an empty token, is an error."""
    if value is not None and file is not None:
        raise TokenError(f"{what}: give the token or a file, not both")
    if file is not None:
        try:
            text = Path(file).read_text()
        except OSError as exc:
            raise TokenError(f"{what} file {file}: cannot read: {exc.strerror}") from None
        lines = text.strip().splitlines()
        value = lines[0].strip() if lines else ""
        if not value:
            raise TokenError(f"{what} file {file}: empty")
        return value
    if value is not None and not value.strip():
        raise TokenError(f"{what}: empty")
    return value.strip() if value is not None else None
