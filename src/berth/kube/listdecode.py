"""A list response decoded one item at a time, for informers that let go of each raw object.

Decoded whole, a list of 5,000 ResourceSlices of 10 devices is 230 MB of dicts held at once,
several times what the store keeps of it, and what survives of it pins the allocator's arenas
afterwards. Here the top-level members are walked with the standard library's C scanner
(`raw_decode`) and each element of `items` is decoded when asked for, so only one raw item is
alive at a time. Integers beyond 64 bits become floats, as `berth.kube.client.loads` reads them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from typing import Any

_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, i: int) -> int:
    """The index of the first non-space character from `i`."""
    found = _SPACE.match(text, i)
    assert found is not None  # the pattern matches the empty string
    return found.end()


_INT64 = 1 << 63


def _int(text: str) -> int | float:
    value = int(text)
    return value if -_INT64 <= value < _INT64 else float(value)


_DECODER = json.JSONDecoder(parse_int=_int)
ITEM = "items[]"


def members(body: bytes) -> Iterator[tuple[str, Any]]:
    """(name, value) for each top-level member of the JSON object `body` but `items`, and
    (ITEM, item) for each element of `items`, in the order they are written. ValueError when
    `body` is not a JSON object (nor an `items` member a list)."""
    text = body.decode("utf-8")
    scan = _DECODER.raw_decode
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        raise ValueError("a list response must be a JSON object")
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        i += 1
    else:
        while True:
            name, i = scan(text, i)
            if not isinstance(name, str):
                raise ValueError("an object member's name must be a string")
            i = _skip(text, i)
            if text[i : i + 1] != ":":
                raise ValueError(f"expected ':' at {i}")
            i = _skip(text, i + 1)
            if name == "items" and text[i : i + 1] == "[":
                i = yield from _items(text, i + 1)
            else:
                value, i = scan(text, i)
                if name == "items" and value is not None:
                    raise ValueError("items must be a list")
                yield name, value
            i = _skip(text, i)
            if text[i : i + 1] == ",":
                i = _skip(text, i + 1)
                continue
            if text[i : i + 1] != "}":
                raise ValueError(f"expected ',' or '}}' at {i}")
            i += 1
            break
    if text[_skip(text, i) :]:
        raise ValueError("extra data after the list")


def _items(text: str, i: int) -> Generator[tuple[str, Any], None, int]:
    """The elements of the array whose '[' ends before `i`; returns the index after its ']'."""
    scan = _DECODER.raw_decode
    i = _skip(text, i)
    if text[i : i + 1] == "]":
        return i + 1
    while True:
        item, i = scan(text, i)
        yield ITEM, item
        i = _skip(text, i)
        if text[i : i + 1] == ",":
            i = _skip(text, i + 1)
            continue
        if text[i : i + 1] != "]":
            raise ValueError(f"expected ',' or ']' at {i}")
        return i + 1
