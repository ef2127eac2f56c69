"""The baseline every benchmark compares with: the time DuckDB takes just to scan the export files."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from crime_assets.ingestion.export_files import header


def scan_seconds(files: list[Path]) -> float:
    """``count(*)`` over ``read_csv`` of the files, every column as text; ``union_by_name`` only when
    their headers differ (it costs a pass of its own)."""
    union = len({tuple(header(Path(f))) for f in files}) > 1
    started = time.perf_counter()
    duckdb.connect().execute(f"SELECT count(*) FROM read_csv($f, header=true, all_varchar=true, union_by_name={union})",
                             {"f": [str(f) for f in files]}).fetchall()
    return time.perf_counter() - started
