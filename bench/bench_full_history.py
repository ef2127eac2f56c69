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
- the arrest model trained afterwards on that warehouse (it reads only its rolling window): wall, peak RSS;
- the events Dagster recorded for the full backfill and a lower bound of the time storing them took
  (asset events times the cost of one materialisation, measured on a scratch instance of the same dagster.yaml).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
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


ASSET_EVENTS = ("ASSET_MATERIALIZATION", "ASSET_MATERIALIZATION_PLANNED", "ASSET_CHECK_EVALUATION",
                "ASSET_CHECK_EVALUATION_PLANNED")


def count_events_and_time_one() -> dict:
    """Run in the instance's directory (DAGSTER_HOME): the events of every run there, by type, and the cost
    of storing one asset materialisation on that kind of instance: the median of 200 run-less
    materialisations of monthly partitions reported to a scratch instance made from the same dagster.yaml."""
    import warnings

    warnings.filterwarnings("ignore")
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        counts = Counter(entry.dagster_event.event_type_value if entry.dagster_event else "log"
                         for record in instance.get_run_records()
                         for entry in instance.all_logs(record.dagster_run.run_id))
    costs = []
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copy(Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml", scratch)
        os.chdir(scratch)
        os.environ["DAGSTER_HOME"] = scratch
        with dg.DagsterInstance.get() as instance:
            for i in range(200):
                started = time.perf_counter()
                instance.report_runless_asset_event(dg.AssetMaterialization(
                    "raw_incidents", partition=f"{2001 + i // 12}-{i % 12 + 1:02d}", metadata={"dagster/row_count": i}))
                costs.append(time.perf_counter() - started)
    return {"events": counts, "ms_per_event": 1000 * statistics.median(costs)}


def event_figures(home: Path) -> dict:
    """count_events_and_time_one() in a fresh process, for the instance of ``home``."""
    out = subprocess.run([sys.executable, __file__, "--count-events"], cwd=home,
                         env=os.environ | {"DAGSTER_HOME": str(home)}, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--count-events", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_events:
        print(json.dumps(count_events_and_time_one()))
        return
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
                events = event_figures(home)
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
    # Asset events (materialisations, their planned events, check results) each write to the run's log and
    # to the asset index; a run-less materialisation is the cheapest of them, so this is a lower bound.
    counts, ms = events["events"], events["ms_per_event"]
    asset_events = sum(counts.get(kind, 0) for kind in ASSET_EVENTS)
    stored = asset_events * ms / 1000
    print(f"Dagster's event log of the full backfill: {sum(counts.values()):,} events, {asset_events:,} of them asset "
          f"events ({counts.get('ASSET_MATERIALIZATION', 0):,} materialisations); at {ms:.1f} ms each (a run-less "
          f"materialisation on a scratch instance of the same dagster.yaml, median of 200) storing them takes "
          f">= {stored:.0f} s = {stored / scan:.1f}x the scan")
    rate48, rate_all = figures["48 months"][2] / figures["48 months"][0], figures["all months"][2] / wall_all
    print(f"full backfill: {wall_all / 60:.1f} min (target <= 10), {wall_all / scan:.1f}x scan (target <= 10x); "
          f"rate all vs 48 months: {rate_all / rate48 - 1:+.0%} (target >= -25%)")


if __name__ == "__main__":
    main()
