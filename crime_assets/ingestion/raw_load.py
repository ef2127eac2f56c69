"""Normalise staged source records into ``raw_incidents`` and replace a window of months atomically."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb

from crime_assets.common.months import MonthWindow
from crime_assets.common.schema import RAW_INCIDENTS, RAW_QUARANTINE, SOURCE_FIELDS, create_table_sql
from crime_assets.ingestion.sources import StagedIncidents
from crime_assets.common.sql import sql, transaction

RAW_TABLE = "raw_incidents"
QUARANTINE_TABLE = "raw_incidents_quarantine"


@dataclass(frozen=True)
class MonthLoad:
    month: str
    rows: int
    arrests: int
    quarantined: int
    newest_updated_on: datetime | None


@dataclass(frozen=True)
class RawLoad:
    source: str
    months: list[MonthLoad]
    quarantined_by_reason: dict[str, int]
    undated_quarantined: int  # export rows without a usable date: they belong to no month

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.months)

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(create_table_sql(RAW_TABLE, RAW_INCIDENTS))
    con.execute(create_table_sql(QUARANTINE_TABLE, RAW_QUARANTINE))


_RAW_COLUMNS = ", ".join(c.name for c in RAW_INCIDENTS)
_CANONICAL_ROWS = f"SELECT {_RAW_COLUMNS} FROM typed_incidents WHERE reason IS NULL"
_QUARANTINE_ROWS = f"""
    SELECT quarantine_month, reason, raw_id, raw_case_number, raw_date, raw_updated_on,
           -- superseded duplicates were valid rows: keep them as their typed record
           COALESCE(record, to_json(struct_pack({", ".join(f"{c.name} := {c.name}" for c in RAW_INCIDENTS)}))::VARCHAR),
           source, now()::TIMESTAMP
    FROM typed_incidents WHERE reason IS NOT NULL
"""


def _normalize_sql() -> str:
    fields = ", ".join(f"'{f}', parsed.{f}" for f in SOURCE_FIELDS)
    return sql("raw_incidents").replace("RECORD_FIELDS", fields)


def load_raw_incidents(con: duckdb.DuckDBPyConnection, staged: StagedIncidents, window: MonthWindow) -> RawLoad:
    """Replace the window's months in raw_incidents (and their quarantine) from one staged source."""
    return load_raw_incidents_in_chunks(con, [(window, staged)], window)


def load_raw_incidents_in_chunks(
    con: duckdb.DuckDBPyConnection, chunks: Iterable[tuple[MonthWindow, StagedIncidents]], window: MonthWindow
) -> RawLoad:
    """Replace the window's months in raw_incidents (and their quarantine) in one transaction.

    ``chunks`` cover the window in consecutive parts, each with the records staged for it, so a long
    range is normalised a part at a time (bounded memory) and still committed all at once. Every
    staged row ends up either in raw_incidents or in the quarantine with a reason. If anything fails,
    the transaction rolls back and the months keep their previous rows.
    """
    ensure_raw_tables(con)
    bounds = {"first": window.keys[0], "last": window.keys[-1]}
    labels, sources = [], set()
    try:
        with transaction(con):
            con.execute(f"DELETE FROM {RAW_TABLE} WHERE month BETWEEN $first AND $last", bounds)
            con.execute(f"DELETE FROM {QUARANTINE_TABLE} WHERE month BETWEEN $first AND $last", bounds)
            for part, staged in chunks:
                staged.register(con)
                con.execute(_normalize_sql(),
                            {"start": part.start, "end": part.end, "keep_outside": staged.keeps_outside_rows})
                part_sources = {s for (s,) in con.execute("SELECT DISTINCT source FROM typed_incidents").fetchall()}
                part_sources -= sources
                # Rows without a usable date belong to no month: replace those of the files read again.
                con.execute(f"DELETE FROM {QUARANTINE_TABLE} WHERE month IS NULL AND source IN (SELECT unnest($s))",
                            {"s": sorted(s for s in part_sources if s)})
                con.execute(f"INSERT INTO {RAW_TABLE} {_CANONICAL_ROWS}")
                con.execute(f"INSERT INTO {QUARANTINE_TABLE} {_QUARANTINE_ROWS}")
                labels.append(staged.label)
                sources |= part_sources
    finally:
        con.execute("DROP TABLE IF EXISTS typed_incidents")
    return _summarise(con, " + ".join(dict.fromkeys(labels)), window, sorted(s for s in sources if s))


def _summarise(con: duckdb.DuckDBPyConnection, source: str, window: MonthWindow, sources: list[str]) -> RawLoad:
    bounds = {"first": window.keys[0], "last": window.keys[-1]}
    loaded = {
        month: (rows, arrests, newest)
        for month, rows, arrests, newest in con.execute(
            f"SELECT month, count(*), count(*) FILTER (arrest), max(updated_on) FROM {RAW_TABLE}"
            " WHERE month BETWEEN $first AND $last GROUP BY month", bounds).fetchall()
    }
    quarantined = dict(con.execute(
        f"SELECT month, count(*) FROM {QUARANTINE_TABLE} WHERE month BETWEEN $first AND $last GROUP BY month",
        bounds).fetchall())
    this_load = "(month BETWEEN $first AND $last OR (month IS NULL AND source IN (SELECT unnest($s))))"
    by_reason = dict(con.execute(
        f"SELECT reason, count(*) FROM {QUARANTINE_TABLE} WHERE {this_load} GROUP BY reason ORDER BY reason",
        bounds | {"s": sources}).fetchall())
    undated = con.execute(
        f"SELECT count(*) FROM {QUARANTINE_TABLE} WHERE month IS NULL AND source IN (SELECT unnest($s))",
        {"s": sources}).fetchall()[0][0]
    months = [
        MonthLoad(key, *(loaded.get(key, (0, 0, None))[:2]), quarantined.get(key, 0), loaded.get(key, (0, 0, None))[2])
        for key in window.keys
    ]
    return RawLoad(source, months, by_reason, undated)
