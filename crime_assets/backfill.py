"""Backfill a long range of months as consecutive ranged runs of a bounded size.

    python -m crime_assets.backfill --from 2001-01 --to 2026-10 [--chunk-months 24]

Each chunk is one run of `monthly_assets_job` in the Dagster instance of DAGSTER_HOME (visible in the
UI), so memory is bounded by the chunk, not by the range. A failed chunk stops the backfill and
names the months to resume from; the chunks before it stay materialised.
"""

from __future__ import annotations

import argparse
import sys
import time

from crime_assets.quickstart import instance_home, log_library_warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="first", required=True, help="first month (YYYY-MM)")
    parser.add_argument("--to", dest="last", required=True, help="last month (YYYY-MM)")
    parser.add_argument("--chunk-months", type=int, default=24, help="months per run (default 24)")
    args = parser.parse_args(argv)
    instance_home()
    log_library_warnings()

    import dagster as dg

    from crime_assets.common.months import MonthWindow
    from crime_assets.definitions import defs
    from crime_assets.runs import partition_range_tags

    window = MonthWindow.from_keys(args.first, args.last)
    job = defs.resolve_job_def("monthly_assets_job")
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        # Not a Dagster backfill: Dagster 1.13 splits a backfill into runs (BackfillPolicy.multi_run) only
        # in the daemon, and then `dagster asset materialize --partition-range` refuses the assets (it needs
        # single_run); `dagster job backfill` queues one run per month for the daemon. So the assets keep
        # single_run() and, without a daemon, these runs of --chunk-months months are the bounded backfill.
        for chunk in window.chunks(args.chunk_months):
            chunk_started = time.perf_counter()
            result = job.execute_in_process(
                instance=instance,
                tags=partition_range_tags(chunk.keys[0], chunk.keys[-1]) | {"crime_assets/backfill": window.label},
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                raise_on_error=False,
            )
            if not result.success:
                print(f"{chunk.label}: run {result.run_id} failed; resume with --from {chunk.keys[0]}", file=sys.stderr)
                return 1
            print(f"{chunk.label}: run {result.run_id} done in {time.perf_counter() - chunk_started:.1f} s", flush=True)
    print(f"{window.label}: {len(window.keys)} months in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
