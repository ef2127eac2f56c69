"""Which months each bulk-export file holds, cached by (path, size, mtime).

With a folder of yearly exports, a run over a few months then reads only the files that hold
them, instead of scanning the whole history every time. Files not yet indexed are scanned
together in one query (DuckDB reads them in parallel), reading only their date column.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

from crime_assets.ingestion.export_files import header, read_export_sql

UNDATED = "undated"  # the file has rows whose date cannot be read (they must still be quarantined)

_MEMO: dict[str, list[str]] = {}


def _key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _scan(paths: list[Path]) -> dict[Path, list[str]]:
    """Months of each file, reading its date column once; files without one hold no month."""
    dated = [p for p in paths if "date" in header(p)]
    found: dict[Path, list[str]] = {p: [] for p in paths}
    if not dated:
        return found
    parts = []
    for i, path in enumerate(dated):
        date = '"' + header(path)["date"].replace('"', '""') + '"'
        parts.append(f"""SELECT DISTINCT {i} AS file, COALESCE(strftime(COALESCE(
                TRY_STRPTIME(trim({date}), '%m/%d/%Y %I:%M:%S %p'), TRY_CAST(trim({date}) AS TIMESTAMP)),
                '%Y-%m'), '{UNDATED}') AS month FROM {read_export_sql(path)}""")
    for file, month in duckdb.execute(" UNION ALL ".join(parts)).fetchall():
        found[dated[file]].append(month)
    return {p: sorted(months) for p, months in found.items()}


def file_months(paths: list[Path], cache_file: Path | None) -> dict[Path, list[str]]:
    """The month keys (and ``UNDATED``) of each export file."""
    keys = {p: _key(p) for p in paths}
    memo_keys = {p: f"{keys[p]}|{cache_file}" for p in paths}
    unknown = [p for p in paths if memo_keys[p] not in _MEMO]
    if unknown:
        cached = json.loads(cache_file.read_text()) if cache_file and cache_file.exists() else {}
        to_scan = [p for p in unknown if keys[p] not in cached]
        if to_scan:
            cached |= {keys[p]: months for p, months in _scan(to_scan).items()}
            if cache_file:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(cached, indent=0))
                tmp.replace(cache_file)  # atomic: concurrent readers never see half a file
        for p in unknown:
            _MEMO[memo_keys[p]] = cached[keys[p]]
    return {p: _MEMO[memo_keys[p]] for p in paths}
