import duckdb
import pytest

from crime_assets.ingestion.stations import read_stations_csv, stations_from_records
from crime_assets_tests.fake_socrata import export_rows_to_api_records
from crime_assets_tests.helpers import SAMPLE, shared_file

SNAPSHOT = SAMPLE / "police_stations.csv"


def test_snapshot_quirks_text_district_headquarters_and_multiline_address():
    stations = read_stations_csv(SNAPSHOT)
    assert len(stations) == 23
    assert stations["is_district_station"].sum() == 22
    hq = stations[~stations["is_district_station"]].iloc[0]
    assert hq["district_name"] == "Headquarters" and hq["district"] is not None and str(hq["district"]) == "<NA>"
    near_west = stations[stations["district"] == 12].iloc[0]
    assert near_west["address"] == "1412 S Blue Island Ave"  # the line break inside quotes is gone
    assert stations["latitude"].between(41.6, 42.1).all()


def test_api_records_give_the_same_table():
    frame = duckdb.sql(f"select * from read_csv('{SNAPSHOT}', all_varchar=true, header=true)").df()
    from_api = stations_from_records(export_rows_to_api_records(frame))
    assert from_api.equals(read_stations_csv(SNAPSHOT))


def test_shipped_snapshot_is_the_shared_table():
    assert read_stations_csv(shared_file("police_stations.csv")).equals(read_stations_csv(SNAPSHOT))


def test_a_table_without_coordinates_is_refused_by_name():
    frame = duckdb.sql(f"select * from read_csv('{SNAPSHOT}', all_varchar=true, header=true)").df()
    frame.loc[3, "LATITUDE"] = ""
    with pytest.raises(ValueError, match="South Chicago"):
        stations_from_records(export_rows_to_api_records(frame))
