"""Benchmark: the arrest model (issue 4) against its targets.

    python bench/bench_model.py [--reps 3] [--export PATH] [--data-dir DIR] [--fresh]

Builds (or reuses, in bench/output/model unless --data-dir) a data dir with 2015-01..2016-12 through
incidents_enriched and arrest_features (../shared/data/chicago when present, else the shipped sample:
the same records), then materialises arrest_model (and its promotion gate) with the issue's split:
train 2015-01..2015-12, validate 2016-01, test 2016-02..2016-12. It fits the baseline -- a plain
XGBoost with native categoricals on the raw categorical columns -- on the same split, and measures
load_model() (in this process, and in a fresh interpreter including imports) and scoring throughput
on the test months' raw records (a canonical DataFrame, and Socrata JSON records). Repeated figures
are medians of --reps.

Targets: test ROC AUC >= 0.90 and MCC >= 0.66; training within 90 s on 2 cores; scoring >= 200k rows/s
after load_model(); load_model() < 2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "chicago"
SAMPLE = REPO / "crime_assets" / "sample_data"
CONFIG = {"end_month": "2016-12", "window_months": 12, "validation_months": 1, "test_months": 11}


def _steps(result) -> dict[str, float]:
    return {e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.all_events
            if e.event_type_value == "STEP_SUCCESS" and e.event_specific_data is not None}


def _median(values):
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--export", default=str(SHARED if SHARED.exists() else SAMPLE))
    parser.add_argument("--data-dir", default=str(REPO / "bench" / "output" / "model"))
    parser.add_argument("--fresh", action="store_true", help="rebuild the warehouse and the MLflow store")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    warnings.filterwarnings("ignore")
    import dagster as dg
    import duckdb

    from crime_assets.definitions import build_defs
    from crime_assets.ingestion.socrata_records import socrata_records
    from crime_assets.runs import materialize_months
    from crime_assets.common.settings import Settings

    data_dir = Path(args.data_dir)
    if args.fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["CRIME_DATA_DIR"] = str(data_dir)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    settings = Settings.from_env({"CRIME_DATA_DIR": str(data_dir), "CRIME_EXPORT_PATH": args.export})
    print(f"data: {args.export}\ndata dir: {data_dir}\ncores: {os.cpu_count()}, load average at start: "
          f"{os.getloadavg()[0]:.2f}", flush=True)

    months = []
    if (data_dir / "warehouse.duckdb").exists():
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
            if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'arrest_features'").fetchone()[0]:
                months = [r[0] for r in con.execute("SELECT DISTINCT month FROM arrest_features").fetchall()]
    if len(months) < 24:
        started = time.perf_counter()
        built = materialize_months(["police_stations", "raw_incidents", "incidents_enriched", "arrest_features"],
                                   "2015-01", "2016-12", settings)
        steps = _steps(built)
        print(f"warehouse 2015-01..2016-12 built in {time.perf_counter() - started:.1f} s "
              f"(arrest_features step {steps.get('arrest_features', float('nan')):.1f} s)", flush=True)
    else:
        print("warehouse: reusing 24 months of arrest_features", flush=True)

    # ---- arrest_model + promotion gate, one Dagster run
    defs = build_defs(settings)
    gate = dg.AssetCheckKey(dg.AssetKey("arrest_model"), "challenger_clears_promotion_gate")
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("arrest_model")}, asset_check_selection={gate})
    load_before = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                    run_config={"ops": {"arrest_model": {"config": CONFIG}}}, raise_on_error=False)
    run_wall, run_cpu = time.perf_counter() - started, time.process_time() - cpu
    steps = _steps(result)
    meta = next(e.event_specific_data.materialization.metadata for e in result.all_events
                if e.event_type_value == "ASSET_MATERIALIZATION")
    check = next(e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")
    from mlflow.tracking import MlflowClient

    run = MlflowClient(settings.mlflow_tracking_uri).get_run(meta["mlflow_run_id"].value)
    metrics = run.data.metrics

    # ---- baseline on the same split
    from crime_assets.model.features import incident_rows
    from crime_assets.model.training import SplitPlan, train_baseline

    plan = SplitPlan.ending(**CONFIG)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        train_raw = incident_rows(con, plan.train[0], plan.train[-1])
        val_raw = incident_rows(con, plan.validation[0], plan.validation[-1])
        test_raw = incident_rows(con, plan.test[0], plan.test[-1])
    baseline = train_baseline(plan, train_raw, val_raw, test_raw)

    # ---- load_model(): in this process, then in fresh interpreters (imports included)
    from crime_assets import load_model

    loads = []
    for _ in range(args.reps):
        started = time.perf_counter()
        model = load_model()
        loads.append(time.perf_counter() - started)
    cold_script = ("import time; t0 = time.perf_counter(); from crime_assets import load_model; "
                   "import crime_assets.model.model_registry, xgboost; t1 = time.perf_counter(); m = load_model(); "
                   "t2 = time.perf_counter(); print(f'{t1 - t0:.3f} {t2 - t1:.3f}')")
    cold = []
    for _ in range(args.reps):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", cold_script], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, check=True).stdout.split()
        cold.append((float(out[-2]), float(out[-1]), time.perf_counter() - started))

    # ---- scoring throughput after load_model()
    frame = test_raw[[c for c in test_raw.columns if c not in ("arrest", "month")]]
    rates = []
    for _ in range(args.reps):
        started = time.perf_counter()
        proba = model.predict_proba(frame)
        rates.append(len(frame) / (time.perf_counter() - started))
    records = socrata_records(test_raw.head(50_000))
    json_rates = []
    for _ in range(args.reps):
        started = time.perf_counter()
        model.predict_proba(records)
        json_rates.append(len(records) / (time.perf_counter() - started))

    from sklearn.metrics import matthews_corrcoef, roc_auc_score

    y = test_raw["arrest"].to_numpy(bool)
    whole_batch = (roc_auc_score(y, proba[:, 1]), matthews_corrcoef(y, proba[:, 1] >= model.threshold))

    print()
    print(f"split: {plan.label()}")
    print(f"{'':34s}{'ROC AUC':>9s}{'MCC':>9s}{'PR AUC':>9s}{'F1':>9s}{'Brier':>9s}")
    print(f"{'arrest_model (test 2016-02..12)':34s}{metrics['test_roc_auc']:9.4f}{metrics['test_mcc']:9.4f}"
          f"{metrics['test_pr_auc']:9.4f}{metrics['test_f1']:9.4f}{metrics['test_brier']:9.4f}")
    print(f"{'baseline, raw categoricals':34s}{baseline.test['roc_auc']:9.4f}{baseline.test['mcc']:9.4f}"
          f"{baseline.test['pr_auc']:9.4f}{baseline.test['f1']:9.4f}{baseline.test['brier']:9.4f}")
    print(f"{'targets':34s}{'>= 0.90':>9s}{'>= 0.66':>9s}")
    print(f"scoring the 11 test months as one batch instead of month by month: ROC AUC {whole_batch[0]:.4f}, "
          f"MCC {whole_batch[1]:.4f}")
    print(f"threshold (max MCC on 2016-01): {model.threshold:.4f}; boosting rounds kept: {meta['best_iteration'].value + 1}")
    print(f"promotion gate: {'passed' if check.passed else 'FAILED'} ({check.description})")
    print(f"MLflow run {run.info.run_id}: {run.info.status}; model {meta['model_name'].value} "
          f"v{meta['model_version'].value}")
    print()
    print(f"training: arrest_model step {steps.get('arrest_model', float('nan')):.1f} s wall (target <= 90 s), "
          f"gate step {steps.get('arrest_model_challenger_clears_promotion_gate', float('nan')):.1f} s; "
          f"whole run {run_wall:.1f} s wall, {run_cpu:.1f} s CPU; load average before {load_before:.2f}")
    print(f"  inside the step: read {metrics.get('seconds_read', float('nan')):.1f} s, validation features "
          f"{metrics.get('seconds_features', float('nan')):.1f} s, fit {metrics.get('seconds_fit', float('nan')):.1f} s, "
          f"evaluation {metrics.get('seconds_evaluate', float('nan')):.1f} s (rest: MLflow logging, registration)")
    print(f"baseline fit + evaluation: {baseline.seconds:.1f} s")
    print(f"load_model() in-process: median {_median(loads):.3f} s of {[round(v, 3) for v in loads]}")
    print(f"load_model() in a fresh interpreter: imports median {_median([c[0] for c in cold]):.2f} s, "
          f"load_model() median {_median([c[1] for c in cold]):.2f} s, process total median "
          f"{_median([c[2] for c in cold]):.2f} s")
    print(f"scoring a canonical DataFrame ({len(frame):,} rows): median {_median(rates):,.0f} rows/s "
          f"of {[round(r) for r in rates]} (target >= 200,000)")
    print(f"scoring Socrata JSON records ({len(records):,}): median {_median(json_rates):,.0f} rows/s")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
