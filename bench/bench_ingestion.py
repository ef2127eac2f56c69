"""Benchmark: 24 real months through raw_incidents + incidents_enriched from the bulk export.

    python bench/bench_ingestion.py [--reps 3] [--export PATH]

Each repetition runs in a fresh process with a fresh data dir and reports the run's wall time and the
process's peak RSS. The baseline, measured in the same invocation, is the time DuckDB takes just to
scan the same export files (count(*) over read_csv, all columns as text). Medians are printed.
Targets (issue 2): the 24-month run within 8x the scan time; peak RSS under 3 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "chicago"
ASSETS = ["police_stations", "raw_incidents", "incidents_enriched"]


def default_export() -> str:
    return str(SHARED) if (SHARED / "crimes_2015.csv.gz").exists() else str(REPO / "crime_assets" / "sample_data")


def worker(export: str, first: str, last: str, data_dir: str) -> dict:
    """One run in this process; prints its figures as JSON."""
    sys.path.insert(0, str(REPO))
    import duckdb

    from crime_assets.runs import materialize_months
    from crime_assets.common.settings import Settings

    settings = Settings.from_env({"CRIME_DATA_DIR": data_dir, "CRIME_EXPORT_PATH": export})
    if first != last:  # a single-month run measures the steady state: the stations are already there
        materialize_months(["police_stations"], first, None, settings)
    started = time.perf_counter()
    result = materialize_months(ASSETS if first != last else ASSETS[1:], first, last, settings)
    wall = time.perf_counter() - started
    steps = {e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.all_events
             if e.event_type_value == "STEP_SUCCESS" and e.event_specific_data is not None}
    with duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows, = con.execute("SELECT count(*) FROM incidents_enriched WHERE month BETWEEN $a AND $b",
                            {"a": first, "b": last}).fetchone()
    return {"wall_s": wall, "rows": rows, "steps": steps,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(export: str, first: str, last: str, data_dir: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", export, first, last, data_dir],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--export", default=default_export())
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    sys.path.insert(0, str(REPO))
    from crime_assets.ingestion.export_files import resolve_export_files
    from scan_baseline import scan_seconds

    scans, ranged, single = [], [], []
    for _ in range(args.reps):
        scans.append(scan_seconds(resolve_export_files(args.export)))
        with tempfile.TemporaryDirectory() as data_dir:
            ranged.append(run_worker(args.export, "2015-01", "2016-12", data_dir))
            single.append(run_worker(args.export, "2016-06", "2016-06", data_dir))
    med = statistics.median
    scan, wall = med(scans), med(r["wall_s"] for r in ranged)
    rows = ranged[0]["rows"]
    print(f"input: {args.export} (24 months, {rows:,} rows); {args.reps} repetitions, medians")
    print(f"duckdb scan of the same files (baseline): {scan:6.2f} s")
    print(f"24-month ranged run (stations+raw+enriched): {wall:6.2f} s  = {wall / scan:4.1f}x scan (target <= 8x)"
          f"  {rows / wall:,.0f} rows/s")
    for step in ranged[0]["steps"]:
        print(f"  step {step:20s} {med(r['steps'][step] for r in ranged):6.2f} s")
    print(f"single month (2016-06, raw+enriched): {med(r['wall_s'] for r in single):6.2f} s"
          f"  {single[0]['rows']:,} rows")
    print(f"peak RSS: 24-month run {max(r['peak_rss_mb'] for r in ranged):,.0f} MB, single month "
          f"{max(r['peak_rss_mb'] for r in single):,.0f} MB (target < 3,072 MB)")


if __name__ == "__main__":
    main()
