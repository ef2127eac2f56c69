"""The warehouse resource: the DuckDB file every monthly asset reads and writes."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

WAREHOUSE_POOL = "duckdb_warehouse"  # every asset that writes the DuckDB file runs in this pool (limit 1)


class WarehouseLockedError(RuntimeError):
    pass


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file ``warehouse.duckdb`` in the data directory; tables are named after their assets."""

    data_dir: str = Field(description="CRIME_DATA_DIR: everything the platform writes")
    lock_timeout_s: float = Field(default=120.0, description="How long to wait for another process's lock")
    chunk_months: int = Field(default=24, description="months processed at a time inside one run (CRIME_CHUNK_MONTHS)")
    memory_limit: str = Field(default="2GB", description="DuckDB memory limit; beyond it DuckDB spills to disk")

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / "warehouse.duckdb"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the file; waits (with backoff) while another process holds its lock."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline, delay = time.monotonic() + self.lock_timeout_s, 0.2
        while True:
            try:
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
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
                con.execute(f"SET temp_directory = '{Path(self.data_dir) / 'tmp'}'")
            yield con
        finally:
            con.close()
