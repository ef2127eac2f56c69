"""Benchmark: the full history (2001-01 to the last complete month, ~8.6 M rows) on one machine.

    python bench/make_full_history.py            # once: writes bench/generated/full_history/
    python bench/bench_full_history.py [--chunk-months 24]

Drives the backfill the way a user would (`python -m crime_assets.backfill`, ranged runs of
--chunk-months months through every monthly asset: raw -> enriched -> H3 -> features) in a fresh
process, a fresh Dagster instance and a fresh data dir, and reports:
- wall time and peak RSS of the full backfill, and the DuckDB scan of the same files (baseline,
  same invocation); targets: <= 10 min, <= 10x the scan, peak RSS < 4 GB;
- rows/s for the first 12, 48 and all months (rate must not fall > 25% from 48 to all);
- a single late month re-run after the full backfill vs the same month run alone before;
- the arrest model trained afterwards on that warehouse (it reads only its rolling window): wall, peak RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from scan_baseline import scan_seconds

REPO = Path(__file__).resolve().parents[1]
GENERATED = REPO / "bench" / "generated" / "full_history"


def months_of(files: list[str]) -> tuple[str, str, int]:
    first, last, rows = duckdb.execute(
        """SELECT strftime(min(d), '%Y-%m'), strftime(max(d), '%Y-%m'), count(*) FROM (
               SELECT strptime("Date", '%m/%d/%Y %I:%M:%S %p') AS d
               FROM read_csv($f, header=true, all_varchar=true))""", {"f": files}).fetchall()[0]
    return first, last, rows


def timed(args: list[str], home: Path, data_dir: Path, export: Path, chunk: int) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of ``python <args>`` in a fresh process, with the settings of this bench."""
    env = os.environ | {"DAGSTER_HOME": str(home), "CRIME_DATA_DIR": str(data_dir), "CRIME_EXPORT_PATH": str(export),
                        "CRIME_CHUNK_MONTHS": str(chunk)}
    # A small wrapper process runs the command and reports its own children's peak RSS, so each
    # measurement covers exactly one command.
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, sys.executable, *args],
                         cwd=home, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, int(out.stdout.strip().splitlines()[-1]) / 1024


def backfill(first: str, last: str, chunk: int, home: Path, data_dir: Path, export: Path) -> tuple[float, float]:
    """`python -m crime_assets.backfill` over first...last: (wall seconds, peak RSS MB)."""
    return timed(["-m", "crime_assets.backfill", "--from", first, "--to", last, "--chunk-months", str(chunk)],
                 home, data_dir, export, chunk)


def train(chunk: int, home: Path, data_dir: Path, export: Path) -> tuple[float, float]:
    """The arrest model trained on its rolling window of the warehouse, as a user would run it."""
    return timed(["-m", "dagster", "asset", "materialize", "-m", "crime_assets.definitions", "--select", "arrest_model"],
                 home, data_dir, export, chunk)


def rows_in(data_dir: Path, first: str, last: str) -> int:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*) FROM raw_incidents WHERE month BETWEEN $a AND $b",
                           {"a": first, "b": last}).fetchall()[0][0]


def add_months(key: str, n: int) -> str:
    year, month = map(int, key.split("-"))
    index = year * 12 + month - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--export", type=Path, default=GENERATED)
    parser.add_argument("--chunk-months", type=int, default=24)
    args = parser.parse_args()
    files = sorted(str(p) for p in args.export.glob("*.csv.gz"))
    if not files:
        raise SystemExit(f"no export at {args.export}: run python bench/make_full_history.py first")
    first, last, total = months_of(files)
    scan = scan_seconds(files)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, span_last in (("12 months", add_months(first, 11)), ("48 months", add_months(first, 47)),
                                 ("single late month alone", last), ("all months", last)):
            span_first = last if label.startswith("single") else first
            home, data_dir = Path(tmp) / label.replace(" ", "_"), Path(tmp) / (label.replace(" ", "_") + "_data")
            home.mkdir()
            shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
            wall, rss = backfill(span_first, span_last, args.chunk_months, home, data_dir, args.export)
            figures[label] = (wall, rss, rows_in(data_dir, span_first, span_last))
            if label == "all months":
                rerun = backfill(last, last, args.chunk_months, home, data_dir, args.export)
                figures["single late month after the full backfill"] = (*rerun, rows_in(data_dir, last, last))
                training = train(args.chunk_months, home, data_dir, args.export)
            else:
                shutil.rmtree(data_dir, ignore_errors=True)
    wall_all = figures["all months"][0]
    print(f"input: {args.export} ({len(files)} files, {total:,} rows, {first}...{last}); chunks of {args.chunk_months} months")
    print(f"duckdb scan of the same files (baseline): {scan:7.1f} s")
    for label, (wall, rss, rows) in figures.items():
        print(f"{label:42s} {wall:7.1f} s  {rows:>10,} rows  {rows / wall:>9,.0f} rows/s  peak RSS {rss:,.0f} MB")
    print(f"arrest_model trained on the full-history warehouse (its rolling window): {training[0]:7.1f} s"
          f"  peak RSS {training[1]:,.0f} MB")
    rate48, rate_all = figures["48 months"][2] / figures["48 months"][0], figures["all months"][2] / wall_all
    print(f"full backfill: {wall_all / 60:.1f} min (target <= 10), {wall_all / scan:.1f}x scan (target <= 10x); "
          f"rate all vs 48 months: {rate_all / rate48 - 1:+.0%} (target >= -25%)")


if __name__ == "__main__":
    main()
