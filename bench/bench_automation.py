"""Benchmark: the downstream automation's ticks, and what a 300-month backfill turns into downstream.

    python bench/bench_automation.py [--reps 5] [--months 300] [--rows 40] [--skip-24] [--skip-300]

1. The 24 shipped months (2015-2016) through every asset of monthly_assets_job in one ranged run, in a
   fresh data dir and Dagster instance; then downstream_automation_sensor is ticked as the daemon does
   (in the code location's process, cursor carried over, at a fixed clock): its first tick (everything
   built: nothing requested), steady ticks (nothing changed; median of --reps), and the tick after one
   month's raw_incidents is reloaded (its chain and the history readers of the 12 months after it).
   CPU seconds of the tick are printed next to wall seconds (the machine is shared).
2. A fresh warehouse of --months months (from 2001-01; --rows real incidents of 2016 per month, given
   new ids and dates) loaded into raw_incidents by ONE ranged run, as `dagster asset materialize
   --partition-range` does; then the first tick of the sensor: the run requests it makes and the months
   of each asset they hold. Then `dagster-daemon run` on that instance: the runs the backfill daemon
   launches for it, and the wall time until every downstream month is built.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
warnings.filterwarnings("ignore")

import dagster as dg  # noqa: E402
import pandas as pd  # noqa: E402

from crime_assets.common.months import shift_month  # noqa: E402
from crime_assets.definitions import build_defs  # noqa: E402
from crime_assets.defs.automation.jobs import monthly_job_keys  # noqa: E402
from crime_assets.runs import materialize_months  # noqa: E402
from crime_assets.common.settings import Settings  # noqa: E402
from crime_assets.ingestion.sample_export import redated, sample_rows, write_export  # noqa: E402

SENSOR = "downstream_automation_sensor"
CLOCK = datetime(2026, 11, 21, 10, 0, tzinfo=ZoneInfo("America/Chicago"))  # "now" of every tick: its newest month is 2026-10


class Ticker:
    """Ticks the automation sensor like the daemon: in this process, the cursor of each tick feeds the next."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance, self.cursor = defs, instance, None
        self.sensor = defs.resolve_sensor_def(SENSOR)

    def tick(self):
        context = dg.build_sensor_context(instance=self.instance, definitions=self.defs,
                                          resources=dict(self.defs.resources), cursor=self.cursor)
        wall, cpu = time.perf_counter(), time.process_time()
        with dg.partition_loading_context(effective_dt=CLOCK):
            result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result, time.perf_counter() - wall, time.process_time() - cpu


def requested_months(result) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in result.run_requests or []:
        if request.asset_graph_subset is not None:
            subsets = request.asset_graph_subset.partitions_subsets_by_asset_key
            for key, subset in subsets.items():
                counts[key.to_user_string()] = counts.get(key.to_user_string(), 0) + len(subset)
            for key in request.asset_graph_subset.non_partitioned_asset_keys:
                counts[key.to_user_string()] = counts.get(key.to_user_string(), 0) + 1
        else:
            for key in request.asset_selection or []:
                counts[key.to_user_string()] = counts.get(key.to_user_string(), 0) + 1
    return dict(sorted(counts.items()))


def shipped_months(reps: int) -> None:
    with tempfile.TemporaryDirectory() as scratch, dg.instance_for_test(temp_dir=scratch) as instance:
        settings = Settings.from_env({"CRIME_DATA_DIR": str(Path(scratch) / "data")})
        defs = build_defs(settings)
        keys = sorted(k.to_user_string() for k in monthly_job_keys(defs.assets)) + ["police_stations"]
        started = time.perf_counter()
        assert materialize_months(keys, "2015-01", "2016-12", settings, instance=instance).success
        print(f"24 months through {len(keys)} assets in one run: {time.perf_counter() - started:.0f} s")
        ticker = Ticker(defs, instance)
        first, wall, cpu = ticker.tick()
        print(f"first tick (everything built): {wall:.2f} s wall, {cpu:.2f} s CPU; requested {requested_months(first)}")
        walls, cpus = [], []
        for _ in range(reps):
            result, wall, cpu = ticker.tick()
            assert not result.run_requests
            walls.append(wall)
            cpus.append(cpu)
        print(f"steady tick (nothing changed), median of {reps}: {statistics.median(walls):.2f} s wall, "
              f"{statistics.median(cpus):.2f} s CPU")
        assert materialize_months(["raw_incidents"], "2015-06", None, settings, instance=instance).success
        result, wall, cpu = ticker.tick()
        print(f"tick after raw_incidents 2015-06 was reloaded: {wall:.2f} s wall, {cpu:.2f} s CPU; "
              f"{len(result.run_requests)} request(s): {requested_months(result)}")


def synthetic_export(folder: Path, first: str, months: int, rows: int) -> Path:
    """``rows`` real geolocated incidents of each month of 2016, moved to each of ``months`` months from
    ``first``, with ids and case numbers of their own (ids are unique across months)."""
    source = {m: sample_rows(f"2016-{m:02d}") for m in range(1, 13)}
    frames = []
    for index in range(months):
        month = shift_month(first, index)
        frame = source[int(month[5:])]
        frame = frame[frame["Latitude"].astype(str).str.len() > 0].head(rows)
        frame = redated(frame, month)
        frame["ID"] = [str(100_000_000 + index * 10_000 + i) for i in range(len(frame))]
        frame["Case Number"] = [f"ZZ{index:04d}{i:04d}" for i in range(len(frame))]
        frame["Year"] = month[:4]
        frames.append(frame)
    return write_export(folder / "synthetic.csv", pd.concat(frames))


def backfill_of(months: int, rows: int) -> None:
    from crime_assets.devservers import dagster_env, dagster_services, fresh_dagster_home

    last = shift_month("2001-01", months - 1)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        export = synthetic_export(root / "exports", "2001-01", months, rows)
        home, data_dir = fresh_dagster_home(root), root / "data"
        extra = {"CRIME_EXPORT_PATH": str(export), "CRIME_AUTOMATION_INTERVAL_SECONDS": "5",
                 "CRIME_SENSOR_LOOKBACK_MONTHS": "1"}
        settings = Settings.from_env({"CRIME_DATA_DIR": str(data_dir), **extra})
        os.chdir(home)  # dagster.yaml keeps the storage under .dagster_home/ of the working directory
        with dg.DagsterInstance.from_config(str(home)) as instance:
            started = time.perf_counter()
            assert materialize_months(["police_stations", "raw_incidents"], "2001-01", last, settings,
                                      instance=instance).success
            print(f"\n{months} months x {rows} rows into raw_incidents, one ranged run: {time.perf_counter() - started:.0f} s")
            ticker = Ticker(build_defs(settings), instance)
            result, wall, cpu = ticker.tick()
            backfills = [r for r in result.run_requests if r.requires_backfill_daemon()]
            print(f"first tick: {wall:.2f} s wall, {cpu:.2f} s CPU; {len(result.run_requests)} run request(s), "
                  f"{len(backfills)} of them backfills; months per asset: {requested_months(result)}")
            before = {r.run_id for r in instance.get_runs()}
        # The same instance under the daemon: its own first tick makes the same request, and the backfill
        # daemon runs it.
        env = dagster_env(home, data_dir, extra)
        downstream = sorted(requested_months(result))
        with dagster_services(home, env, webserver=False) as daemon, \
                dg.DagsterInstance.from_config(str(home)) as instance:
            started = time.perf_counter()
            active = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                      dg.DagsterRunStatus.STARTED]

            def built() -> bool:
                status = {a: instance.get_status_by_partition(dg.AssetKey(a), [shift_month("2001-01", i) for i in
                                                                               range(months)], build_defs(settings)
                                                               .resolve_assets_def(a).partitions_def)
                          for a in downstream}
                done = all(s is not None and all(v is not None and v.value == "MATERIALIZED" for v in s.values())
                           for s in status.values())
                return done and not instance.get_runs(dg.RunsFilter(statuses=active))

            daemon.wait_for(f"every downstream month of {months}", built, 3600, interval=10)
            runs = [r for r in instance.get_runs() if r.run_id not in before]
            print(f"daemon: every downstream month built {time.perf_counter() - started:.0f} s after its start, in "
                  f"{len(runs)} run(s) ({sorted({r.status.value for r in runs})}); "
                  f"backfills: {len(instance.get_backfills())}")
            for run in sorted(runs, key=lambda r: r.run_id):
                selection = sorted(k.to_user_string() for k in run.asset_selection or ())
                print(f"  run {run.run_id[:8]} {run.status.value}: {selection} "
                      f"{run.tags.get('dagster/asset_partition_range_start', run.tags.get('dagster/partition', ''))}"
                      f"...{run.tags.get('dagster/asset_partition_range_end', '')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--months", type=int, default=300)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--skip-24", action="store_true")
    parser.add_argument("--skip-300", action="store_true")
    args = parser.parse_args()
    if not args.skip_24:
        shipped_months(args.reps)
    if not args.skip_300:
        backfill_of(args.months, args.rows)


if __name__ == "__main__":
    main()
