"""CRIME_WAREHOUSE and the DuckLake settings: what the two backends are built from, and the refusals."""

from pathlib import Path

import dagster as dg
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
