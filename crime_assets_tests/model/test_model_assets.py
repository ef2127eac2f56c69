"""The model assets through real Dagster runs, a real DuckDB file and a real MLflow sqlite store."""

from __future__ import annotations

import shutil
import time

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from crime_assets import load_model
from crime_assets.model.arrest_model import ArrestModel
from crime_assets.model.features import incident_rows
from crime_assets.definitions import build_defs
from crime_assets.runs import materialize_months
from crime_assets_tests.helpers import query, settings_for

# Small, so a training takes seconds: train 2015-01..03, validate 2015-04, test 2015-05..06.
SMALL = {"end_month": "2015-06", "window_months": 3, "validation_months": 1, "test_months": 2, "max_rounds": 25}
GATE = dg.AssetCheckKey(dg.AssetKey("arrest_model"), "challenger_clears_promotion_gate")


@pytest.fixture(scope="module")
def model_home(warehouse_2015_2016, tmp_path_factory):
    """Its own data dir: the shared warehouse copied, plus arrest_features for 2015-01..2015-06."""
    settings = settings_for(tmp_path_factory.mktemp("model_home"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(warehouse_2015_2016.data_dir / "warehouse.duckdb", settings.data_dir / "warehouse.duckdb")
    result = materialize_months(["arrest_features"], "2015-01", "2015-06", settings)
    assert result.success
    return settings, result


def run_model(settings, config=None, gate=None, selection=("arrest_model", "champion_model"), checks=(GATE,)):
    """A training (arrest_model, its promotion gate) and the promotion (champion_model), in one run."""
    defs = build_defs(settings)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey(k) for k in selection}, asset_check_selection=set(checks))
    ops = {name: {"config": config} for name in selection if config is not None and name != "champion_model"}
    if gate is not None:
        ops["arrest_model_challenger_clears_promotion_gate"] = {"config": gate}  # the check's op
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), run_config={"ops": ops},
                                  raise_on_error=False)


def materialization(result, key):
    return next(e.event_specific_data.materialization for e in result.all_events
                if e.event_type_value == "ASSET_MATERIALIZATION"
                and e.event_specific_data.materialization.asset_key == dg.AssetKey(key))


def gate_result(result):
    return next(e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")


def client(settings) -> MlflowClient:
    return MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


@pytest.fixture(scope="module")
def first_training(model_home):
    settings, _ = model_home
    result = run_model(settings, SMALL)
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return settings, result


def test_arrest_features_asset_checks_and_metadata(model_home):
    settings, result = model_home
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks == {"rows_match_incidents": True, "history_precedes_month": True}
    meta = materialization(result, "arrest_features").metadata
    assert meta["dagster/row_count"].value == query(
        settings, "SELECT count(*) FROM incidents_enriched WHERE month BETWEEN '2015-01' AND '2015-06'")[0][0]
    assert meta["months_without_history"].value == "2015-01"
    assert query(settings, "SELECT max(history_last_month) FROM arrest_features WHERE month = '2015-06'") == [("2015-05",)]


def test_training_is_an_mlflow_run_with_a_registered_version(first_training):
    settings, result = first_training
    meta = materialization(result, "arrest_model").metadata
    run = client(settings).get_run(meta["mlflow_run_id"].value)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster_run_id"] == result.run_id
    # Time-ordered split, as configured.
    assert run.data.params["train_months"] == "2015-01..2015-03"
    assert run.data.params["validation_months"] == "2015-04"
    assert run.data.params["test_months"] == "2015-05..2015-06"
    for metric in ("test_roc_auc", "test_pr_auc", "test_mcc", "test_f1", "test_precision", "test_recall",
                   "test_brier", "test_log_loss"):
        assert metric in run.data.metrics
    artifacts = {a.path for a in client(settings).list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/roc.png", "plots/precision_recall.png", "plots/calibration.png",
                         "plots/feature_importance.png"}
    card = {a.path for a in client(settings).list_artifacts(run.info.run_id)}
    assert "model_card.md" in card and "tables" in card
    version = client(settings).get_model_version("chicago_arrest", str(meta["model_version"].value))
    assert set(version.aliases) == {"challenger", "champion"}  # first version: nothing to beat, floors cleared
    assert meta["test_roc_auc"].value > 0.85 and meta["alias"].value == "challenger"
    assert gate_result(result).passed


def test_load_model_and_load_asset_value_return_the_model(first_training, monkeypatch):
    settings, result = first_training
    monkeypatch.setenv("CRIME_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    started = time.perf_counter()
    champion = load_model()
    assert time.perf_counter() - started < 2.0
    assert isinstance(champion, ArrestModel)
    version = str(materialization(result, "arrest_model").metadata["model_version"].value)
    assert champion.info["version"] == version and "champion" in champion.info["aliases"]

    value = build_defs(settings).load_asset_value(dg.AssetKey("arrest_model"))
    assert isinstance(value, ArrestModel) and value.info["version"] == version

    import duckdb
    with duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=True) as con:
        records = incident_rows(con, "2015-06", "2015-06").head(500)
    assert (champion.predict_proba(records) == value.predict_proba(records)).all()
    with pytest.raises(LookupError, match="no alias 'production'.*versions: v1"):
        load_model(alias="production")


def test_promotion_gate_both_ways(first_training):
    settings, first = first_training
    def alias(name):
        return str(client(settings).get_model_version_by_alias("chicago_arrest", name).version)

    champion_before = alias("champion")
    promoted = materialization(first, "champion_model").metadata
    assert promoted["model"].value == f"chicago_arrest v{champion_before}" and promoted["previous_champion"].value == "none"
    assert promoted["test_months"].value == "2015-05...2015-06"
    assert promoted["test_roc_auc"].value == materialization(first, "arrest_model").metadata["test_roc_auc"].value

    # A much weaker challenger clears low floors but trails the champion on the same months: the blocking
    # gate stops the run before champion_model, and the champion stays.
    weak = run_model(settings, {**SMALL, "max_rounds": 1}, gate={"min_roc_auc": 0.5, "min_mcc": 0.0})
    assert not weak.success
    gate = gate_result(weak)
    assert not gate.passed and "trails the champion" in gate.description
    assert gate.metadata["champion"].value == f"v{champion_before}"
    assert not [e for e in weak.get_asset_materialization_events() if e.asset_key == dg.AssetKey("champion_model")]
    weak_version = str(materialization(weak, "arrest_model").metadata["model_version"].value)
    assert alias("champion") == champion_before
    assert alias("challenger") == weak_version

    # Materialised on its own afterwards, champion_model reads the gate's verdict on that version and refuses.
    alone = run_model(settings, selection=("champion_model",), checks=())
    assert not alone.success and alias("champion") == champion_before
    failure = next(e for e in alone.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"chicago_arrest v{weak_version} did not clear the promotion gate" in failure.event_specific_data.error.to_string()

    # The same training as the champion's holds up against it: promoted, in the same run.
    again = run_model(settings, SMALL)
    assert again.success and gate_result(again).passed
    new_version = str(materialization(again, "arrest_model").metadata["model_version"].value)
    assert alias("champion") == new_version != champion_before
    promoted = materialization(again, "champion_model").metadata
    assert promoted["model"].value == f"chicago_arrest v{new_version}"
    assert promoted["previous_champion"].value == f"v{champion_before}"
    assert "holds up against the champion" in promoted["promotion_gate"].value


def test_the_gate_only_judges(model_home):
    """Without champion_model in the run, a version that clears the gate stays the challenger; the verdict
    is recorded on the version for champion_model to read."""
    settings, _ = model_home
    judged = run_model(settings, SMALL, selection=("arrest_model",))
    assert judged.success and gate_result(judged).passed
    version = str(materialization(judged, "arrest_model").metadata["model_version"].value)
    assert set(client(settings).get_model_version("chicago_arrest", version).aliases) == {"challenger"}
    assert client(settings).get_model_version("chicago_arrest", version).tags["promotion_gate"] == "passed"


def test_a_failed_training_ends_its_mlflow_run_failed(model_home, monkeypatch):
    settings, _ = model_home
    import crime_assets.model.training as training

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(training, "train_arrest_model", broken)
    result = run_model(settings, SMALL)
    assert not result.success
    runs = client(settings).search_runs(
        [client(settings).get_experiment_by_name("arrest_model").experiment_id],
        filter_string=f"tags.dagster_run_id = '{result.run_id}'")
    assert [r.info.status for r in runs] == ["FAILED"]


def test_backtest_table_chart_and_run(model_home):
    settings, _ = model_home
    config = {"window_months": 2, "validation_months": 1, "first_test_month": "2015-05",
              "last_test_month": "2015-06", "max_rounds": 20}
    result = run_model(settings, config, selection=("model_backtest",), checks=())
    assert result.success
    meta = materialization(result, "model_backtest").metadata
    assert meta["dagster/row_count"].value == 2
    assert meta["chart"].value.startswith("![model_backtest](data:image/png;base64,")
    assert (settings.data_dir / "reports" / "model_backtest.png").stat().st_size > 10_000
    rows = query(settings, "SELECT test_month, train_first, train_last, validation FROM model_backtest ORDER BY 1")
    assert rows == [("2015-05", "2015-02", "2015-03", "2015-04"), ("2015-06", "2015-03", "2015-04", "2015-05")]
    runs = client(settings).search_runs(
        [client(settings).get_experiment_by_name("arrest_model").experiment_id],
        filter_string=f"tags.dagster_run_id = '{result.run_id}'")
    assert [r.info.status for r in runs] == ["FINISHED"]
