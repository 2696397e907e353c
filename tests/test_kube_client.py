"""The client's helpers on every API call's path: the JSON reading every answer goes through
(orjson, json for what orjson refuses) and the quoting of URL path segments."""

from __future__ import annotations

import json
import random
import string
from urllib.parse import quote

import pytest

from berth.kube.client import WATCH_CONNECTIONS, loads, quote_path
from berth.kube.listers import LISTERS


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2.5, "x", null, true, false, {"b": "\\u00e9"}]}',
        '{"u": 18446744073709551615, "i": -9223372036854775808}',  # the 64-bit limits
        '{"n": NaN, "i": -Infinity}',
        '{"s": "\\ud800"}',  # a lone surrogate
        '{"k": 1, "k": 2}',  # the last duplicate wins, as in json
    ],
)
def test_loads_reads_what_json_reads(text: str) -> None:
    got, want = loads(text.encode()), json.loads(text)
    assert json.dumps(got) == json.dumps(want)


def test_loads_reads_an_integer_beyond_64_bits_as_the_api_server_stores_it() -> None:
    # kube-apiserver decodes a number beyond int64 into a float64 (unstructured JSON), so it
    # never serves one as an integer; orjson reads it as that same float
    assert loads(b'{"big": 123456789012345678901234567890}') == {"big": 1.2345678901234568e29}


def test_loads_refuses_what_json_refuses() -> None:
    with pytest.raises(ValueError):
        loads(b'{"a": ')


def test_quote_path_quotes_as_urllib_does() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "éß€/%"
    segments = [
        "",
        "pod-1",
        "a b",
        "ns/x",
        "x.y-z_~",
        "%41",
        *("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(5000)),
    ]
    for segment in segments:
        assert quote_path("api", segment) == "/api/" + quote(segment, safe=""), repr(segment)


def test_the_connection_limit_leaves_room_for_every_watch() -> None:
    # each watched kind holds a connection on top of the burst's requests
    assert len(LISTERS) <= WATCH_CONNECTIONS
