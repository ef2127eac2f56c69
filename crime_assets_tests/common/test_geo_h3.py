import h3
import numpy as np
import pytest

from crime_assets.common.geo import coordinate_status, haversine_m, nearest_station
from crime_assets.common.h3cells import cells_by_resolution, finest_cells, parent_cells, to_hex
from crime_assets.ingestion.stations import read_stations_csv
from crime_assets_tests.helpers import SAMPLE

STATIONS = read_stations_csv(SAMPLE / "police_stations.csv")
DISTRICTS = STATIONS[STATIONS["is_district_station"]].reset_index(drop=True)


def test_one_degree_of_latitude_is_111_195_metres():
    assert haversine_m(41.0, -87.0, 42.0, -87.0) == pytest.approx(111_195.08, abs=0.5)


def test_coordinates_off_the_city_are_flagged_not_dropped():
    lat = np.array([41.8837, np.nan, 0.0, 36.619446, 42.5])
    lon = np.array([-87.6319, -87.6, 0.0, -91.686566, -87.6])
    assert coordinate_status(lat, lon).tolist() == ["ok", "missing", "outside_chicago", "outside_chicago",
                                                   "outside_chicago"]


def test_nearest_station_of_known_points():
    # City Hall (121 N LaSalle): the Central station (1718 S State) is 2.9 km south, Near North (1160 N Larrabee) 2.6 km.
    # A station's own coordinates: itself at 0 m. No coordinates: no station.
    shakespeare = DISTRICTS[DISTRICTS["district_name"] == "Shakespeare"].iloc[0]
    lat = np.array([41.8837, shakespeare.latitude, np.nan])
    lon = np.array([-87.6319, shakespeare.longitude, np.nan])
    index, distance = nearest_station(lat, lon, DISTRICTS["latitude"].to_numpy(), DISTRICTS["longitude"].to_numpy())
    assert DISTRICTS["district_name"][index[0]] == "Near North"
    near_north = DISTRICTS[DISTRICTS["district_name"] == "Near North"].iloc[0]
    assert distance[0] == pytest.approx(haversine_m(41.8837, -87.6319, near_north.latitude, near_north.longitude))
    assert 2_000 < distance[0] < 3_000
    assert DISTRICTS["district_name"][index[1]] == "Shakespeare" and distance[1] == pytest.approx(0, abs=1e-6)
    assert index[2] == -1 and np.isnan(distance[2])


def test_nearest_station_matches_brute_force_on_random_city_points():
    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(41.65, 42.02, 5_000), rng.uniform(-87.93, -87.53, 5_000)
    index, distance = nearest_station(lat, lon, DISTRICTS["latitude"], DISTRICTS["longitude"], chunk=777)
    full = haversine_m(lat[:, None], lon[:, None], DISTRICTS["latitude"].to_numpy()[None], DISTRICTS["longitude"].to_numpy()[None])
    assert (index == full.argmin(axis=1)).all()
    assert np.allclose(distance, full.min(axis=1))


def test_h3_cells_of_city_hall_and_the_parent_rule():
    cells = cells_by_resolution(np.array([41.8837]), np.array([-87.6319]))
    assert to_hex(cells[10]) == [h3.latlng_to_cell(41.8837, -87.6319, 10)]
    for r in (6, 7, 8, 9):
        assert to_hex(cells[r]) == [h3.cell_to_parent(to_hex(cells[10])[0], r)]
        assert h3.get_resolution(to_hex(cells[r])[0]) == r


def test_bit_parents_equal_the_library_on_many_points_and_keep_missing_empty():
    rng = np.random.default_rng(5)
    lat, lon = rng.uniform(41.65, 42.02, 2_000), rng.uniform(-87.93, -87.53, 2_000)
    lat[7] = np.nan
    finest = finest_cells(lat, lon)
    assert finest[7] == 0 and to_hex(finest[7:8]) == [None]
    for r in (6, 7, 8, 9):
        parents = parent_cells(finest, r)
        assert parents[7] == 0
        expected = [h3.str_to_int(h3.cell_to_parent(h3.int_to_str(int(c)), r)) for c in finest if c]
        assert parents[finest != 0].tolist() == expected
