"""Benchmark: Dagster's batched event writes (DAGSTER_EVENT_BATCH_SIZE) on the production profile.

    python bench/bench_event_batch.py [--reps 2] [--batch-size 100] [--full-history [--last 2026-10]] [--no-sample] [--batched-first]

The production profile as deploy/ runs it: the instance of deploy/dagster.prod.yaml (runs and events in
PostgreSQL) and the DuckLake warehouse (CRIME_WAREHOUSE=ducklake, catalog in the same PostgreSQL server,
Parquet on local disk), on a throwaway PostgreSQL on loopback. Each repetition, alternating the two
settings, starts from an empty instance and an empty lake and runs `python -m crime_assets.backfill`
(consecutive 24-month runs of `monthly_assets_job`):
- the shipped 24 months, 2015-01...2016-12;
- with --full-history, also 2001-01...--last (default 2026-10) from bench/generated/full_history (make
  it once with `python bench/make_full_history.py`), once per setting; --no-sample skips the 24 months.
Wall seconds (medians) and the events stored are printed for DAGSTER_EVENT_BATCH_SIZE unset and set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "crime_assets" / "sample_data"
FULL_HISTORY = REPO / "bench" / "generated" / "full_history"


def reset(pg) -> None:
    with pg.connect() as con, con.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def events_stored(pg) -> int:
    with pg.connect() as con, con.cursor() as cur:
        cur.execute("SELECT count(*) FROM event_logs")
        return cur.fetchone()[0]


def backfill(pg, root: Path, first: str, last: str, export: Path, batch: int | None) -> float:
    reset(pg)
    home, data_dir = root / "home", root / "data"
    shutil.rmtree(root, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "dagster.prod.yaml", home / "dagster.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(home), "CRIME_DATA_DIR": str(data_dir),
           "CRIME_EXPORT_PATH": str(export), **pg.dagster_env(), **pg.ducklake_env(data_dir / "lake")}
    env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    if batch:
        env["DAGSTER_EVENT_BATCH_SIZE"] = str(batch)
    subprocess.run([shutil.which("dagster") or "dagster", "instance", "migrate"], cwd=home, env=env, check=True,
                   capture_output=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "crime_assets.backfill", "--from", first, "--to", last], cwd=home, env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--full-history", action="store_true")
    parser.add_argument("--last", default="2026-10", help="last month of the full history")
    parser.add_argument("--no-sample", action="store_true", help="only the full history")
    parser.add_argument("--batched-first", action="store_true", help="start each pair with the batched setting")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from crime_assets.devservers import postgres_server

    settings = (args.batch_size, None) if args.batched_first else (None, args.batch_size)
    label = {None: "unset", args.batch_size: f"{args.batch_size}"}
    spans = [] if args.no_sample else [("24 months 2015-01...2016-12", "2015-01", "2016-12", SAMPLE, args.reps)]
    if args.full_history:
        if not FULL_HISTORY.exists():
            sys.exit(f"no {FULL_HISTORY}: run python bench/make_full_history.py first")
        spans.append((f"full history 2001-01...{args.last}", "2001-01", args.last, FULL_HISTORY, 1))
    results: dict[tuple[str, int | None], list[float]] = {}
    events: dict[tuple[str, int | None], int] = {}
    with postgres_server(db_name="crime", username="crime") as pg, tempfile.TemporaryDirectory() as tmp:
        for name, first, last, export, reps in spans:
            for rep in range(reps):
                for batch in settings if rep % 2 == 0 else settings[::-1]:
                    wall = backfill(pg, Path(tmp) / "run", first, last, export, batch)
                    results.setdefault((name, batch), []).append(wall)
                    events[(name, batch)] = events_stored(pg)
                    print(f"{name}, DAGSTER_EVENT_BATCH_SIZE {label[batch]}: {wall:.1f} s, "
                          f"{events[(name, batch)]:,} events", flush=True)
    print(f"\nproduction profile (PostgreSQL instance, DuckLake warehouse), python -m crime_assets.backfill, "
          f"medians; {os.cpu_count()} CPUs")
    for name, *_ in spans:
        unset, batched = (statistics.median(results[(name, b)]) for b in (None, args.batch_size))
        print(f"{name:36s} unset {unset:7.1f} s   batch {args.batch_size}: {batched:7.1f} s   "
              f"({batched / unset:.2f}x; {events[(name, None)]:,} events)")


if __name__ == "__main__":
    main()
