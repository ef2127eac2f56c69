"""Where raw incident records come from: one interface, two implementations.

A source does its slow I/O in ``collect`` (before the warehouse is locked) and hands back
a ``StagedIncidents`` that registers the records, as text in snake-cased source field names,
as the ``staged_incidents`` view of a DuckDB connection.
"""

from __future__ import annotations

import glob
import logging
from functools import cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd

from crime_assets.core.export_index import UNDATED, file_months
from crime_assets.core.months import MonthWindow
from crime_assets.core.schema import SOURCE_FIELDS
from crime_assets.core.socrata import SocrataClient

EXPORT_SUFFIXES = (".csv", ".csv.gz", ".csv.zst")


class StagedIncidents(Protocol):
    label: str
    keeps_outside_rows: bool  # True: every row returned was asked for this window, so strays are quarantined

    def register(self, con: duckdb.DuckDBPyConnection) -> None: ...


class IncidentSource(Protocol):
    def collect(self, window: MonthWindow) -> StagedIncidents: ...


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
        files = [p for p in files if {"id", "date"} <= _header(p).keys()]
    if not files:
        raise FileNotFoundError(f"CRIME_EXPORT_PATH {text!r}: no crime bulk-export files ({', '.join(EXPORT_SUFFIXES)})")
    return files


def snake_case(name: str) -> str:
    return "_".join(name.strip().lower().split())


@cache
def _header(path: Path) -> dict[str, str]:
    """snake_case field name -> the header as written ("Case Number"), for one export file."""
    rows = duckdb.execute("DESCRIBE SELECT * FROM read_csv($f, header=true, all_varchar=true)", {"f": str(path)}).fetchall()
    return {snake_case(row[0]): row[0] for row in rows}


def _text_columns(header: dict[str, str]) -> str:
    return ", ".join(
        f'"{header[f]}" AS {f}' if f in header else f"NULL::VARCHAR AS {f}" for f in SOURCE_FIELDS
    )


@dataclass(frozen=True)
class ExportFiles:
    files: tuple[Path, ...]
    label: str
    keeps_outside_rows: bool = False

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self.files:  # no file holds these months
            empty = ", ".join(f"NULL::VARCHAR AS {f}" for f in SOURCE_FIELDS)
            con.execute(f"CREATE OR REPLACE TEMP VIEW staged_incidents AS SELECT {empty},"
                        " NULL::VARCHAR AS _requested_month, NULL::VARCHAR AS _source WHERE false")
            return
        header: dict[str, str] = {}
        for path in self.files:
            header |= _header(path)
        missing = {"id", "date"} - header.keys()
        if missing:
            raise ValueError(f"{self.label}: not a crime export, no column(s) {sorted(missing)}; found {sorted(header)}")
        # A view cannot hold parameters: inline the (quoted) file list.
        file_list = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in self.files) + "]"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW staged_incidents AS SELECT {_text_columns(header)},"
            " NULL::VARCHAR AS _requested_month, parse_filename(filename) AS _source"
            f" FROM read_csv({file_list}, header=true, all_varchar=true, union_by_name=true, filename=true)"
        )


@dataclass(frozen=True)
class ExportSource:
    """The portal's bulk CSV download: plain, .gz or .zst, 20 or 22 columns, one file or many."""

    path: str
    index_file: Path | None = None  # where to cache which months each file holds

    def collect(self, window: MonthWindow) -> ExportFiles:
        files = resolve_export_files(self.path)
        if len(files) > 1:
            # Read only the files holding these months (or rows without a usable date).
            wanted = set(window.keys) | {UNDATED}
            files = [f for f in files if wanted & set(file_months(f, _header(f)["date"], self.index_file))]
        return ExportFiles(tuple(files), label=f"export:{', '.join(f.name for f in files) or 'no file holds ' + window.label}")


@dataclass(frozen=True)
class FetchedRecords:
    frame: pd.DataFrame
    label: str
    keeps_outside_rows: bool = True

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        con.register("fetched_records", self.frame)
        con.execute("CREATE OR REPLACE TEMP VIEW staged_incidents AS SELECT * FROM fetched_records")


def records_to_frame(records: list[dict], requested_month: str, source: str) -> pd.DataFrame:
    """JSON API records (lower-case fields, JSON booleans, nested location) as a text frame."""
    frame = pd.DataFrame.from_records(records, columns=list(SOURCE_FIELDS)) if records else pd.DataFrame(
        columns=list(SOURCE_FIELDS))
    frame = frame.astype(object).where(frame.notna(), None)
    for column in SOURCE_FIELDS:
        frame[column] = [None if v is None else str(v) for v in frame[column]]
    frame["_requested_month"] = requested_month
    frame["_source"] = source
    return frame.astype({c: "string" for c in frame.columns})


@dataclass
class SocrataSource:
    """Live records from the Socrata API, fetched month by month in id order."""

    client: SocrataClient
    dataset_id: str
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__), repr=False)

    def collect(self, window: MonthWindow) -> FetchedRecords:
        label = f"socrata:{self.client.domain}/{self.dataset_id}"
        frames = []
        for month in window.months():
            records = self.client.fetch_window(self.dataset_id, month.start, month.end, label=month.label)
            self.logger.info("%s: fetched %d records", month.label, len(records))
            frames.append(records_to_frame(records, month.label, label))
        return FetchedRecords(pd.concat(frames, ignore_index=True), label=label)
