"""The portal's bulk-export files: finding them, reading their header, and the SQL that reads them.

Each file is read with its header known in advance (read from its first line), so DuckDB needs no
sniffing and no ``union_by_name`` pass, and several files read in one query are read in parallel.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
from functools import cache
from pathlib import Path

import zstandard

EXPORT_SUFFIXES = (".csv", ".csv.gz", ".csv.zst")


def snake_case(name: str) -> str:
    return "_".join(name.strip().lower().split())


def resolve_export_files(path: str | Path) -> list[Path]:
    """A file, a folder (every export file in it) or a glob pattern -> the export files, sorted."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = [Path(p) for p in glob.glob(text)]
    elif Path(text).is_dir():
        files = [p for p in Path(text).iterdir()]
    elif Path(text).is_file():
        files = [Path(text)]
    else:
        raise FileNotFoundError(f"CRIME_EXPORT_PATH {text!r} is not a file, folder or glob that exists")
    files = sorted(p for p in files if p.name.lower().endswith(EXPORT_SUFFIXES))
    if len(files) > 1:
        # A folder may hold other tables (the stations, an API sample): keep the crime exports.
        files = [p for p in files if {"id", "date"} <= header(p).keys()]
    if not files:
        raise FileNotFoundError(f"CRIME_EXPORT_PATH {text!r}: no crime bulk-export files ({', '.join(EXPORT_SUFFIXES)})")
    return files


def _first_line(path: Path) -> str:
    """The first line of a plain, gzip or zstd file, decompressing only its first block."""
    with path.open("rb") as raw:
        if path.name.lower().endswith(".gz"):
            stream = gzip.GzipFile(fileobj=raw)
        elif path.name.lower().endswith(".zst"):
            stream = zstandard.ZstdDecompressor().stream_reader(raw)
        else:
            stream = raw
        return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="").readline()


@cache
def _cached_header(path: Path, size: int, mtime_ns: int) -> dict[str, str]:
    return {snake_case(name): name for name in next(csv.reader([_first_line(path)]), [])}


def header(path: Path) -> dict[str, str]:
    """snake_case field name -> the header as written ("Case Number"), for one export file."""
    stat = path.stat()
    return _cached_header(path, stat.st_size, stat.st_mtime_ns)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_export_sql(path: Path) -> str:
    """``read_csv(...)`` of one export file, every column as text under its written header."""
    columns = ", ".join(f"{_quote(name)}: 'VARCHAR'" for name in header(path).values())
    return (f"read_csv({_quote(str(path))}, header=true, auto_detect=false, delim=',', quote='\"', escape='\"',"
            f" columns={{{columns}}})")
