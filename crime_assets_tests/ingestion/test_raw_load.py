"""Normalisation of both source formats into raw_incidents, quarantine and atomic replacement."""

from __future__ import annotations

import gzip
import json

import duckdb
import pandas as pd
import pytest

from crime_assets.common.months import MonthWindow
from crime_assets.ingestion.raw_load import load_raw_incidents, load_raw_incidents_in_chunks
from crime_assets.common.schema import RAW_INCIDENTS, create_table_sql
from crime_assets.ingestion.sources import ExportSource, FetchedRecords, records_to_frame, resolve_export_files
from crime_assets_tests.fake_socrata import export_rows_to_api_records
from crime_assets_tests.helpers import SAMPLE, shared_file

MARCH = MonthWindow.from_keys("2016-03")
COMPARED = ["id", "case_number", "occurred_at", "block", "iucr", "primary_type", "description",
            "location_description", "arrest", "domestic", "beat", "district", "ward", "community_area", "fbi_code",
            "x_coordinate", "y_coordinate", "latitude", "longitude", "updated_on", "month"]


@pytest.fixture(scope="module")
def march_export() -> pd.DataFrame:
    """400 real March 2016 rows as the portal exports them (text, Title Case headers), incl. rows without coordinates."""
    return duckdb.sql(f"""
        SELECT * FROM read_csv('{SAMPLE / "crimes_2016.csv.zst"}', all_varchar=true, header=true)
        WHERE "Date" LIKE '03/%' ORDER BY ("Latitude" IS NULL) DESC, hash("ID") LIMIT 400""").df()


def load(staged, window=MARCH, con=None):
    con = con or duckdb.connect()
    return con, load_raw_incidents(con, staged, window)


def rows(con, where="true") -> pd.DataFrame:
    return con.sql(f"SELECT {', '.join(COMPARED)} FROM raw_incidents WHERE {where} ORDER BY id").df()


def test_export_and_api_records_normalise_to_the_same_rows(march_export, tmp_path):
    path = tmp_path / "export.csv"
    march_export.to_csv(path, index=False)
    con_export, from_export = load(ExportSource(str(path)).collect(MARCH))
    api = FetchedRecords(records_to_frame(export_rows_to_api_records(march_export), "2016-03", "socrata:test"), "socrata:test")
    con_api, from_api = load(api)
    assert from_export.rows == from_api.rows == 400 and from_export.quarantined == from_api.quarantined == 0
    pd.testing.assert_frame_equal(rows(con_export), rows(con_api))
    typed = rows(con_export)
    assert typed["occurred_at"].dt.month.eq(3).all() and typed["beat"].dtype.kind in "iu"
    assert typed["latitude"].isna().sum() > 0  # kept, not dropped
    assert str(con_export.sql("SELECT typeof(arrest), typeof(updated_on) FROM raw_incidents LIMIT 1").fetchall()[0]) \
        == "('BOOLEAN', 'TIMESTAMP')"


def test_the_22_column_variant_gzip_and_a_folder_give_the_same_rows(march_export, tmp_path):
    plain = tmp_path / "plain" / "export.csv"
    plain.parent.mkdir()
    march_export.to_csv(plain, index=False)
    wide = march_export.copy()
    wide.insert(17, "Year", "2016")
    wide["Location"] = [f"({a}, {b})" if isinstance(a, str) and a else "" for a, b in zip(wide["Latitude"], wide["Longitude"])]
    wide.loc[wide.index[-1], ["Latitude", "Longitude"]] = ""  # the Location text backs up missing plain fields
    folder = tmp_path / "folder"
    folder.mkdir()
    with gzip.open(folder / "crimes.csv.gz", "wt") as out:
        wide.to_csv(out, index=False)
    (folder / "notes.txt").write_text("not an export")
    con_plain, _ = load(ExportSource(str(plain)).collect(MARCH))
    con_wide, loaded = load(ExportSource(str(folder)).collect(MARCH))
    assert loaded.rows == 400
    pd.testing.assert_frame_equal(rows(con_plain), rows(con_wide))


def test_unusable_rows_are_quarantined_with_a_reason_never_dropped(march_export):
    records = export_rows_to_api_records(march_export.head(10))
    newer = dict(records[0], updated_on="2030-01-01T00:00:00.000", arrest=True)
    bad = [
        {k: v for k, v in records[1].items() if k != "id"},        # missing_id
        dict(records[2], id="12x"),                                   # invalid_id
        dict(records[3], date="31/03/2016 25:00"),                    # unparseable_date
        dict(records[6], date="2016-03-05T10:00:00-06:00"),           # date_has_utc_offset
        dict(records[7], date="2016-03-05T10:00:00Z"),                # date_has_utc_offset
        dict(records[4], date="2016-04-02T10:00:00.000"),             # date_outside_partition
        {k: v for k, v in records[5].items() if k != "date"},       # missing_date
        newer,                                                        # supersedes records[0]
    ]
    staged = FetchedRecords(records_to_frame(records[:1] + records[6:] + bad, "2016-03", "socrata:test"), "socrata:test")
    con, loaded = load(staged)
    assert loaded.rows == 5
    assert loaded.quarantined_by_reason == {"date_outside_partition": 1, "invalid_id": 1, "missing_date": 1,
                                            "missing_id": 1, "superseded_duplicate": 1, "unparseable_date": 1,
                                            "date_has_utc_offset": 2}
    winner = con.sql(f"SELECT arrest, updated_on FROM raw_incidents WHERE id = {int(records[0]['id'])}").fetchall()
    assert winner == [(True, pd.Timestamp("2030-01-01").to_pydatetime())]
    kept = con.sql("SELECT month, reason, record FROM raw_incidents_quarantine ORDER BY reason").fetchall()
    assert {month for month, _, _ in kept} == {"2016-03"}
    invalid = json.loads(next(r for _, reason, r in kept if reason == "invalid_id"))
    assert invalid["id"] == "12x" and invalid["case_number"] == records[2]["case_number"]


def test_reloading_replaces_the_months_rows_and_a_failure_keeps_the_previous_ones(march_export, tmp_path):
    path = tmp_path / "export.csv"
    march_export.to_csv(path, index=False)
    con = duckdb.connect()
    # A stricter table than ours: an insert of rows without an arrest flag fails mid-transaction.
    con.execute(create_table_sql("raw_incidents", RAW_INCIDENTS).replace("arrest BOOLEAN", "arrest BOOLEAN NOT NULL"))
    _, first = load(ExportSource(str(path)).collect(MARCH), con=con)
    before = rows(con)
    _, again = load(ExportSource(str(path)).collect(MARCH), con=con)
    assert again.rows == first.rows == 400 and rows(con).equals(before)

    march_export.loc[0, "Arrest"] = ""
    march_export.to_csv(path, index=False)
    with pytest.raises(duckdb.ConstraintException):
        load(ExportSource(str(path)).collect(MARCH), con=con)
    pd.testing.assert_frame_equal(rows(con), before)


def test_an_api_file_without_ids_is_quarantined_whole():
    sample = shared_file("api_sample_2012-01.csv.gz")
    frame = duckdb.sql(f"SELECT * FROM read_csv('{sample}', all_varchar=true, header=true) "
                       "WHERE date LIKE '2012-01%'").df()
    staged = FetchedRecords(records_to_frame(frame.to_dict("records"), "2012-01", "api-sample"), "api-sample")
    con, loaded = load(staged, MonthWindow.from_keys("2012-01"))
    assert loaded.rows == 0 and loaded.quarantined_by_reason == {"missing_id": len(frame)}


def test_a_folder_keeps_only_crime_exports():
    # The shipped folder also holds police_stations.csv, which is no crime export.
    assert [p.name for p in resolve_export_files(SAMPLE)] == ["crimes_2015.csv.zst", "crimes_2016.csv.zst"]
    with pytest.raises(FileNotFoundError, match="CRIME_EXPORT_PATH .*nope"):
        resolve_export_files(SAMPLE / "nope*.csv")
    with pytest.raises(FileNotFoundError, match="CRIME_EXPORT_PATH .*is not a file"):
        resolve_export_files("/nonexistent/file.csv")


def test_the_real_2016_export_loads_whole():
    con, loaded = load(ExportSource(str(SAMPLE / "crimes_2016.csv.zst")).collect(MonthWindow.from_keys("2016-01", "2016-12")),
                       MonthWindow.from_keys("2016-01", "2016-12"))
    assert loaded.rows == 268_813 and loaded.quarantined == 0
    assert [m.rows for m in loaded.months][:3] == [20_583, 18_680, 21_986]
    assert round(sum(m.arrests for m in loaded.months) / loaded.rows, 3) == 0.196


def test_a_folder_run_reads_only_the_files_holding_its_months_and_chunks_change_nothing(tmp_path):
    index = tmp_path / "cache" / "export_months.json"
    source = ExportSource(str(SAMPLE), index_file=index)
    assert source.collect(MonthWindow.from_keys("2016-03")).files == (SAMPLE / "crimes_2016.csv.zst",)
    assert len(source.collect(MonthWindow.from_keys("2015-12", "2016-01")).files) == 2
    assert source.collect(MonthWindow.from_keys("2014-01")).files == ()
    assert json.loads(index.read_text())  # cached for the next process

    window = MonthWindow.from_keys("2015-11", "2016-02")
    whole_con, whole = load(source.collect(window), window)
    chunked_con = duckdb.connect()
    chunked = load_raw_incidents_in_chunks(chunked_con, [(p, source.collect(p)) for p in window.chunks(1)], window)
    assert [m.rows for m in chunked.months] == [m.rows for m in whole.months]
    pd.testing.assert_frame_equal(rows(chunked_con), rows(whole_con))
    empty_con, empty = load(source.collect(MonthWindow.from_keys("2014-01")), MonthWindow.from_keys("2014-01"))
    assert empty.rows == 0 and empty.source == "export:no file holds 2014-01"
