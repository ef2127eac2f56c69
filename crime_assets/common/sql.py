"""Load the .sql files of the slices (``crime_assets/<slice>/sql/``); run
statements as one transaction. A file is named after the table (or temp table, or macros) it builds, and
names are unique across the package, so ``sql("h3_monthly_stats")`` needs no folder."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb

_PACKAGE = Path(__file__).parent.parent


@cache
def _sql_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(_PACKAGE.glob("**/sql/*.sql")):
        if path.stem in files:
            raise RuntimeError(f"two SQL files named {path.name}: {files[path.stem]} and {path}")
        files[path.stem] = path
    return files


@cache
def sql(name: str) -> str:
    """The text of ``<slice>/sql/<name>.sql``."""
    if name not in _sql_files():
        raise KeyError(f"no SQL file {name}.sql in any {_PACKAGE}/<slice>/sql folder")
    return _sql_files()[name].read_text()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The statements run inside commit together or not at all: on any failure (or an interrupted run) the
    transaction rolls back, so a table keeps the rows it had -- how a partition is replaced whole or not
    at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    # A COMMIT that fails (DuckLake refuses one that conflicts with another writer's) has rolled back already.
    con.execute("COMMIT")
