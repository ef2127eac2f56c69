"""The warehouse resource: where every monthly asset reads and writes, on the backend CRIME_WAREHOUSE names.

- ``duckdb`` (default): the file ``warehouse.duckdb`` in the data directory. DuckDB allows one process per
  file, so the writers take turns (pool ``duckdb_warehouse``, limit 1) and a connection waits, with backoff,
  while another process holds the lock.
- ``ducklake``: DuckLake (``crime_assets/common/ducklake.py``), attached into an in-memory DuckDB as the
  default database. No lock: runs on any machine write at once, each transaction commits whole or not at
  all, and readers read a snapshot. When two transactions changed the same table, DuckLake refuses the
  second commit; the step is then retried (``dg.RetryRequested``), on a fresh snapshot.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from crime_assets.common.ducklake import DuckLakeTarget, attach

# Every asset that writes the warehouse runs in this pool: limit 1 for the DuckDB file (one writer process),
# higher for DuckLake (deploy/dagster.prod.yaml).
WAREHOUSE_POOL = "duckdb_warehouse"

# The on-disk format a new warehouse file is created in. Left alone, DuckDB 1.5.5 creates files readable by
# DuckDB 0.10.2, whose string compression analyses every string column twice (Dictionary, then FSST);
# v1.3.0's DICT_FSST (DuckDB 2.0's default) does it in one pass. DuckDB >= 1.3 reads such a file, and a
# file keeps the format it was created in.
STORAGE_VERSION = "v1.3.0"


class WarehouseLockedError(RuntimeError):
    pass


def is_commit_conflict(error: BaseException) -> bool:
    """DuckLake's refusal of a commit because another transaction changed the same table meanwhile."""
    return isinstance(error, duckdb.TransactionException) and "conflict" in str(error).lower()


class Warehouse(DuckDBResource):
    """The warehouse (tables named after their assets): ``database`` is the DuckDB file, or ``:memory:`` with
    the DuckLake catalog attached into it. ``connection_config`` holds DuckDB settings (memory limit, spill
    folder)."""

    data_dir: str = Field(description="CRIME_DATA_DIR: everything the platform writes")
    backend: str = Field(description="CRIME_WAREHOUSE: duckdb (one file) or ducklake")
    lock_timeout_s: float = Field(default=120.0, description="How long to wait for another process's lock (duckdb)")
    chunk_months: int = Field(description="months processed at a time inside one run (CRIME_CHUNK_MONTHS)")
    ducklake_catalog: str | None = Field(default=None, description="CRIME_DUCKLAKE_CATALOG: the catalog's PostgreSQL")
    ducklake_password: str | None = Field(default=None, description="CRIME_DUCKLAKE_PASSWORD (secret)")
    ducklake_data_path: str | None = Field(default=None, description="CRIME_DUCKLAKE_DATA_PATH: the Parquet files")
    s3_endpoint: str | None = Field(default=None, description="CRIME_S3_ENDPOINT")
    s3_region: str = Field(description="CRIME_S3_REGION")
    s3_url_style: str | None = Field(default=None, description="CRIME_S3_URL_STYLE")
    s3_access_key_id: str | None = Field(default=None, description="CRIME_S3_ACCESS_KEY_ID")
    s3_secret_access_key: str | None = Field(default=None, description="CRIME_S3_SECRET_ACCESS_KEY (secret)")
    conflict_retries: int = Field(default=10, description="step retries after a DuckLake commit conflict")

    @property
    def path(self) -> Path:
        return Path(self.database)

    @property
    def lake(self) -> DuckLakeTarget:
        return DuckLakeTarget(
            catalog=self.ducklake_catalog or "", data_path=self.ducklake_data_path or "",
            password=self.ducklake_password, s3_endpoint=self.s3_endpoint, s3_region=self.s3_region,
            s3_url_style=self.s3_url_style, s3_access_key_id=self.s3_access_key_id,
            s3_secret_access_key=self.s3_secret_access_key)

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.backend == "ducklake":
            with super().get_connection() as con:  # the in-memory database the lake is attached into
                attach(con, self.lake, read_only)
                try:
                    yield con
                except duckdb.TransactionException as error:
                    if not is_commit_conflict(error):
                        raise
                    raise dg.RetryRequested(max_retries=self.conflict_retries,
                                            seconds_to_wait=1 + 4 * random.random()) from error
            return
        with self._file_connection(read_only) as con:
            yield con

    connect = get_connection  # the name the assets use

    @contextmanager
    def _file_connection(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the file; waits (with backoff) while another process holds its lock."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline, delay = time.monotonic() + self.lock_timeout_s, 0.2
        while True:
            try:
                if not read_only and not self.path.exists():
                    # Only the connection that creates the file names the format: DuckDB refuses a second
                    # connection to an open file with other settings, so every other one opens it plainly.
                    duckdb.connect(str(self.path), config={"storage_compatibility_version": STORAGE_VERSION}).close()
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise WarehouseLockedError(
                        f"cannot open {self.path}: another process holds it ({error}); "
                        "DuckDB allows one writer process per file"
                    ) from error
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
        try:
            if not read_only:
                for name, value in self.connection_config.items():
                    con.execute(f"SET {name} = '{value}'")
            yield con
        finally:
            con.close()
