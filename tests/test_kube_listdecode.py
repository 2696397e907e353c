"""A list decoded one item at a time reads what decoding it whole reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from berth.kube.client import loads
from berth.kube.listdecode import ITEM, members


def _whole(body: bytes) -> dict[str, Any]:
    head: dict[str, Any] = {}
    items = []
    for name, value in members(body):
        if name == ITEM:
            items.append(value)
        else:
            head[name] = value
    if items or b'"items"' in body:
        head.setdefault("items", items)
    return head


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]}',
        b'{"kind":"NodeList","items":[{"a":1},{"b":[1,2,{"c":"]},{"}]}]}',
        b' \n{ "items" : [ {"x": "\\"]"} , {"y": null} ] , "kind" : "PodList" }\n',
        b'{"items":[{"big":123456789012345678901234567890,"neg":-9223372036854775808}]}',
        b'{"kind":"List","metadata":{},"items":[{"s":"\\u00e9\\ud83d\\ude00"}]}',
        b"{}",
    ],
)
def test_members_read_what_a_whole_decode_reads(body: bytes) -> None:
    assert _whole(body) == loads(body)


def test_items_come_in_the_order_written_and_null_items_are_no_items() -> None:
    body = json.dumps({"kind": "X", "items": [{"n": i} for i in range(5)]}).encode()
    assert [v["n"] for k, v in members(body) if k == ITEM] == [0, 1, 2, 3, 4]
    assert list(members(b'{"items":null}')) == [("items", None)]


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"items":[{"a":1}', b'{"items":[{"a":1}]', b'{"items":{}}', b'{"a":1} x', b""],
)
def test_what_is_not_a_list_object_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        list(members(body))
