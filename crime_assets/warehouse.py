"""The public way to read the warehouse from Python, a notebook or an app.

    from crime_assets import warehouse
    con = warehouse.connect(read_only=True)
    con.sql("SELECT month, count(*) FROM incidents_enriched GROUP BY ALL ORDER BY 1").show()

The warehouse is ``<CRIME_DATA_DIR>/warehouse.duckdb`` (CRIME_DATA_DIR defaults to ``./data``); its tables
are named after the assets that build them.
"""

from __future__ import annotations

from collections.abc import Mapping
import os

import duckdb

from crime_assets.common.settings import Settings


class WarehouseMissingError(LookupError):
    pass


def connect(read_only: bool = True, environ: Mapping[str, str] = os.environ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the configured warehouse, read-only unless asked otherwise.

    Raises ``WarehouseMissingError`` naming the path when nothing was materialised there yet. The
    connection is the caller's to close (``with warehouse.connect() as con: ...`` closes it)."""
    path = Settings.from_env(environ).data_dir / "warehouse.duckdb"
    if read_only and not path.exists():
        raise WarehouseMissingError(f"no warehouse at {path}: materialise raw_incidents first (see README), "
                                    "or set CRIME_DATA_DIR to where the pipeline writes")
    return duckdb.connect(str(path), read_only=read_only)
