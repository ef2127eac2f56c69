"""Month windows: the one place partition keys ("2016-03") become timestamps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_KEY = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(key: str) -> datetime:
    """The first instant of a month key like ``2016-03``; anything else is rejected."""
    match = _KEY.match(key) if isinstance(key, str) else None
    if match is None:
        raise ValueError(f"not a month key (expected YYYY-MM): {key!r}")
    return datetime(int(match.group(1)), int(match.group(2)), 1)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1)


def month_key(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def shift_month(key: str, months: int) -> str:
    """The month key ``months`` after (or before, if negative) ``key``."""
    start = parse_month(key)
    index = start.year * 12 + start.month - 1 + months
    return month_key(datetime(index // 12, index % 12 + 1, 1))


def months_before(key: str, count: int) -> list[str]:
    """The ``count`` month keys before ``key``, oldest first."""
    return [shift_month(key, -back) for back in range(count, 0, -1)]


@dataclass(frozen=True)
class MonthWindow:
    """A run's consecutive months: ``start`` inclusive, ``end`` exclusive (local Chicago time)."""

    start: datetime
    end: datetime

    @classmethod
    def from_keys(cls, first: str, last: str | None = None) -> MonthWindow:
        start, last_start = parse_month(first), parse_month(last or first)
        if last_start < start:
            raise ValueError(f"month range ends before it starts: {first}...{last}")
        return cls(start, next_month(last_start))

    @property
    def keys(self) -> list[str]:
        keys, cursor = [], self.start
        while cursor < self.end:
            keys.append(month_key(cursor))
            cursor = next_month(cursor)
        return keys

    @property
    def bounds(self) -> dict[str, str]:
        """The first and last month keys, as the ``$first`` / ``$last`` parameters of a query."""
        keys = self.keys
        return {"first": keys[0], "last": keys[-1]}

    @property
    def label(self) -> str:
        keys = self.keys
        return keys[0] if len(keys) == 1 else f"{keys[0]}...{keys[-1]}"

    def months(self) -> list[MonthWindow]:
        return [MonthWindow.from_keys(key) for key in self.keys]

    def chunks(self, size: int) -> list[MonthWindow]:
        """Consecutive windows of at most ``size`` months covering this one."""
        if size < 1:
            raise ValueError(f"chunk size must be at least one month, got {size}")
        keys = self.keys
        return [MonthWindow.from_keys(keys[i], keys[min(i + size, len(keys)) - 1]) for i in range(0, len(keys), size)]
