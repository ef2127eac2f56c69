"""CRIME_WAREHOUSE and the DuckLake settings: what the two backends are built from, and the refusals."""

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crime_assets import warehouse
from crime_assets.common.settings import Settings
from crime_assets.defs.resources import build_warehouse


def test_the_default_is_the_duckdb_file_in_the_data_dir(tmp_path):
    settings = Settings.from_env({"CRIME_DATA_DIR": str(tmp_path)})
    resource = build_warehouse(settings)
    assert settings.warehouse.backend == "duckdb"
    assert (resource.backend, resource.path) == ("duckdb", tmp_path / "warehouse.duckdb")
    with pytest.raises(warehouse.WarehouseMissingError, match="warehouse.duckdb"):
        warehouse.connect(environ={"CRIME_DATA_DIR": str(tmp_path)})


def test_ducklake_settings_reach_the_resource_with_the_secrets_as_env_vars(tmp_path):
    env = {"CRIME_DATA_DIR": str(tmp_path), "CRIME_WAREHOUSE": "DuckLake",
           "CRIME_DUCKLAKE_CATALOG": " host=pg  dbname=crime_lake user=crime ", "CRIME_DUCKLAKE_PASSWORD": "s3cret",
           "CRIME_DUCKLAKE_DATA_PATH": "s3://bucket/lake", "CRIME_S3_SECRET_ACCESS_KEY": "also-secret"}
    settings = Settings.from_env(env)
    assert settings.warehouse.ducklake_catalog == "host=pg dbname=crime_lake user=crime"
    assert settings.ducklake_data_path == "s3://bucket/lake/"
    assert "s3cret" not in repr(settings) and "also-secret" not in repr(settings)
    resource = build_warehouse(settings)
    assert (resource.backend, resource.database) == ("ducklake", ":memory:")
    # The UI shows the variables' names, never their values.
    assert isinstance(resource.ducklake_password, dg.EnvVar) and isinstance(resource.s3_secret_access_key, dg.EnvVar)
    assert (resource.ducklake_password.env_var_name, resource.s3_secret_access_key.env_var_name) == \
        ("CRIME_DUCKLAKE_PASSWORD", "CRIME_S3_SECRET_ACCESS_KEY")
    assert "s3cret" not in repr(warehouse.ducklake_target(settings, env))


def test_a_local_data_path_defaults_to_the_data_dir_and_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"CRIME_DATA_DIR": "data", "CRIME_WAREHOUSE": "ducklake", "CRIME_DUCKLAKE_CATALOG": "host=pg dbname=l"}
    assert Settings.from_env(env).ducklake_data_path == str(tmp_path / "data" / "lake") + "/"
    assert Settings.from_env(env | {"CRIME_DUCKLAKE_DATA_PATH": "files"}).ducklake_data_path == \
        str(tmp_path / "files") + "/"


@pytest.mark.parametrize(("env", "message"), [
    ({"CRIME_WAREHOUSE": "postgres"}, "CRIME_WAREHOUSE: Input should be .duckdb. or .ducklake."),
    ({"CRIME_WAREHOUSE": "ducklake"}, "needs CRIME_DUCKLAKE_CATALOG"),
    ({"CRIME_WAREHOUSE": "ducklake", "CRIME_DUCKLAKE_CATALOG": "host=pg password=x"}, "CRIME_DUCKLAKE_PASSWORD"),
    ({"CRIME_S3_URL_STYLE": "virtual"}, "CRIME_S3_URL_STYLE"),
])
def test_bad_warehouse_settings_are_refused_by_name(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"CRIME_DATA_DIR": str(Path("data")), **env})


def _storage_version(con) -> str:
    return con.execute("SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'warehouse'"
                       ).fetchall()[0][0]


def test_a_new_warehouse_file_is_created_in_the_v1_3_format_and_an_old_one_keeps_its_own(tmp_path):
    settings = Settings.from_env({"CRIME_DATA_DIR": str(tmp_path)})
    resource = build_warehouse(settings)
    with resource.connect() as con:
        con.execute("CREATE TABLE t AS SELECT 'cell-' || (i % 997)::VARCHAR AS s FROM range(200000) AS r(i)")
        con.execute("CHECKPOINT")
        assert _storage_version(con) == "v1.3.0+"
        assert {c for (c,) in con.execute("SELECT compression FROM pragma_storage_info('t')"
                                          " WHERE segment_type = 'VARCHAR'").fetchall()} == {"DICT_FSST"}
    with warehouse.connect(settings=settings) as con:  # readers open it plainly
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(200000,)]

    older = tmp_path / "older"
    older.mkdir()
    duckdb.connect(str(older / "warehouse.duckdb")).close()  # DuckDB's own default format
    with build_warehouse(Settings.from_env({"CRIME_DATA_DIR": str(older)})).connect() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert _storage_version(con) == "v1.0.0+"
