"""Where raw incident records come from: one interface, two implementations.

A source does its slow I/O in ``collect`` (before the warehouse is locked) and hands back
a ``StagedIncidents`` that registers the records, as text in snake-cased source field names,
as the ``staged_incidents`` view of a DuckDB connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd

from crime_assets.ingestion.export_files import header, read_export_sql, resolve_export_files
from crime_assets.ingestion.export_index import UNDATED, file_months
from crime_assets.common.months import MonthWindow
from crime_assets.common.schema import SOURCE_FIELDS
from crime_assets.ingestion.socrata import SocrataClient


class StagedIncidents(Protocol):
    label: str
    keeps_outside_rows: bool  # True: every row returned was asked for this window, so strays are quarantined

    def register(self, con: duckdb.DuckDBPyConnection) -> None: ...


class IncidentSource(Protocol):
    def collect(self, window: MonthWindow) -> StagedIncidents: ...


def _text_columns(names: dict[str, str]) -> str:
    return ", ".join(
        f'"{names[f]}" AS {f}' if f in names else f"NULL::VARCHAR AS {f}" for f in SOURCE_FIELDS
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
        parts = []
        for path in self.files:
            names = header(path)
            missing = {"id", "date"} - names.keys()
            if missing:
                raise ValueError(f"{path.name}: not a crime export, no column(s) {sorted(missing)}; found {sorted(names)}")
            # 20 or 22 columns, in any order: each file is mapped onto the source fields by its own header.
            parts.append(f"SELECT {_text_columns(names)}, NULL::VARCHAR AS _requested_month,"
                         f" '{path.name.replace(chr(39), chr(39) * 2)}' AS _source FROM {read_export_sql(path)}")
        con.execute("CREATE OR REPLACE TEMP VIEW staged_incidents AS " + " UNION ALL ".join(parts))


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
            held = file_months(files, self.index_file)
            files = [f for f in files if wanted & set(held[f])]
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
