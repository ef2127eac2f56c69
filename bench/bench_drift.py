"""Benchmark: drift report generation for one month (issue 5; target: within 15 s for a month of ~25k rows).

    python bench/bench_drift.py [--reps 3] [--month 2016-06] [--data-dir DIR] [--fresh]

Works in its own data dir (bench/output/drift unless --data-dir). When that has no champion yet it is
seeded from bench/output/model (bench_model.py's data dir: the warehouse and MLflow store are copied) or,
without one, built: 2015-01..2016-12 through arrest_features from ../shared/data/chicago (else the
shipped sample) and an arrest_model trained on 2015 (validate 2016-01, test 2016-02). Then it measures:

- ``report``: crime_assets.monitoring.drift.judge_month for the month -- Evidently over the 48 features, the
  score and the label (reference: 20,000 rows of the champion's training months), the champion's
  scores and quality on the month, and the HTML file -- median of --reps, after one warm-up (imports);
- ``asset``: one drift_report materialisation through Dagster (reads, report, drift_metrics, chart).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "chicago"
SAMPLE = REPO / "crime_assets" / "sample_data"
SEED_DIR = REPO / "bench" / "output" / "model"
TRAIN = {"end_month": "2016-02", "window_months": 12, "validation_months": 1, "test_months": 1}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--month", default="2016-06")
    parser.add_argument("--export", default=str(SHARED if SHARED.exists() else SAMPLE))
    parser.add_argument("--data-dir", default=str(REPO / "bench" / "output" / "drift"))
    parser.add_argument("--fresh", action="store_true", help="rebuild the data dir")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    warnings.filterwarnings("ignore")
    import dagster as dg
    import duckdb

    from crime_assets.model.model_registry import CHAMPION, alias_version
    from crime_assets.definitions import build_defs
    from crime_assets.runs import materialize_months
    from crime_assets.common.settings import Settings

    data_dir = Path(args.data_dir).resolve()
    if args.fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    settings = Settings.from_env({"CRIME_DATA_DIR": str(data_dir), "CRIME_EXPORT_PATH": args.export})
    db = data_dir / "mlflow" / "mlflow.db"
    if not db.exists() and (SEED_DIR / "mlflow" / "mlflow.db").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(SEED_DIR / "warehouse.duckdb", data_dir / "warehouse.duckdb")
        (data_dir / "mlflow").mkdir(exist_ok=True)
        shutil.copy(SEED_DIR / "mlflow" / "mlflow.db", db)  # artifacts stay where bench_model put them
        print(f"seeded from {SEED_DIR}")
    if alias_version(settings.mlflow_tracking_uri, settings.arrest_model_name, CHAMPION) is None:
        print("building the data dir (2015-01..2016-12 through arrest_features, a champion trained on 2015) ...")
        for selection in (["police_stations", "raw_incidents", "incidents_enriched"], ["arrest_features"]):
            assert materialize_months(selection, "2015-01", "2016-12", settings).success
        job = build_defs(settings).resolve_implicit_global_asset_job_def().get_subset(  # trained, judged, promoted
            asset_selection={dg.AssetKey("arrest_model"), dg.AssetKey("champion_model")})
        assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                      run_config={"ops": {"arrest_model": {"config": TRAIN}}}).success

    from crime_assets.monitoring import drift
    from crime_assets.model.features import incident_rows
    from crime_assets.model.model_registry import load_registered

    model = load_registered(settings.mlflow_tracking_uri, settings.arrest_model_name, alias=CHAMPION)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        reference = drift.read_reference(con, model.info["train_months"], 20_000)
        rows, incidents = drift.read_month(con, args.month), incident_rows(con, args.month, args.month)
    html = data_dir / "reports" / "drift" / "bench.html"
    print(f"champion v{model.info['version']} (train {model.info['train_months'][0]}..{model.info['train_months'][-1]}); "
          f"{args.month}: {len(rows):,} rows; reference {len(reference):,} rows")
    drift.judge_month(model, reference, rows, incidents, drift.DriftThresholds(), html_path=html)  # warm-up
    times = []
    for _ in range(args.reps):
        started = time.perf_counter()
        summary = drift.judge_month(model, reference, rows, incidents, drift.DriftThresholds(), html_path=html)
        times.append(time.perf_counter() - started)
    print(f"report: median {statistics.median(times):.2f} s of {args.reps} ({', '.join(f'{t:.2f}' for t in times)}); "
          f"HTML {html.stat().st_size / 1e6:.1f} MB; drifted {len(summary.drifted_features)}/{len(summary.features)}; "
          f"score PSI {summary.score_psi:.3f}; arrest rate {summary.target.rate_reference:.3f} -> "
          f"{summary.target.rate_current:.3f}; ROC AUC {summary.quality['roc_auc']:.4f} (test "
          f"{summary.champion['roc_auc']:.4f}); causes {summary.causes or 'none'}")

    job = build_defs(settings).resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("drift_report")})
    started = time.perf_counter()
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key=args.month)
    step = next(e.event_specific_data.duration_ms / 1000 for e in result.all_events
                if e.event_type_value == "STEP_SUCCESS")
    print(f"asset: drift_report {args.month} step {step:.2f} s, run {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
