"""Benchmark: the H3 gold layer on top of 24 months of raw_incidents + incidents_enriched.

    python bench/bench_gold_layer.py [--reps 3] [--export PATH]

Each repetition runs in a fresh process with a fresh data dir, from the shipped sample (2015-01 to
2016-12) unless --export says otherwise: one ranged run of police_stations + raw_incidents +
incidents_enriched, then, in the same process, one ranged run of the gold assets (h3_monthly_stats,
h3_daily_counts, h3_cell_labels, hotspots, hotspot_maps with its 48 maps), then a single-month gold run (2016-12) as
a monthly schedule would do it. Wall seconds of each run and of each step; medians are printed.
Target (issue 3): the gold layer adds at most 50% to the run time of raw + enriched. The floor line
divides the gold layer's CPU seconds by the cores: the wall time it could reach with every core busy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "crime_assets" / "sample_data"
FOUNDATION = ["police_stations", "raw_incidents", "incidents_enriched"]
GOLD = ["h3_monthly_stats", "h3_daily_counts", "h3_cell_labels", "hotspots", "hotspot_maps"]


def _steps(result) -> dict[str, float]:
    return {e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.all_events
            if e.event_type_value == "STEP_SUCCESS" and e.event_specific_data is not None}


def worker(export: str, data_dir: str) -> dict:
    """One repetition in this process; prints its figures as JSON."""
    sys.path.insert(0, str(REPO))
    import warnings

    warnings.filterwarnings("ignore")
    import duckdb

    from crime_assets.runs import materialize_months
    from crime_assets.common.settings import Settings

    settings = Settings.from_env({"CRIME_DATA_DIR": data_dir, "CRIME_EXPORT_PATH": export})
    started, cpu = time.perf_counter(), time.process_time()
    foundation = materialize_months(FOUNDATION, "2015-01", "2016-12", settings)
    foundation_wall, foundation_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    gold = materialize_months(GOLD, "2015-01", "2016-12", settings)
    gold_wall, gold_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    materialize_months(GOLD, "2016-12", None, settings)
    single_wall = time.perf_counter() - started
    with duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("incidents_enriched", "h3_monthly_stats", "h3_daily_counts", "h3_cell_labels", "hotspots")}
    maps = len(list((Path(data_dir) / "reports" / "hotspots").glob("*.png")))
    return {"foundation_s": foundation_wall, "gold_s": gold_wall, "single_month_gold_s": single_wall,
            "foundation_cpu_s": foundation_cpu, "gold_cpu_s": gold_cpu, "load": os.getloadavg()[0],
            "steps": {**_steps(foundation), **_steps(gold)}, "rows": rows, "maps": maps,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(export: str, data_dir: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", export, data_dir],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--export", default=str(SAMPLE))
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    reps = []
    for _ in range(args.reps):
        with tempfile.TemporaryDirectory() as data_dir:
            reps.append(run_worker(args.export, data_dir))
    med = statistics.median
    foundation, gold = med(r["foundation_s"] for r in reps), med(r["gold_s"] for r in reps)
    rows = reps[0]["rows"]
    print(f"input: {args.export} (2015-01...2016-12, {rows['incidents_enriched']:,} incidents); "
          f"{args.reps} repetitions, medians; {os.cpu_count()} CPUs")
    print(f"raw + enriched (one ranged run, with stations): {foundation:6.2f} s")
    for step in FOUNDATION:
        print(f"  step {step:20s} {med(r['steps'][step] for r in reps):6.2f} s")
    print(f"gold layer (one ranged run):                    {gold:6.2f} s"
          f"  = {gold / foundation:.0%} of raw + enriched (target <= 50%)")
    for step in GOLD:
        print(f"  step {step:20s} {med(r['steps'][step] for r in reps):6.2f} s  {rows[step]:>10,} rows")
    print(f"  maps drawn: {reps[0]['maps']} PNGs")
    print(f"gold layer, one month (2016-12) afterwards:     {med(r['single_month_gold_s'] for r in reps):6.2f} s")
    cpu_foundation, cpu_gold = med(r["foundation_cpu_s"] for r in reps), med(r["gold_cpu_s"] for r in reps)
    print(f"process CPU seconds (all threads; steadier than wall on a shared machine): raw + enriched "
          f"{cpu_foundation:.2f}, gold {cpu_gold:.2f} = {cpu_gold / cpu_foundation:.0%}")
    # No schedule of the gold layer's work on these cores can finish faster than its CPU seconds spread
    # evenly over all of them: below this floor only less work helps, not more overlap.
    floor = cpu_gold / os.cpu_count()
    print(f"gold layer's floor on {os.cpu_count()} cores (CPU seconds / cores, every core busy throughout): "
          f"{floor:.2f} s = {floor / foundation:.0%} of raw + enriched")
    print("per repetition, wall raw+enriched / gold (load average): "
          + ", ".join(f"{r['foundation_s']:.2f} / {r['gold_s']:.2f} ({r['load']:.1f})" for r in reps))
    print(f"peak RSS {max(r['peak_rss_mb'] for r in reps):,.0f} MB")


if __name__ == "__main__":
    main()
