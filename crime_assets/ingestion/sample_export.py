"""Rows of the shipped bulk-export sample, moved to other months and written as export files: the
synthetic exports of tests and benchmarks (long ranges, new months, late updates)."""

from __future__ import annotations

import calendar
from pathlib import Path

import duckdb
import pandas as pd

from crime_assets.common.settings import SAMPLE_DIR


def sample_rows(month: str, limit: int | None = None) -> pd.DataFrame:
    """Real export rows of one month of the shipped sample (text, Title Case headers), the first ``limit`` by id."""
    year, mm = month.split("-")
    frame = duckdb.sql(f"""SELECT * FROM read_csv('{SAMPLE_DIR / f"crimes_{year}.csv.zst"}', all_varchar=true, header=true)
                           WHERE "Date" LIKE '{mm}/%' ORDER BY CAST("ID" AS BIGINT)""").df()
    return frame.head(limit) if limit else frame


def redated(frame: pd.DataFrame, month: str) -> pd.DataFrame:
    """The same real incidents moved to ``month`` (same time of day), e.g. 2016-10 rows as 2026-10. A day the
    target month lacks (31 October into November) becomes its last day, so every date stays valid."""
    year, mm = int(month[:4]), int(month[5:])
    last_day = calendar.monthrange(year, mm)[1]
    moved = frame.copy()
    moved["Date"] = [f"{mm:02d}/{min(int(d[3:5]), last_day):02d}/{year:04d}{d[10:]}" for d in moved["Date"]]
    return moved


def write_export(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
