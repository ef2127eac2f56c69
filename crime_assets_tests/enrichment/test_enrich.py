import duckdb
import h3
import numpy as np
import pandas as pd

from crime_assets.enrichment.enrich import enrich_incidents, point_geography
from crime_assets.common.months import MonthWindow
from crime_assets.ingestion.raw_load import ensure_raw_tables, load_raw_incidents
from crime_assets.ingestion.sources import ExportSource
from crime_assets.ingestion.stations import read_stations_csv
from crime_assets_tests.helpers import SAMPLE

STATIONS = read_stations_csv(SAMPLE / "police_stations.csv")
DISTRICTS = STATIONS[STATIONS["is_district_station"]].reset_index(drop=True)


def test_point_geography_of_known_points():
    # City Hall (121 N LaSalle): nearest district station Near North; 0/0 is off the city; NaN is no coordinate.
    lat = np.array([41.8837, np.nan, 0.0, 41.8837])
    lon = np.array([-87.6319, -87.6, 0.0, np.nan])
    points = point_geography(lat, lon, DISTRICTS)
    assert points["geo_status"].astype(str).tolist() == ["ok", "missing", "outside_chicago", "missing"]
    assert DISTRICTS["district_name"][points["station"][0]] == "Near North"
    assert points["station"].tolist()[1:] == [-1, -1, -1] and points["station_distance_m"][1:].isna().all()
    assert points["h3_r10"].tolist() == [h3.str_to_int(h3.latlng_to_cell(41.8837, -87.6319, 10)), 0, 0, 0]


def test_incidents_get_the_geography_of_their_point_and_none_without_a_usable_one():
    con = duckdb.connect()
    ensure_raw_tables(con)
    coordinates = [(41.8837, -87.6319), (41.8837, -87.6319), (None, None), (41.75, None), (0.0, 0.0),
                   (float("nan"), -87.6), (41.75, -87.60)]
    for i, (lat, lon) in enumerate(coordinates):
        con.execute("INSERT INTO raw_incidents (id, occurred_at, month, latitude, longitude)"
                    " VALUES ($id, TIMESTAMP '2016-03-05 14:30:00', '2016-03', $lat, $lon)",
                    {"id": i, "lat": lat, "lon": lon})
    stats = enrich_incidents(con, STATIONS, MonthWindow.from_keys("2016-03"))
    rows = con.execute("SELECT geo_status, is_geolocated, nearest_station_name, station_distance_m IS NOT NULL,"
                       " h3_r10, h3_r6 FROM incidents_enriched ORDER BY id").fetchall()
    city_hall = h3.latlng_to_cell(41.8837, -87.6319, 10)
    assert rows[0] == rows[1] == ("ok", True, "Near North", True, city_hall, h3.cell_to_parent(city_hall, 6))
    assert [r[:2] for r in rows[2:6]] == [("missing", False), ("missing", False), ("outside_chicago", False),
                                         ("missing", False)]
    assert all(r[2:] == (None, False, None, None) for r in rows[2:6])
    assert rows[6][0] == "ok" and rows[6][4] == h3.latlng_to_cell(41.75, -87.60, 10)
    assert (stats.rows, stats.geolocated) == (7, 3)


def test_enrichment_is_the_same_whatever_the_chunk_size():
    window = MonthWindow.from_keys("2016-01", "2016-03")
    con = duckdb.connect()
    load_raw_incidents(con, ExportSource(str(SAMPLE)).collect(window), window)
    tables = []
    for chunk_months in (1, 3):
        stats = enrich_incidents(con, STATIONS, window, chunk_months)
        tables.append(con.execute("SELECT * FROM incidents_enriched ORDER BY id").df())
        assert stats.rows == con.execute("SELECT count(*) FROM raw_incidents").fetchone()[0] > 50_000
    pd.testing.assert_frame_equal(*tables)
    assert set(tables[0]["month"]) == {"2016-01", "2016-02", "2016-03"}
