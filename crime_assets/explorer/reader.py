"""How the explorer reads: a fresh read-only connection per page through the public read path, closed at once.

DuckDB lets one process write a file and refuses other processes meanwhile, readers included. A short read
never keeps the pipeline's writer waiting for long (its connect retries for minutes), and while a run holds
the lock the explorer retries briefly, then says so (``WarehouseBusy``) and shows what it read last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

from crime_assets import warehouse

T = TypeVar("T")


class WarehouseBusy(RuntimeError):
    pass


def read(fn: Callable[..., T], *args, attempts: int = 4, first_delay_s: float = 0.1,
         connect: Callable[..., duckdb.DuckDBPyConnection] = warehouse.connect) -> T:
    """``fn(con, *args)`` on a new read-only connection, closed right after; ``WarehouseBusy`` when a writer
    held the lock through every attempt (about 1.5 s with the defaults)."""
    delay = first_delay_s
    for attempt in range(attempts):
        try:
            con = connect(read_only=True)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if attempt == attempts - 1:
                raise WarehouseBusy("the pipeline is writing the warehouse right now (a run holds its lock)") from error
            time.sleep(delay)
            delay *= 2
            continue
        with con:
            return fn(con, *args)
    raise AssertionError("unreachable")
