"""Query parameters as upstream's parameter codec decodes them (runtime/conversion.go), for the
dispatcher and the authorizer alike: one reading of `?watch=`, so a request is never authorised
as one verb and served as another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from berth.cluster.errors import bad_request

_INT64 = re.compile(r"[+-]?[0-9]+")


def query_bool(query: Mapping[str, str], name: str) -> bool:
    """upstream Convert_Slice_string_To_bool: absent, `0` or `false` (any case) is false;
    anything else, the empty string included, is true."""
    value = query.get(name)
    if value is None:
        return False
    return not (value == "0" or value.lower() == "false")


def query_int64(query: Mapping[str, str], name: str) -> int | None:
    """An int64 parameter (absent is None), or 400 as upstream's strconv.ParseInt refuses."""
    value = query.get(name)
    if value is None:
        return None
    if not _INT64.fullmatch(value) or not -(2**63) <= int(value) < 2**63:
        raise bad_request(f'invalid value for {name}: "{value}" is not an integer')
    return int(value)
