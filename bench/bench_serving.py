"""Benchmark: the scoring service (issue 20) against its targets.

    python bench/bench_serving.py [--data-dir DIR] [--requests 1000] [--batches 20] [--fresh]

Uses (or builds, in bench/output/serving unless --data-dir) a data dir holding the shipped 24 months
through arrest_features and arrest_model trained with its defaults (train 2015-11..2016-10, validate
2016-11, test 2016-12; the first version clears the gate and becomes champion). Starts the service with
the README's command (uvicorn crime_assets.serving.app:app) on a free loopback port, and measures with
one client (httpx, one keep-alive connection, request bodies encoded beforehand), wall time and the
CPU time the server process spent (the figure that does not depend on what else runs on the machine):

- single-record latency: --requests POST /predict one after another, each a different record of
  2016-12 (Socrata JSON, as the API returns them): median and p99 of the round trip;
- batch throughput: --batches POST /predict/batch of 1,000 consecutive records of 2016-12: records/s;
  for comparison also the two batches of 10,000 the month holds, three times each (10,000 is the default
  CRIME_SERVING_MAX_BATCH).

Baselines in the same run, on the same records, alternating with the service's requests one by one:
``load_model().predict_proba`` in this process (one record per call; batches of 1,000) -- the model's
own cost, to which the service adds HTTP, validation and JSON -- and GET /health, the HTTP round trip
with no scoring.

Targets: p99 under 20 ms for one record; at least 50,000 records/s in batches of 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCH = 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_batches(http, headers: dict, model, server_pid: int, batches: list[list[dict]]) -> dict[str, float]:
    """Each batch through the service, then through predict_proba in-process: records/s and per CPU second."""
    records = sum(len(b) for b in batches)
    wall = {"service": [], "direct": []}
    cpu = {"service": 0.0, "direct": 0.0}
    for batch in batches:
        body = json.dumps({"records": batch}).encode()
        before, started = cpu_seconds(server_pid), time.perf_counter()
        response = http.post("/predict/batch", content=body, headers=headers)
        wall["service"].append(time.perf_counter() - started)
        cpu["service"] += cpu_seconds(server_pid) - before
        assert len(response.json()["predictions"]) == len(batch), response.text[:300]
        before, started = time.process_time(), time.perf_counter()
        model.predict_proba(batch)
        wall["direct"].append(time.perf_counter() - started)
        cpu["direct"] += time.process_time() - before
    return {f"{side}_{what}": value for side in ("service", "direct") for what, value in (
        ("rate", records / sum(wall[side])), ("median_s", statistics.median(wall[side])), ("cpu_rate", records / cpu[side]))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_champion(data_dir: Path, fresh: bool) -> None:
    """A data dir with a champion of chicago_arrest, built from the shipped sample when missing."""
    from crime_assets import load_model

    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    try:
        load_model(tracking_uri=f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}")
        print(f"data dir: {data_dir} (reusing its champion)", flush=True)
        return
    except LookupError:
        pass
    import dagster as dg

    from crime_assets.definitions import build_defs
    from crime_assets.runs import materialize_months
    from crime_assets.common.settings import Settings

    settings = Settings.from_env({"CRIME_DATA_DIR": str(data_dir)})
    started = time.perf_counter()
    materialize_months(["police_stations", "raw_incidents", "incidents_enriched", "arrest_features"],
                       "2015-01", "2016-12", settings)
    gate = dg.AssetCheckKey(dg.AssetKey("arrest_model"), "challenger_clears_promotion_gate")
    job = build_defs(settings).resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("arrest_model"), dg.AssetKey("champion_model")}, asset_check_selection={gate})
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    print(f"data dir: {data_dir} (built and trained in {time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(REPO / "bench" / "output" / "serving"))
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--fresh", action="store_true", help="rebuild the data dir")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    warnings.filterwarnings("ignore")
    import duckdb
    import httpx

    from crime_assets import load_model
    from crime_assets.ingestion.socrata_records import socrata_records

    data_dir = Path(args.data_dir).resolve()
    ensure_champion(data_dir, args.fresh)
    model = load_model(tracking_uri=f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        month = con.execute("SELECT * FROM raw_incidents WHERE month = '2016-12' ORDER BY id").df()
    records = socrata_records(month)
    singles = records[:: max(1, len(records) // args.requests)][: args.requests]
    batches = [records[i * BATCH:(i + 1) * BATCH] for i in range(args.batches)]
    big_batches = [records[:10_000], records[10_000:20_000]] * 3
    single_bodies = [json.dumps(r).encode() for r in singles]

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRIME_", "MLFLOW_", "ARREST_"))}
    env |= {"CRIME_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    log = open(data_dir / "bench_serving.log", "wb")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "crime_assets.serving.app:app", "--host", "127.0.0.1",
                               "--port", str(port), "--no-access-log"], env=env, stdout=log, stderr=subprocess.STDOUT)
    headers = {"content-type": "application/json"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the service did not come up; see {data_dir / 'bench_serving.log'}")
                time.sleep(0.2)
            print(f"model: {model!r}\nrecords: 2016-12, {len(records):,} Socrata JSON records; "
                  f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}\n", flush=True)

            for record, body in zip(singles[:20], single_bodies[:20]):  # warm-up, both sides
                http.post("/predict", content=body, headers=headers)
                model.predict_proba([record])

            # Service and baseline alternate request by request, so both see the same machine.
            health, latency, direct, served, expected = [], [], [], [], []
            server_cpu = direct_cpu = 0.0
            for record, body in zip(singles, single_bodies):
                started = time.perf_counter()
                http.get("/health")
                health.append(time.perf_counter() - started)
                cpu, started = cpu_seconds(server.pid), time.perf_counter()
                response = http.post("/predict", content=body, headers=headers)
                latency.append(time.perf_counter() - started)
                server_cpu += cpu_seconds(server.pid) - cpu
                served.append(response.json()["arrest_probability"])
                cpu, started = time.process_time(), time.perf_counter()
                expected.append(model.predict_proba([record])[0, 1])
                direct.append(time.perf_counter() - started)
                direct_cpu += time.process_time() - cpu

            small = measure_batches(http, headers, model, server.pid, batches)
            big = measure_batches(http, headers, model, server.pid, big_batches)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert served == expected, "the service's scores differ from load_model().predict_proba"

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:9.1f}{percentile(values, 0.99) * 1000:9.1f}"

    print(f"{'one record (ms)':44s}{'median':>9s}{'p99':>9s}   target p99 < 20 ms")
    print(f"{'  POST /predict, round trip':44s}{ms(latency)}"
          f"   {'met' if percentile(latency, 0.99) < 0.020 else 'NOT met'}")
    print(f"{'  baseline: predict_proba([record]) in-process':44s}{ms(direct)}")
    print(f"{'  baseline: GET /health, round trip':44s}{ms(health)}")
    print(f"  CPU per record: the service {server_cpu / len(singles) * 1000:.1f} ms, predict_proba in-process "
          f"{direct_cpu / len(singles) * 1000:.1f} ms (what the wall times would be on an idle machine)")
    print(f"  ({args.requests:,} requests each, one client; the service's scores equal predict_proba's)")
    print(f"\n{'batches':44s}{'rec/s':>9s}{'median s':>9s}{'rec/CPU-s':>11s}   target >= 50,000 rec/s at 1,000")
    for label, figures in ((f"{args.batches} x 1,000", small), ("6 x 10,000", big)):
        print(f"{'  POST /predict/batch, ' + label:44s}{figures['service_rate']:9,.0f}{figures['service_median_s']:9.3f}"
              f"{figures['service_cpu_rate']:11,.0f}" + (f"   {'met' if figures['service_rate'] >= 50_000 else 'NOT met'}"
                                                        if figures is small else ""))
        print(f"{'  baseline: predict_proba, ' + label:44s}{figures['direct_rate']:9,.0f}{figures['direct_median_s']:9.3f}"
              f"{figures['direct_cpu_rate']:11,.0f}")
    print(f"  (one client; rec/CPU-s: records per CPU second of the server process, or of this one)\n"
          f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
