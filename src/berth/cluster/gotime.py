"""Go's time.Parse for the two layouts the API decodes (metav1.Time: RFC 3339; metav1.MicroTime:
RFC 3339 with exactly six fractional digits), with Go's own error text, so a time the real API
server refuses is refused here in the same words (`parsing time "…" as "…": cannot parse ".5Z"
as ".000000"`). It only judges; the accepted value is re-encoded by timestamps.py.
"""

from __future__ import annotations

import calendar
import datetime

RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"

# (literal prefix, std chunk) as Go's nextStdChunk splits the two layouts
_CHUNKS = {
    RFC3339: [("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05"),
              ("", "Z07:00")],
    RFC3339_MICRO: [("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"),
                    (":", "05"), ("", ".000000"), ("", "Z07:00")],
}  # fmt: skip


class _Bad(Exception):
    pass


class ParseError(ValueError):
    """Go's *time.ParseError, its text as Error() gives it."""


def _quote(s: str) -> str:
    """Go's time.quote: the value in double quotes, quotes and backslashes escaped."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and ord(ch) < 0x80:
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    out.append('"')
    return "".join(out)


def _digit(s: str, i: int) -> bool:
    return len(s) > i and "0" <= s[i] <= "9"


def _getnum(s: str, fixed: bool) -> tuple[int, str]:
    if not _digit(s, 0):
        raise _Bad
    if not _digit(s, 1):
        if fixed:
            raise _Bad
        return int(s[0]), s[1:]
    return int(s[:2]), s[2:]


def _atoi(s: str) -> int:
    neg = False
    if s and s[0] in "+-":
        neg, s = s[0] == "-", s[1:]
    if not s or not s.isascii() or not s.isdigit():
        raise _Bad
    return -int(s) if neg else int(s)


def _nanoseconds(value: str, nbytes: int) -> tuple[int, str]:
    """parseNanoseconds: the nanoseconds, and '' or the range error's name."""
    if value[0] not in ".,":
        raise _Bad
    digits = value[1 : min(nbytes, 10)]
    ns = _atoi(digits)
    if ns < 0:
        return 0, "fractional second"
    return ns * 10 ** (9 - len(digits)), ""


def parse_error(layout: str, value: str) -> str | None:
    """None when Go's time.Parse(layout, value) succeeds, else its error's text."""
    try:
        parse(layout, value)
    except ParseError as exc:
        return str(exc)
    return None


def parse(layout: str, value: str) -> datetime.datetime | None:
    """Go's time.Parse(layout, value) as an aware datetime (microseconds: Python has no
    nanoseconds); None for a time Go accepts that Python cannot hold (year 0, an offset of 24
    hours or more); ParseError for what Go refuses."""
    text = _parse(layout, value)
    if isinstance(text, str):
        raise ParseError(text)
    return text


def _parse(layout: str, value: str) -> datetime.datetime | str | None:
    rest = value
    year = month = day = hour = minute = second = nsec = offset = 0
    for prefix, std in _CHUNKS[layout]:
        for ch in prefix:
            if not rest or rest[0] != ch:
                return f"parsing time {_quote(value)} as {_quote(layout)}: cannot parse " \
                    f"{_quote(rest)} as {_quote(prefix)}"  # fmt: skip
            rest = rest[1:]
        hold, range_error = rest, ""
        try:
            if std == "2006":
                if len(rest) < 4 or not _digit(rest, 0):
                    raise _Bad
                year, rest = _atoi(rest[:4]), rest[4:]
            elif std == "01":
                month, rest = _getnum(rest, True)
                if not 0 < month <= 12:
                    range_error = "month"
            elif std == "02":
                day, rest = _getnum(rest, True)
            elif std == "15":
                hour, rest = _getnum(rest, False)
                if hour >= 24:
                    range_error = "hour"
            elif std == "04":
                minute, rest = _getnum(rest, True)
                if minute >= 60:
                    range_error = "minute"
            elif std == "05":
                second, rest = _getnum(rest, True)
                if second >= 60:
                    range_error = "second"
                elif layout != RFC3339_MICRO and rest[:1] in (".", ",") and _digit(rest, 1):
                    n = 2  # a fraction the layout does not name: Go accepts it
                    while _digit(rest, n):
                        n += 1
                    nsec, range_error = _nanoseconds(rest, n)
                    rest = rest[n:]
            elif std == ".000000":
                if len(rest) < 7:
                    raise _Bad
                nsec, range_error = _nanoseconds(rest, 7)
                rest = rest[7:]
            else:  # Z07:00
                if rest[:1] == "Z":
                    rest = rest[1:]
                else:
                    if len(rest) < 6 or rest[3] != ":":
                        raise _Bad
                    sign, hh, mm, rest = rest[0], rest[1:3], rest[4:6], rest[6:]
                    hr, _ = _getnum(hh, True)
                    mins, _ = _getnum(mm, True)
                    if hr > 24:
                        range_error = "time zone offset hour"
                    if mins > 60:
                        range_error = "time zone offset minute"
                    if sign not in "+-":
                        raise _Bad
                    offset = (hr * 60 + mins) * (1 if sign == "+" else -1)
        except _Bad:
            if range_error:
                return f"parsing time {_quote(value)}: {range_error} out of range"
            return f"parsing time {_quote(value)} as {_quote(layout)}: cannot parse " \
                f"{_quote(hold)} as {_quote(std)}"  # fmt: skip
        if range_error:
            return f"parsing time {_quote(value)}: {range_error} out of range"
    if rest:
        return f"parsing time {_quote(value)}: extra text: {_quote(rest)}"
    if day < 1 or day > _days_in(month, year):
        return f"parsing time {_quote(value)}: day out of range"
    if year == 0 or abs(offset) >= 24 * 60:
        return None
    zone = datetime.timezone(datetime.timedelta(minutes=offset))
    return datetime.datetime(year, month, day, hour, minute, second, nsec // 1000, zone)


def _days_in(month: int, year: int) -> int:
    if month == 2 and calendar.isleap(year):
        return 29
    return (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
