"""Drift monitoring: the core on the shipped 2015-2016 data, drift_report and the retrain sensor through real
Dagster runs, a real DuckDB file and a real MLflow sqlite store."""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import numpy as np
import pytest

from crime_assets.monitoring.drift import DriftSummary, DriftThresholds, compare, psi, retrain_causes, target_drift
from crime_assets.definitions import build_defs
from crime_assets.runs import materialize_months
from crime_assets_tests.helpers import query, settings_for

MONTH = "2015-07"
# Small, so a training takes seconds: train 2015-01..03, validate 2015-04, test 2015-05..06.
SMALL = {"end_month": "2015-06", "window_months": 3, "validation_months": 1, "test_months": 2, "max_rounds": 25}
FAST = {"reference_rows": 5000}
CATEGORICAL = ["primary_type", "location_description", "fbi_code"]
NUMERICAL = ["district", "domestic", "hour"]


# ------------------------------------------------------------------------------------------------ core


@pytest.fixture(scope="module")
def incidents(warehouse_2015_2016):
    with duckdb.connect(str(warehouse_2015_2016.data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("""SELECT month, primary_type, location_description, fbi_code, district::DOUBLE AS district,
            domestic::INT::DOUBLE AS domestic, hour(occurred_at)::DOUBLE AS hour, arrest FROM incidents_enriched""").df()


def test_2016_against_2015_reports_target_drift(incidents):
    y2015, y2016 = incidents[incidents.month < "2016"], incidents[incidents.month >= "2016"]
    summary = compare(y2015, y2016, CATEGORICAL + NUMERICAL, CATEGORICAL, max_rows=20_000)
    assert round(summary.target.rate_reference, 3) == 0.265
    assert round(summary.target.rate_current, 3) == 0.196
    assert summary.target.drifted and summary.target.p_value < 1e-12
    assert "target_drift" in retrain_causes(summary, DriftThresholds())


def test_a_month_against_itself_reports_no_drift(incidents):
    month = incidents[incidents.month == "2016-03"]
    summary = compare(month, month.copy(), CATEGORICAL + NUMERICAL, CATEGORICAL)
    assert summary.drifted_features == [] and summary.drifted_share == 0
    assert not summary.target.drifted and summary.target.p_value == pytest.approx(1.0)
    assert retrain_causes(summary, DriftThresholds()) == []


def test_statistics():
    then, now = np.arange(1000) < 265, np.arange(1000) < 196  # arrest rates 26.5% and 19.6%
    target = target_drift(then, now, DriftThresholds())
    assert target.z == pytest.approx(-3.663, abs=0.001) and target.p_value == pytest.approx(0.000249, abs=0.000002)
    assert target.drifted and not target_drift(then, now, DriftThresholds(min_rate_change=0.1)).drifted
    none = target_drift(np.zeros(500, bool), np.zeros(800, bool), DriftThresholds())  # no arrests either side
    assert (none.z, none.p_value, none.drifted) == (0.0, 1.0, False)
    with pytest.raises(ValueError, match="rows on both sides: 1000 reference, 0 current"):
        target_drift(then, now[:0], DriftThresholds())
    scores = [i / 100 for i in range(100)]
    assert psi(scores, scores) == pytest.approx(0.0)
    assert psi(scores, [s / 2 for s in scores]) > 0.2


# ---------------------------------------------------------------------------------------------- assets


@pytest.fixture(scope="module")
def drift_home(warehouse_2015_2016, tmp_path_factory):
    """Its own data dir: the shared warehouse, arrest_features 2015-01..2015-07 and a small champion."""
    settings = settings_for(tmp_path_factory.mktemp("drift_home"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(warehouse_2015_2016.data_dir / "warehouse.duckdb", settings.data_dir / "warehouse.duckdb")
    assert materialize_months(["arrest_features"], "2015-01", MONTH, settings).success
    defs = build_defs(settings)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(  # trained, judged by the gate, promoted
        asset_selection={dg.AssetKey("arrest_model"), dg.AssetKey("champion_model")})
    trained = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                     run_config={"ops": {"arrest_model": {"config": SMALL}}})
    assert trained.success
    return settings


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def run_drift(settings, instance, config=None, month=MONTH):
    job = build_defs(settings).resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("drift_report")})
    return job.execute_in_process(instance=instance, partition_key=month, raise_on_error=False,
                                  run_config={"ops": {"drift_report": {"config": {**FAST, **(config or {})}}}})


def materialization(result):
    return next(e.event_specific_data.materialization for e in result.all_events
                if e.event_type_value == "ASSET_MATERIALIZATION")


def checks(result):
    return {e.event_specific_data.check_name: e.event_specific_data for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def test_drift_report_writes_report_metrics_and_metadata(drift_home, instance):
    result = run_drift(drift_home, instance)
    assert result.success
    meta = materialization(result).metadata
    report = drift_home.data_dir / "reports" / "drift" / f"{MONTH}.html"
    assert meta["report_path"].value == str(report) and report.stat().st_size > 100_000
    assert meta["reference_months"].value == "2015-01...2015-03" and meta["champion"].value == "chicago_arrest v1"
    assert meta["reference_rows"].value == FAST["reference_rows"]
    for key in ("drifted_share", "drifted_features", "score_drift", "arrest_rate", "arrest_rate_reference",
                "roc_auc", "champion_test_roc_auc", "mcc", "champion_test_mcc", "trend", "retrain_requests"):
        assert key in meta, key
    assert 0.8 < meta["roc_auc"].value <= 1 and 0.1 < meta["arrest_rate"].value < 0.4
    assert checks(result)["month_has_enough_rows"].passed
    metrics = dict(query(drift_home, "SELECT metric, value FROM drift_metrics WHERE month = ?", [MONTH]))
    assert metrics["rows"] == query(drift_home, "SELECT count(*) FROM arrest_features WHERE month = ?", [MONTH])[0][0]
    assert metrics["roc_auc"] == pytest.approx(meta["roc_auc"].value, abs=1e-4)
    # The champion was trained on 2015-01..03, whose history features cover 0-2 earlier months; July's cover
    # 6: the history counts drift, and the WARN check says so (the retrain sensor reads the same finding).
    gate = checks(result)["drift_within_thresholds"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN and "feature_drift" in gate.description
    assert "feature_drift" in meta["retrain_requests"].value[MONTH]


def test_quality_drop_is_a_retrain_cause():
    summary = DriftSummary(reference_rows=1, current_rows=1, features=["a", "b"], drifted_features=[],
                           column_scores={}, quality={"roc_auc": 0.86, "mcc": 0.60},
                           champion={"roc_auc": 0.90, "mcc": 0.61})
    assert retrain_causes(summary, DriftThresholds()) == ["quality_drop"]
    assert retrain_causes(summary, DriftThresholds(max_auc_drop=0.05)) == []
    summary.drifted_features = ["a"]
    assert retrain_causes(summary, DriftThresholds(max_auc_drop=0.05, max_drifted_share=0.5)) == []
    assert retrain_causes(summary, DriftThresholds(max_auc_drop=0.05, max_drifted_share=0.4)) == ["feature_drift"]


def test_retrain_is_requested_once_per_month_and_cause(drift_home, instance):
    if not instance.fetch_materializations(dg.AssetKey("drift_report"), limit=1).records:
        assert run_drift(drift_home, instance).success  # this test alone: the finding of the test above
    defs = build_defs(drift_home)
    sensor = defs.resolve_sensor_def("retrain_on_drift_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # A retraining trains, judges and promotes in one run: the promotion gate sits between the two assets.
    job = defs.resolve_job_def(sensor.job_name)
    assert job.asset_layer.selected_asset_keys == {dg.AssetKey("arrest_model"), dg.AssetKey("champion_model")}
    assert {k.name for k in job.asset_layer.asset_graph.asset_check_keys} == {"challenger_clears_promotion_gate"}

    def tick(cursor):
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
        return data.run_requests, data.cursor

    requests, cursor = tick(None)
    assert len(requests) == 1
    assert requests[0].run_key.startswith(f"retrain:{MONTH}:") and "feature_drift" in requests[0].run_key
    assert requests[0].tags["crime/drift_month"] == MONTH
    assert tick(cursor)[0] == []  # the next evaluation: nothing new
    assert tick(cursor)[0] == []

    # The same finding again (a re-run of the month) requests nothing; a new month or cause does, once.
    def finding(month, causes):
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "drift_report", partition=month, metadata={"retrain_requests": dg.MetadataValue.json({month: causes})}))

    finding(MONTH, ["feature_drift"])
    requests, cursor = tick(cursor)
    assert requests == []
    finding("2015-08", ["target_drift"])
    requests, cursor = tick(cursor)
    assert [r.run_key for r in requests] == ["retrain:2015-08:target_drift"]
    assert tick(cursor)[0] == []


def test_too_few_rows_is_an_error(drift_home, instance):
    result = run_drift(drift_home, instance, {"min_rows": 10**7})
    assert result.success  # the month is recorded as not judged; the ERROR check says why
    check = checks(result)["month_has_enough_rows"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert f"too few rows to judge (minimum {10**7}): {MONTH}" in check.description
    # The month's figures are replaced, not added to.
    assert query(drift_home, "SELECT metric FROM drift_metrics WHERE month = ?", [MONTH]) == [("rows",)]


def test_without_a_champion_it_says_what_to_do(drift_home, tmp_path, monkeypatch):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", empty)  # the resource reads it through EnvVar
    settings = settings_for(drift_home.data_dir, MLFLOW_TRACKING_URI=empty)
    result = run_drift(settings, dg.DagsterInstance.ephemeral())
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialize arrest_model and champion_model first" in failure.event_specific_data.error.to_string()
