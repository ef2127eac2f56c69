"""The packaged model: raw records in (DataFrame or Socrata JSON), probabilities out, clear errors, save / load."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from crime_assets.model.arrest_model import MODEL_FIELDS, ArrestModel, RecordError, canonical_records
from crime_assets.model.feature_history import fit_history, history_months
from crime_assets.model.features import FEATURE_NAMES, build_features, features_for_month, incident_rows
from crime_assets.model.report_clock import ReportClock
from crime_assets.ingestion.raw_load import _normalize_sql
from crime_assets.ingestion.sources import records_to_frame
from crime_assets.model.training import SplitPlan, TrainingParams, encode_feature_rows, train_arrest_model

from crime_assets.ingestion.socrata_records import socrata_records

PLAN = SplitPlan.ending("2016-05", window_months=3, validation_months=1, test_months=1)


@pytest.fixture(scope="module")
def trained(warehouse_2015_2016):
    with duckdb.connect(str(warehouse_2015_2016.data_dir / "warehouse.duckdb"), read_only=True) as con:
        train_rows = pd.concat([features_for_month(con, m) for m in PLAN.train], ignore_index=True)
        history = history_months(PLAN.validation[0])
        inputs = dict(
            validation_incidents=incident_rows(con, PLAN.validation[0], PLAN.validation[-1]),
            test_incidents=incident_rows(con, PLAN.test[0], PLAN.test[-1]),
            history=fit_history(con, history[0], history[-1]),
            clock=ReportClock.fit(incident_rows(con, PLAN.train[0], PLAN.train[-1])),
            stations=con.execute("SELECT * FROM police_stations").df(),
        )
        enriched = con.execute("SELECT * FROM incidents_enriched WHERE month = '2016-05' ORDER BY id").df()
    result = train_arrest_model(PLAN, train_rows, **inputs, params=TrainingParams(max_rounds=40))
    return result, inputs, enriched


def test_time_ordered_split_and_sane_scores(trained):
    result, _, _ = trained
    info = result.model.info
    assert info["train_months"] == ["2016-01", "2016-02", "2016-03"]
    assert info["validation_months"] == ["2016-04"] and info["test_months"] == ["2016-05"]
    assert result.test.metrics["roc_auc"] > 0.85
    assert 0.05 < result.model.threshold < 0.95


def test_predict_proba_on_a_dataframe_and_on_json_records_agree(trained):
    result, inputs, _ = trained
    model, incidents = result.model, inputs["test_incidents"]
    proba = model.predict_proba(incidents)
    assert proba.shape == (len(incidents), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    from_json = model.predict_proba(socrata_records(incidents))
    assert np.allclose(from_json, proba, atol=1e-6)
    decisions = model.predict(incidents)
    assert set(np.unique(decisions)) <= {0, 1}
    assert (decisions == (proba[:, 1] >= model.threshold)).all()
    assert result.test.p == pytest.approx(proba[:, 1], abs=1e-6)  # the figures are the artifact's


def test_missing_required_field_is_named(trained):
    model = trained[0].model
    records = socrata_records(trained[1]["test_incidents"].head(30))
    del records[4]["case_number"]
    with pytest.raises(RecordError, match=r"record 4 \(id \d+\): field 'case_number' is required") as error:
        model.predict_proba(records)
    assert error.value.field == "case_number" and error.value.rows == [4]


def test_wrong_types_are_named(trained):
    model, incidents = trained[0].model, trained[1]["test_incidents"].head(30)
    records = socrata_records(incidents)
    records[2]["beat"] = "north side"
    with pytest.raises(RecordError, match="field 'beat' is not a whole number: 'north side'"):
        model.predict_proba(records)
    records = socrata_records(incidents)
    records[5]["date"] = "last tuesday"
    with pytest.raises(RecordError, match="field 'date' is not a date"):
        model.predict(records)
    with pytest.raises(RecordError, match=r"no column\(s\) \['iucr'\]"):
        model.predict_proba(incidents.drop(columns=["iucr"]))
    with pytest.raises(TypeError, match="DataFrame or a list of dicts"):
        model.predict_proba("HZ100001")


@pytest.mark.parametrize("change, field, words", [
    ({"date": "2016-05-01T10:00:00+00:00"}, "date", "has a UTC offset"),
    ({"date": "2016-05-01T10:00:00Z"}, "date", "has a UTC offset"),
    ({"id": "99999999999999999999"}, "id", "beyond the int64 range"),
    ({"id": 99999999999999999999}, "id", "beyond the int64 range"),
    ({"beat": "1e30"}, "beat", "beyond the int64 range"),
    ({"id": "17.5"}, "id", "is not a whole number"),
])
def test_values_the_model_cannot_represent_are_named(trained, change, field, words):
    """A UTC offset (the model scores Chicago local time) and whole numbers beyond int64 are refused
    with the field and the record named, like any bad value -- they used to crash the model."""
    model = trained[0].model
    records = socrata_records(trained[1]["test_incidents"].head(5))
    records[3] = {**records[3], **change}
    with pytest.raises(RecordError, match=rf"record 3 .*field '{field}' .*{words}") as error:
        model.predict_proba(records)
    assert error.value.field == field and error.value.rows == [3]
    assert model.predict_proba(records[:3]).shape == (3, 2)  # the others still score


def test_typing_without_a_model():
    """The usual forms take numpy's fast casts, the unusual ones the value-by-value rules: both type alike."""
    usual = {"id": "10801130", "case_number": "JA100001", "date": "2016-12-31T23:10:00.000", "primary_type": "THEFT",
             "iucr": " 0820 ", "domestic": "Y", "beat": "0111", "latitude": "41.8799", "longitude": "-87.7260"}
    unusual = {**usual, "id": 10801130, "date": "12/31/2016 11:10:00 PM", "domestic": True, "beat": 111.0,
               "latitude": None, "longitude": None, "location": "(41.8799, -87.7260)", "block": ""}
    frame = canonical_records([usual, unusual])
    assert frame["id"].tolist() == [10801130, 10801130] and frame["beat"].tolist() == [111, 111]
    assert frame["occurred_at"].nunique() == 1 and frame["domestic"].all()
    assert frame["iucr"].tolist() == ["0820", "0820"] and frame["block"].isna().all()
    assert frame["latitude"].tolist() == [41.8799, 41.8799] and frame["longitude"].tolist() == [-87.726, -87.726]
    with pytest.raises(RecordError, match=r"record 1 \(id 10801130\): field 'date' is not a date"):
        canonical_records([usual, {**usual, "date": "2016-02-30T10:00:00"}])


def test_optional_fields_may_be_empty(trained):
    model, incidents = trained[0].model, trained[1]["test_incidents"].head(200).copy()
    incidents.loc[incidents.index[:20], ["latitude", "longitude", "beat", "location_description"]] = None
    proba = model.predict_proba(incidents)[:, 1]
    assert np.isfinite(proba).all()


def test_typing_follows_normalize_sql(trained):
    """The model types Socrata records by the warehouse's own rules (normalize.sql)."""
    records = socrata_records(trained[1]["test_incidents"].head(300))
    records[0]["domestic"], records[1]["domestic"] = "Y", "false"
    mine = canonical_records(records)
    frame = records_to_frame(records, "2016-05", "test")  # the Socrata source's own staging
    with duckdb.connect() as con:
        con.register("staged_incidents", frame)
        con.execute(_normalize_sql(), {"start": pd.Timestamp("2000-01-01"), "end": pd.Timestamp("2100-01-01"),
                                       "keep_outside": True})
        warehouse = con.execute(f"SELECT {', '.join(MODEL_FIELDS)} FROM typed_incidents ORDER BY id").df()
    mine = mine.sort_values("id").reset_index(drop=True)
    for name in MODEL_FIELDS:
        ours, theirs = mine[name].astype(object).where(mine[name].notna(), None), warehouse[name]
        theirs = theirs.astype(object).where(theirs.notna(), None)
        if name in ("latitude", "longitude"):
            assert np.allclose(ours.astype(float), theirs.astype(float), equal_nan=True), name
        else:
            assert [None if v is None else str(v) for v in ours] == [None if v is None else str(v) for v in theirs], name


def test_geography_is_computed_like_the_enrichment(trained):
    model, enriched = trained[0].model, trained[2]
    prepared = model.prepare(enriched)
    ok = enriched["geo_status"] == "ok"
    assert np.allclose(prepared.loc[ok, "station_distance_m"], enriched.loc[ok, "station_distance_m"])
    assert [format(c, "x") for c in prepared.loc[ok, "h3_r10"]] == enriched.loc[ok, "h3_r10"].tolist()
    assert [format(c, "x") for c in prepared.loc[ok, "h3_r8"]] == enriched.loc[ok, "h3_r8"].tolist()
    assert (prepared.loc[~ok, "h3_r10"] == 0).all() and prepared.loc[~ok, "station_distance_m"].isna().all()


def test_model_features_are_the_feature_tables(trained):
    """Scoring builds the same features as the arrest_features asset does for the same history and references."""
    result, inputs, _ = trained
    model, incidents = result.model, inputs["test_incidents"]
    table_rows = build_features(incidents, model.history, model.clock)
    table_rows["arrest"] = incidents["arrest"]
    expected = encode_feature_rows(table_rows, model.categories)
    np.testing.assert_array_equal(model.matrix(incidents), expected)
    assert model.features(incidents.head(3)).columns.tolist() == list(FEATURE_NAMES)


def test_save_and_load_score_the_same(trained, tmp_path):
    model, incidents = trained[0].model, trained[1]["test_incidents"]
    loaded = ArrestModel.load(model.save(tmp_path / "bundle"))
    assert loaded.threshold == model.threshold
    np.testing.assert_allclose(loaded.predict_proba(incidents), model.predict_proba(incidents))
