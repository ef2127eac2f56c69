import duckdb
import numpy as np
import pandas as pd

from crime_assets.core.enrich import enrich_incidents, incident_geography
from crime_assets.core.months import MonthWindow
from crime_assets.core.raw_load import load_raw_incidents
from crime_assets.core.sources import ExportSource
from crime_assets.core.stations import read_stations_csv
from crime_assets_tests.helpers import SAMPLE

STATIONS = read_stations_csv(SAMPLE / "police_stations.csv")


def test_incidents_on_the_same_point_get_what_the_point_alone_gets():
    # Computed once per distinct point, spread back: each row must equal its own one-row computation.
    lat = np.array([41.8837, 41.75, 41.8837, np.nan, 0.0, 41.75, 41.8837, 41.9])
    lon = np.array([-87.6319, -87.60, -87.6319, -87.6, 0.0, -87.60, np.nan, -87.7])
    ids = np.arange(len(lat))
    together = incident_geography(ids, lat, lon, STATIONS)
    alone = pd.concat([incident_geography(ids[i:i + 1], lat[i:i + 1], lon[i:i + 1], STATIONS) for i in ids],
                      ignore_index=True)
    pd.testing.assert_frame_equal(together, alone)
    assert together["geo_status"].tolist()[3:7] == ["missing", "outside_chicago", "ok", "missing"]
    assert (together.loc[[0, 2], "h3_r10"].nunique(), together.loc[6, "h3_r10"]) == (1, 0)


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
