"""Generate a full-history-sized bulk export (benchmark input, not shipped data).

    python bench/make_full_history.py [--out bench/generated/full_history] [--last 2026-10]

Real rows of 2015-2016 (../shared, or the shipped sample) resampled onto every month from 2001-01 to
the last complete month: each target month takes rows of the same calendar month, dates moved to the
target year (Feb 29 -> Feb 28), ids and case numbers made unique, volumes following the real
history's yearly order of magnitude (about 40k a month in 2001 down to about 20k). Written in the
portal's export format (Title Case headers, MM/DD/YYYY hh:mm:ss AM dates), one gzip CSV per year.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "chicago"

# Approximate incidents a month, by year (the real series falls from ~40k in 2001 to ~20k).
MONTHLY_VOLUME = {
    2001: 40_000, 2002: 40_000, 2003: 39_000, 2004: 39_000, 2005: 38_000, 2006: 37_500, 2007: 36_500,
    2008: 35_500, 2009: 33_000, 2010: 31_000, 2011: 29_500, 2012: 28_000, 2013: 25_500, 2014: 23_000,
    2015: 22_000, 2016: 22_500, 2017: 22_300, 2018: 22_300, 2019: 21_700, 2020: 17_600, 2021: 17_300,
    2022: 19_900, 2023: 21_800, 2024: 21_000,
}
DEFAULT_VOLUME = 20_000
EXPORT_COLUMNS = ["ID", "Case Number", "Date", "Block", "IUCR", "Primary Type", "Description",
                  "Location Description", "Arrest", "Domestic", "Beat", "District", "Ward", "Community Area",
                  "FBI Code", "X Coordinate", "Y Coordinate", "Year", "Updated On", "Latitude", "Longitude", "Location"]


def last_complete_month(today: date) -> str:
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def source_files() -> list[str]:
    if (SHARED / "crimes_2015.csv.gz").exists():
        return [str(SHARED / "crimes_2015.csv.gz"), str(SHARED / "crimes_2016.csv.gz")]
    sample = REPO / "crime_assets" / "sample_data"
    return [str(sample / "crimes_2015.csv.zst"), str(sample / "crimes_2016.csv.zst")]


def generate(out: Path, last: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute("""CREATE TABLE source AS
        SELECT *, strptime("Date", '%m/%d/%Y %I:%M:%S %p') AS ts
        FROM read_csv($files, header=true, all_varchar=true, union_by_name=true)""", {"files": source_files()})
    last_year, last_month = map(int, last.split("-"))
    total = 0
    for year in range(2001, last_year + 1):
        months = 12 if year < last_year else last_month
        volume = MONTHLY_VOLUME.get(year, DEFAULT_VOLUME)
        path = out / f"crimes_{year}.csv.gz"
        # Rows of the same calendar month from both real years, a year-dependent shuffle, the first `volume`.
        con.execute(f"""COPY (
            WITH picked AS (
                SELECT *, row_number() OVER (PARTITION BY month(ts) ORDER BY hash("ID", {year})) AS k
                FROM source WHERE month(ts) <= {months}
            ), moved AS (
                SELECT * REPLACE (
                    -- unique across the whole history: year, month and rank
                    ({year}::BIGINT * 10000000 + month(ts) * 100000 + k)::VARCHAR AS "ID",
                    'G' || {year} || lpad(month(ts)::VARCHAR, 2, '0') || lpad(k::VARCHAR, 6, '0') AS "Case Number"),
                    make_timestamp({year}, month(ts), least(day(ts), CASE WHEN month(ts) = 2 THEN 28 ELSE 31 END),
                                   hour(ts), minute(ts), second(ts)) AS new_ts
                FROM picked WHERE k <= {volume}
            )
            SELECT "ID", "Case Number", strftime(new_ts, '%m/%d/%Y %I:%M:%S %p') AS "Date", "Block", "IUCR",
                   "Primary Type", "Description", "Location Description", "Arrest", "Domestic", "Beat", "District",
                   "Ward", "Community Area", "FBI Code", "X Coordinate", "Y Coordinate", {year}::VARCHAR AS "Year",
                   "Updated On", "Latitude", "Longitude",
                   CASE WHEN "Latitude" IS NOT NULL THEN '(' || "Latitude" || ', ' || "Longitude" || ')' END AS "Location"
            FROM moved ORDER BY new_ts
        ) TO '{path}' (HEADER, COMPRESSION gzip)""")
        rows = con.execute(f"SELECT count(*) FROM read_csv('{path}', all_varchar=true)").fetchall()[0][0]
        total += rows
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "generated" / "full_history")
    parser.add_argument("--last", default=last_complete_month(date.today()))
    args = parser.parse_args()
    started = time.perf_counter()
    rows = generate(args.out, args.last)
    print(f"wrote {rows:,} rows for 2001-01...{args.last} to {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
