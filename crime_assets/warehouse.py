"""The public way to read the warehouse from Python, a notebook or an app.

    from crime_assets import warehouse
    con = warehouse.connect(read_only=True)
    con.sql("SELECT month, count(*) FROM incidents_enriched GROUP BY ALL ORDER BY 1").show()

The connection is to the backend CRIME_WAREHOUSE names, with the same tables (named after the assets that
build them) either way:

- ``duckdb`` (default): ``<CRIME_DATA_DIR>/warehouse.duckdb`` (CRIME_DATA_DIR defaults to ``./data``). One
  process at a time: while a run writes, opening it fails, and a connection held open makes runs wait.
- ``ducklake``: the DuckLake catalog in PostgreSQL (CRIME_DUCKLAKE_CATALOG, CRIME_DUCKLAKE_PASSWORD) and its
  Parquet files. Open it from any machine, keep it open while runs write: each query sees every month as
  it was before a run's commit or as it is after it, never half.
"""

from __future__ import annotations

from collections.abc import Mapping
import os

import duckdb

from crime_assets.common.ducklake import DuckLakeMissingError, DuckLakeTarget, attach
from crime_assets.common.settings import Settings


class WarehouseMissingError(LookupError):
    pass


def connect(read_only: bool = True, environ: Mapping[str, str] = os.environ,
            settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the configured warehouse (of ``settings``, else of ``environ``), read-only
    unless asked otherwise; the secrets come from ``environ``.

    Raises ``WarehouseMissingError`` naming the file or the catalog when nothing was materialised there yet.
    The connection is the caller's to close (``with warehouse.connect() as con: ...`` closes it)."""
    settings = settings or Settings.from_env(environ)
    if settings.warehouse.backend == "ducklake":
        con = duckdb.connect()
        try:
            attach(con, ducklake_target(settings, environ), read_only)
        except DuckLakeMissingError as error:
            con.close()
            raise WarehouseMissingError(str(error)) from None
        except BaseException:
            con.close()
            raise
        return con
    path = settings.warehouse_path
    if read_only and not path.exists():
        raise WarehouseMissingError(f"no warehouse at {path}: materialise raw_incidents first (see README), "
                                    "or set CRIME_DATA_DIR to where the pipeline writes")
    return duckdb.connect(str(path), read_only=read_only)


def ducklake_target(settings: Settings, environ: Mapping[str, str] = os.environ) -> DuckLakeTarget:
    """The DuckLake of ``settings``, with the secrets read from ``environ``."""
    lake = settings.warehouse
    return DuckLakeTarget(
        catalog=lake.ducklake_catalog or "", data_path=settings.ducklake_data_path,
        password=environ.get("CRIME_DUCKLAKE_PASSWORD") or None, s3_endpoint=lake.s3_endpoint,
        s3_region=lake.s3_region, s3_url_style=lake.s3_url_style, s3_access_key_id=lake.s3_access_key_id,
        s3_secret_access_key=environ.get("CRIME_S3_SECRET_ACCESS_KEY") or None)
