"""Arrest features: no leakage from the same or later months, graceful empty history, report-time signals."""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from crime_assets.model import features
from crime_assets.model.feature_history import (
    HISTORY_KEYS, HistoryRun, HistoryTables, fit_history, history_months,
)
from crime_assets.model.features import (
    CODED_COLUMNS, FEATURE_NAMES, build_features, coded_rows, features_for_month, incident_rows,
    read_features, write_arrest_features,
)
from crime_assets.model.report_clock import ReportClock, case_numbers
from crime_assets.common.months import MonthWindow
from crime_assets_tests.helpers import settings_for


def _connect(settings, read_only=True):
    return duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=read_only)


@pytest.fixture(scope="module")
def leaky_copy(warehouse_2015_2016, tmp_path_factory):
    """A copy of the warehouse whose arrests of 2015-06 and every later month are inverted, and whose
    updated_on is moved: everything a leaking feature could read."""
    settings = settings_for(tmp_path_factory.mktemp("leaky"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(warehouse_2015_2016.data_dir / "warehouse.duckdb", settings.data_dir / "warehouse.duckdb")
    with _connect(settings, read_only=False) as con:
        con.execute("UPDATE incidents_enriched SET arrest = NOT arrest, updated_on = updated_on + INTERVAL 400 DAY "
                    "WHERE month >= '2015-06'")
    return settings


def test_history_months_are_the_twelve_before():
    assert history_months("2016-01") == [f"2015-{m:02d}" for m in range(1, 13)]
    assert history_months("2016-03", 2) == ["2016-01", "2016-02"]


def test_features_ignore_same_and_later_months_arrests(warehouse_2015_2016, leaky_copy):
    with _connect(warehouse_2015_2016) as con:
        original = features_for_month(con, "2015-06")
    with _connect(leaky_copy) as con:
        changed = features_for_month(con, "2015-06")
    assert original["history_last_month"].iloc[0] == "2015-05"
    # The label column follows the change (it is the label), every feature stays put.
    assert (original["arrest"] != changed["arrest"]).all()
    pd.testing.assert_frame_equal(original[list(FEATURE_NAMES)], changed[list(FEATURE_NAMES)])


def test_features_do_follow_earlier_months_arrests(warehouse_2015_2016, leaky_copy):
    """The other side of the leakage test: the history really reads the months before."""
    with _connect(warehouse_2015_2016) as con:
        original = features_for_month(con, "2015-07")
    with _connect(leaky_copy) as con:
        changed = features_for_month(con, "2015-07")  # its history includes the inverted 2015-06
    assert not np.allclose(original["type_prior"], changed["type_prior"])
    pd.testing.assert_series_equal(original["id_offset"], changed["id_offset"])  # no arrest in report signals


def test_first_month_has_empty_history_not_an_error(warehouse_2015_2016):
    with _connect(warehouse_2015_2016) as con:
        rows = features_for_month(con, "2015-01")
    assert len(rows) > 20_000
    assert rows["history_first_month"].isna().all()
    assert (rows["history_incidents"] == 0).all()
    assert rows["type_prior"].isna().all() and rows["rate_type_beat"].isna().all()
    assert (rows["n_type_beat"] == 0).all()
    assert rows["id_offset"].notna().mean() > 0.99  # report-time signals need no history


def test_history_smooths_toward_the_type_prior(warehouse_2015_2016):
    with _connect(warehouse_2015_2016) as con:
        history = fit_history(con, "2015-01", "2015-12")
        rows = incident_rows(con, "2016-01", "2016-01")
    assert set(history.tables) == set(HISTORY_KEYS)
    features = build_features(rows, history)
    narcotics = features[rows["primary_type"] == "NARCOTICS"]
    assert narcotics["type_prior"].min() > 0.95  # narcotics incidents are arrests by construction
    # A cell seen rarely sits between its own rate and the type prior; never exactly 0 or 1.
    assert features["rate_type_h3_r10"].dropna().between(0, 1, inclusive="neither").all()
    unseen = features["n_type_block"] == 0
    assert np.allclose(features.loc[unseen, "rate_type_block"], features.loc[unseen, "type_prior"])


def test_a_history_run_spans_what_fit_history_fits(warehouse_2015_2016):
    """A window's months sum a HistoryRun's per-month counts: the same lookups as fitting each span."""
    with _connect(warehouse_2015_2016) as con:
        run = HistoryRun(coded_rows(con, "2014-12", "2016-02"))
        rows = incident_rows(con, "2016-03", "2016-03")
        for first, last in (("2015-03", "2016-02"), ("2014-12", "2015-11"), ("2014-12", "2014-12")):
            fitted, spanned = fit_history(con, first, last), run.span(first, last)
            assert spanned.months == fitted.months
            assert (spanned.incidents, spanned.tables["type"]["arrests"].sum()) == \
                (fitted.incidents, fitted.tables["type"]["arrests"].sum())
            expected, found = fitted.lookup(rows), spanned.lookup(rows)
            assert found.keys() == expected.keys()
            for name, values in expected.items():
                np.testing.assert_array_equal(found[name], values, err_msg=f"{first}...{last} {name}")


def test_coded_rows_are_incident_rows_with_categorical_text(warehouse_2015_2016):
    with _connect(warehouse_2015_2016) as con:
        plain, coded = incident_rows(con, "2016-01", "2016-02"), coded_rows(con, "2016-01", "2016-02")
    for column in CODED_COLUMNS:
        assert isinstance(coded[column].dtype, pd.CategoricalDtype), column
        assert coded[column].astype(object).fillna("-").tolist() == plain[column].fillna("-").tolist(), column
    pd.testing.assert_frame_equal(coded.drop(columns=list(CODED_COLUMNS)), plain.drop(columns=list(CODED_COLUMNS)))


def test_a_window_writes_the_rows_of_its_months_built_alone(warehouse_2015_2016, tmp_path, monkeypatch):
    """Runs of two months here, so the window spans a run boundary and ends on a lone month."""
    monkeypatch.setattr(features, "RUN_MONTHS", 2)
    shutil.copy(warehouse_2015_2016.data_dir / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    months = ["2015-12", "2016-01", "2016-02"]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        stats = write_arrest_features(con, MonthWindow.from_keys(months[0], months[-1]))
        written = read_features(con, months)
        alone = pd.concat([features_for_month(con, m) for m in months], ignore_index=True)
    assert stats.history_by_month["2015-12"] == "2015-01...2015-11"
    pd.testing.assert_frame_equal(written[list(alone.columns)], alone, check_dtype=False, check_exact=True)


def test_history_tables_round_trip():
    empty = HistoryTables.empty()
    frame = pd.DataFrame({"primary_type": ["THEFT"], "iucr": ["0820"], "location_description": ["STREET"],
                          "beat": [111], "district": [1], "block": ["001XX N STATE ST"], "h3_r8": [0], "h3_r10": [0]})
    out = empty.lookup(frame)
    assert np.isnan(out["type_prior"]).all() and (out["n_type_beat"] == 0).all()
    again = HistoryTables.from_frames(empty.months, empty.to_frames())
    assert set(again.tables) == set(HISTORY_KEYS)


def test_case_numbers_give_the_year_of_reporting():
    occurred = pd.Series(pd.to_datetime(["2015-03-01", "2015-03-01", "2016-05-01", "2015-12-31", "2015-01-01",
                                         "2015-01-01"]))
    parsed = case_numbers(pd.Series(["HY123456", " HZ100001 ", "JA555555", "HY98765A", None, "XX1"]), occurred)
    assert parsed.regular.tolist() == [True, True, True, False, False, False]
    assert parsed.year[:3].tolist() == [2015, 2016, 2017]  # H Y -> H Z -> J A: I is skipped
    assert parsed.year_offset[:3].tolist() == [0, 1, 1]
    assert parsed.counter[0] == 2015 * 1e6 + 123456


def test_late_reports_stand_out_against_their_peers(warehouse_2015_2016):
    """A record id far above the ids of incidents that occurred in the same slot is a late report."""
    with _connect(warehouse_2015_2016) as con:
        rows = incident_rows(con, "2016-02", "2016-02")
        history = fit_history(con, "2015-02", "2016-01")
    features = build_features(rows, history)
    late = features["id_offset"] > 5_000        # ~5 days of ids
    prompt = features["id_offset"].abs() < 200
    assert late.mean() > 0.03 and prompt.mean() > 0.3
    assert rows.loc[late, "arrest"].mean() < 0.5 * rows.loc[prompt, "arrest"].mean()


def test_small_batches_fall_back_on_the_stored_references(warehouse_2015_2016):
    with _connect(warehouse_2015_2016) as con:
        rows = incident_rows(con, "2016-02", "2016-02")
        stored = ReportClock.fit(incident_rows(con, "2016-01", "2016-02"))
    history = HistoryTables.empty()
    whole = build_features(rows, history)
    few = rows.sample(40, random_state=1).sort_index()
    alone = build_features(few, history)                   # no peers, no stored references
    assert alone["id_offset"].isna().all()
    with_stored = build_features(few, history, stored)     # the references a model carries
    gap = (with_stored["id_offset"] - whole.loc[few.index, "id_offset"]).abs()
    assert gap.median() < 150  # ~3 hours of ids: the same reading as in the full month
