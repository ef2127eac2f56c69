"""Which months each bulk-export file holds, cached by (path, size, mtime).

With a folder of yearly exports, a run over a few months then reads only the files that hold
them, instead of scanning the whole history every time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

UNDATED = "undated"  # the file has rows whose date cannot be read (they must still be quarantined)

_MEMO: dict[str, list[str]] = {}


def _key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _scan(path: Path, date_header: str) -> list[str]:
    rows = duckdb.execute(
        f"""SELECT DISTINCT COALESCE(strftime(COALESCE(
                TRY_STRPTIME(trim("{date_header}"), '%m/%d/%Y %I:%M:%S %p'), TRY_CAST(trim("{date_header}") AS TIMESTAMP)),
                '%Y-%m'), '{UNDATED}')
            FROM read_csv($f, header=true, all_varchar=true)""", {"f": str(path)}).fetchall()
    return sorted(r[0] for r in rows)


def file_months(path: Path, date_header: str, cache_file: Path | None) -> list[str]:
    """The month keys (and ``UNDATED``) of one export file."""
    key = _key(path)
    memo_key = f"{key}|{cache_file}"
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    cached = json.loads(cache_file.read_text()) if cache_file and cache_file.exists() else {}
    if key not in cached:
        cached[key] = _scan(path, date_header)
        if cache_file:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached, indent=0))
            tmp.replace(cache_file)  # atomic: concurrent readers never see half a file
    _MEMO[memo_key] = cached[key]
    return cached[key]
