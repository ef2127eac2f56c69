"""Load the .sql files kept next to the code that runs them; run statements as one transaction."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb

_HERE = Path(__file__).parent


@cache
def sql(name: str) -> str:
    return (_HERE / f"{name}.sql").read_text()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The statements run inside commit together or not at all: on any failure (or an interrupted run) the
    transaction rolls back, so a table keeps the rows it had -- how a partition is replaced whole or not
    at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
