"""Benchmark: the two warehouse backends (CRIME_WAREHOUSE=duckdb | ducklake) in the same invocation.

    python bench/bench_warehouse_backends.py [--reps 3]

Starts a throwaway PostgreSQL on loopback for the DuckLake catalog (Debian's postgresql, as the tests do)
and, per repetition, alternating the backends, in a fresh process, a fresh data dir and (DuckLake) an
empty catalog with its Parquet files on local disk:
- the shipped 24 months (2015-01...2016-12) as ONE ranged run of raw + enriched + H3 + features
  (police_stations, raw_incidents, incidents_enriched, h3_monthly_stats, h3_daily_counts, h3_cell_labels,
  arrest_features); target: DuckLake within 1.5x the file's time;
- then the single month 2016-12 re-run through the same assets;
Then once per backend, a reader during a backfill: the 24 months re-run in a subprocess while this process
runs an analyst's query (incidents per month and the busiest r8 cell of the last month) in a loop, on one
connection held open (DuckLake) or a fresh read-only connection per query (the file: a held one would stop
the run); the latencies and the queries that failed. Target: readers never wait for a writer.
Medians of the repetitions are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHAIN = ["police_stations", "raw_incidents", "incidents_enriched", "h3_monthly_stats", "h3_daily_counts",
         "h3_cell_labels", "arrest_features"]
BACKENDS = ("duckdb", "ducklake")
ANALYST_QUERY = """SELECT (SELECT count(DISTINCT month) FROM incidents_enriched) AS months,
                          (SELECT sum(incidents) FROM h3_monthly_stats WHERE month = '2016-12' AND resolution = 8) AS incidents,
                          (SELECT h3_cell FROM h3_monthly_stats WHERE month = '2016-12' AND resolution = 8
                           ORDER BY incidents DESC, h3_cell LIMIT 1) AS busiest_cell"""


def worker(first: str, last: str, single: str | None) -> dict:
    """One ranged run (and optionally a single month afterwards) in this process, from the environment."""
    sys.path.insert(0, str(REPO))
    import warnings

    warnings.filterwarnings("ignore")
    from crime_assets.common.settings import Settings
    from crime_assets.runs import materialize_months

    settings = Settings.from_env()
    started = time.perf_counter()
    assert materialize_months(CHAIN, first, last, settings).success
    figures = {"range_s": time.perf_counter() - started}
    if single:
        started = time.perf_counter()
        assert materialize_months(CHAIN, single, None, settings).success
        figures["single_s"] = time.perf_counter() - started
    return figures


def worker_command(first: str, last: str, single: str | None) -> list[str]:
    return [sys.executable, __file__, "--worker", first, last, single or ""]


def run_worker(env: dict[str, str], single: str | None = "2016-12") -> dict:
    out = subprocess.run(worker_command("2015-01", "2016-12", single), env=env, check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def empty_catalog(pg) -> None:
    with pg.connect() as con, con.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def reader_during_backfill(env: dict[str, str], backend: str) -> dict:
    """Analyst queries in this process while a 24-month re-run writes from another."""
    from crime_assets import warehouse

    writer = subprocess.Popen(worker_command("2015-01", "2016-12", None), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    latencies, failures, answers = [], 0, set()
    held = warehouse.connect(read_only=True, environ=env) if backend == "ducklake" else None
    started = time.perf_counter()
    while writer.poll() is None:
        t0 = time.perf_counter()
        try:
            if held is not None:
                answers.add(held.execute(ANALYST_QUERY).fetchone())
            else:
                with warehouse.connect(read_only=True, environ=env) as con:
                    answers.add(con.execute(ANALYST_QUERY).fetchone())
            latencies.append(time.perf_counter() - t0)
        except Exception:  # the file backend: "Could not set lock on file"
            failures += 1
            time.sleep(0.05)
    backfill_s = time.perf_counter() - started
    if held is not None:
        held.close()
    assert writer.returncode == 0, f"the backfill failed beside the reader ({backend})"
    return {"backfill_s": backfill_s, "queries": len(latencies), "failed": failures, "answers": len(answers),
            "median_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "max_ms": 1000 * max(latencies) if latencies else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.worker[2] or None)))
        return

    sys.path.insert(0, str(REPO))
    from crime_assets.devservers import postgres_server

    base = {**os.environ, "PYTHONPATH": str(REPO)}
    runs: dict[str, list[dict]] = {b: [] for b in BACKENDS}
    readers: dict[str, dict] = {}
    with postgres_server(db_name="crime_lake", username="crime") as pg, tempfile.TemporaryDirectory() as root:
        def env_for(backend: str, name: str) -> dict[str, str]:
            data_dir = Path(root) / name
            extra = pg.ducklake_env(data_dir / "lake") if backend == "ducklake" else {}
            if backend == "ducklake":
                empty_catalog(pg)
            return {**base, "CRIME_DATA_DIR": str(data_dir), **extra}

        for rep in range(args.reps):
            for backend in BACKENDS if rep % 2 == 0 else BACKENDS[::-1]:
                runs[backend].append(run_worker(env_for(backend, f"{backend}-{rep}")))
                print(f"rep {rep} {backend}: {runs[backend][-1]}", flush=True)
        for backend in BACKENDS:
            env = env_for(backend, f"{backend}-reader")
            run_worker(env, single=None)
            readers[backend] = reader_during_backfill(env, backend)
            print(f"reader {backend}: {readers[backend]}", flush=True)

    med = statistics.median
    print(f"\nshipped sample 2015-01...2016-12 (532,742 incidents), {args.reps} repetitions alternating the backends, "
          f"medians; {os.cpu_count()} CPUs; DuckLake: catalog in a local PostgreSQL, Parquet on local disk")
    print(f"{'':52s}{'duckdb file':>14s}{'ducklake':>12s}{'ratio':>8s}")
    for key, label in (("range_s", "24 months raw + enriched + H3 + features, one run"),
                       ("single_s", "the single month 2016-12 re-run")):
        a, b = med(r[key] for r in runs["duckdb"]), med(r[key] for r in runs["ducklake"])
        print(f"{label:52s}{a:12.1f} s{b:10.1f} s{b / a:7.2f}x")
    print("  (target: ducklake within 1.5x on the 24 months)")
    print("per repetition, 24 months: " + "; ".join(
        f"{b} " + ", ".join(f"{r['range_s']:.1f}" for r in runs[b]) for b in BACKENDS))
    print("\na reader during a 24-month re-run (the analyst query in a loop):")
    for backend, r in readers.items():
        print(f"  {backend:9s} backfill {r['backfill_s']:5.1f} s; {r['queries']} queries answered "
              f"(median {r['median_ms']:.0f} ms, max {r['max_ms']:.0f} ms), {r['failed']} failed to open the warehouse")


if __name__ == "__main__":
    main()
