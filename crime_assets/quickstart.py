"""Backfill the shipped sample through every asset and print a short summary.

    python -m crime_assets.quickstart [--from 2015-01] [--to 2016-12]

Runs against the Dagster instance in DAGSTER_HOME (the repository root, whose dagster.yaml keeps
the instance in .dagster_home/), so the runs show up afterwards in `dagster dev`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

SAMPLE_MONTHS = ("2015-01", "2016-12")  # what crime_assets/sample_data holds
MODEL_MONTHS = 14  # the default training window (12) + a validation month + a test month


def instance_home() -> str:
    """The Dagster instance directory: DAGSTER_HOME, or the repository root when run from it."""
    if not os.environ.get("DAGSTER_HOME") and Path("dagster.yaml").is_file():
        os.environ["DAGSTER_HOME"] = str(Path.cwd())
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise SystemExit("DAGSTER_HOME is not set and there is no dagster.yaml here: run this from the repository root")
    return home


def warnings_log(data_dir: Path) -> Path:
    return data_dir / "logs" / "warnings.log"


def log_library_warnings() -> None:
    """Send Python warnings (Dagster's beta/preview notices, MLflow's hints) to the data directory's
    warnings log instead of the console, where a person reads the runs' own logs and the summary; MLflow's
    INFO chatter stays off it too."""
    import logging

    from crime_assets.common.settings import Settings

    path = warnings_log(Settings.from_env().data_dir)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.captureWarnings(True)
    logger = logging.getLogger("py.warnings")
    logger.handlers[:] = [logging.FileHandler(path)]
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="first", default=SAMPLE_MONTHS[0], help="first month (YYYY-MM)")
    parser.add_argument("--to", dest="last", default=SAMPLE_MONTHS[1], help="last month (YYYY-MM)")
    args = parser.parse_args(argv)
    home = instance_home()
    log_library_warnings()

    import dagster as dg

    from crime_assets.common.months import MonthWindow
    from crime_assets.definitions import defs, settings
    from crime_assets.runs import partition_range_tags

    window = MonthWindow.from_keys(args.first, args.last)  # validates the keys
    started = time.perf_counter()
    results: dict[str, dg.ExecuteInProcessResult] = {}
    with dg.DagsterInstance.get() as instance:
        result = results["monthly_assets_job"] = defs.resolve_job_def("monthly_assets_job").execute_in_process(
            instance=instance,
            tags=partition_range_tags(window.keys[0], window.keys[-1]),
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
            raise_on_error=False,
        )
        if result.success and len(window.keys) >= MODEL_MONTHS:
            # Then the model on the newest months, its promotion gate and its promotion (one run), and the
            # drift of the last month against the champion. The backtest (a training per month) is left for the UI.
            graph_job = defs.resolve_implicit_global_asset_job_def()
            for name, keys, partition in (("arrest_model", ("arrest_model", "champion_model"), None),
                                          ("drift_report", ("drift_report",), window.keys[-1])):
                selection = {dg.AssetKey(key) for key in keys}
                result = results[name] = graph_job.get_subset(asset_selection=selection).execute_in_process(
                    instance=instance, partition_key=partition, raise_on_error=False,
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                )
                if not result.success:
                    break
        if not result.success:
            print(f"run {result.run_id} failed: see `dagster dev` (DAGSTER_HOME={home}) for the details", file=sys.stderr)
            return 1
    print(summary(window, settings, results, home, time.perf_counter() - started))
    return 0


def summary(window, settings, results: dict, home: str, seconds: float) -> str:
    """What a person looks for first after the quick start: the data, the model, the hotspots, the drift
    verdict, and where to look further."""
    from crime_assets import warehouse

    between = {"a": window.keys[0], "b": window.keys[-1]}
    with warehouse.connect(read_only=True, settings=settings) as con:
        rows, arrests = con.execute(
            "SELECT count(*), count(*) FILTER (arrest) FROM raw_incidents WHERE month BETWEEN $a AND $b",
            between).fetchone()
        quarantined, = con.execute(
            "SELECT count(*) FROM raw_incidents_quarantine WHERE month BETWEEN $a AND $b OR month IS NULL",
            between).fetchone()
        geolocated, = con.execute(
            "SELECT avg(is_geolocated::INT) FROM incidents_enriched WHERE month BETWEEN $a AND $b", between).fetchone()
        hotspots, resolution = con.execute(
            "SELECT count(*), any_value(resolution) FROM hotspots WHERE month = $b", {"b": window.keys[-1]}).fetchone()
    runs = [r.run_id for r in results.values()]
    lines = [
        f"crime_assets quick start: done in {seconds:.1f} s ({len(runs)} run{'s' if len(runs) > 1 else ''}: {', '.join(runs)})",
        f"  months          {window.label} ({len(window.keys)} months, source: {settings.source})",
        f"  incidents       {rows:,} (arrest rate {arrests / max(rows, 1):.1%}, geolocated {geolocated or 0:.1%})",
        f"  quarantined     {quarantined:,} rows (table raw_incidents_quarantine)",
        *model_lines(results.get("arrest_model")),
        f"  hotspots        {hotspots} in {window.keys[-1]}" + (f" (H3 r{resolution})" if hotspots else "")
        + "".join(f"; map {path}" for path in map_paths(results["monthly_assets_job"], window.keys[-1])),
        *drift_lines(results.get("drift_report")),
        f"  warehouse       {settings.warehouse_path}" if settings.warehouse.backend == "duckdb" else
        f"  warehouse       DuckLake: catalog {settings.warehouse.ducklake_catalog}, files in {settings.ducklake_data_path}",
        f"  Dagster UI      DAGSTER_HOME={home} dagster dev   then http://localhost:3000",
        f"  MLflow UI       mlflow ui --backend-store-uri {settings.mlflow_tracking_uri} --port 5000"
        "   then http://localhost:5000",
        f"  warnings        of the libraries, in {warnings_log(settings.data_dir)}",
    ]
    return "\n" + "\n".join(lines) + "\n"


def materialisation_metadata(result, asset: str, partition: str | None = None) -> dict:
    events = [e.materialization for e in result.get_asset_materialization_events()
              if e.asset_key.to_user_string() == asset and (partition is None or e.partition == partition)]
    return {k: v.value for k, v in events[-1].metadata.items()} if events else {}


def check_evaluation(result, check: str):
    found = [e for e in result.get_asset_check_evaluations() if e.check_name == check]
    return found[-1] if found else None


def model_lines(result) -> list[str]:
    if result is None:
        return [f"  arrest model    not trained: it needs at least {MODEL_MONTHS} months "
                "(12 to train, 1 to validate, 1 to test)"]
    meta = materialisation_metadata(result, "arrest_model")
    gate = check_evaluation(result, "challenger_clears_promotion_gate")
    promoted = materialisation_metadata(result, "champion_model")
    verdict = "champion (cleared the promotion gate)" if promoted else \
        f"not champion: {gate.description if gate else 'the promotion gate did not run'}"
    return [f"  arrest model    {meta['model_name']} v{meta['model_version']}, {meta['split']}",
            f"                  test ROC AUC {meta['test_roc_auc']:.4f}, MCC {meta['test_mcc']:.4f}, "
            f"PR AUC {meta['test_pr_auc']:.4f}; {verdict}"]


def map_paths(result, month: str) -> list[str]:
    meta = materialisation_metadata(result, "hotspot_maps", month)
    return [str(meta[k]) for k in ("incidents_map",) if k in meta]


def drift_lines(result) -> list[str]:
    if result is None:
        return []
    meta = materialisation_metadata(result, "drift_report")
    check = check_evaluation(result, "drift_within_thresholds")
    verdict = "within thresholds" if check and check.passed else \
        f"DRIFT: {check.description}" if check else "not judged"
    share = meta.get("drifted_share")
    drifted = "" if share is None else f", {share:.0%} of the features drifted"
    return [f"  drift report    {verdict}{drifted}; {meta.get('report_path', '')}"]

if __name__ == "__main__":
    sys.exit(main())
