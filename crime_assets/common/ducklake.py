"""Open the DuckLake warehouse in a DuckDB connection: the catalog in PostgreSQL, the data as Parquet
files in a folder or an S3-compatible bucket. Every process (a run, a notebook, another machine) attaches
the same catalog, so readers and writers need no lock on a file: each query reads one snapshot, and a
transaction commits whole or not at all.

The extensions come from their PyPI wheels (duckdb-extension-*), loaded by path: nothing is downloaded
when a run starts."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

CATALOG = "lake"  # the attached database's name; USE makes it the default, so the project's SQL is unchanged
PASSWORD_SECRET, S3_SECRET = "crime_lake_catalog", "crime_lake_s3"


class DuckLakeMissingError(LookupError):
    pass


@dataclass(frozen=True)
class DuckLakeTarget:
    """Everything needed to attach the lake; the two secrets are values here, never logged."""

    catalog: str                      # libpq connection string without the password
    data_path: str                    # folder (ends with /) or s3://bucket/prefix/
    password: str | None = None
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_url_style: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    def __repr__(self) -> str:
        return f"DuckLakeTarget(catalog={self.catalog!r}, data_path={self.data_path!r})"


def extension_path(name: str) -> Path:
    """The extension file inside the duckdb-extension-<name> wheel, for the installed DuckDB."""
    module = importlib.import_module(f"duckdb_extension_{name}")
    found = sorted(Path(module.__file__).parent.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))
    if not found:
        raise RuntimeError(f"duckdb-extension-{name} has no build for DuckDB {duckdb.__version__}: install the "
                           "versions of requirements.lock (python -m pip install -c requirements.lock -e .)")
    return found[0]


def attach(con: duckdb.DuckDBPyConnection, target: DuckLakeTarget, read_only: bool) -> None:
    """Attach the lake as ``lake`` and make it the default database. A writer creates the catalog's tables
    on first use; a reader of a catalog nobody wrote yet gets ``DuckLakeMissingError``."""
    # httpfs too, whatever the data path says: a reader learns from the catalog where the files are, and
    # DuckDB would otherwise try to download httpfs for files in S3.
    for name in ("postgres_scanner", "ducklake", "httpfs"):
        con.execute(f"LOAD '{extension_path(name)}'")
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {PASSWORD_SECRET} (TYPE postgres, PASSWORD $password)",
                {"password": target.password or ""})
    if target.data_path.startswith("s3://") or target.s3_endpoint or target.s3_access_key_id:
        _s3_secret(con, target)
    options = [f"METADATA_PARAMETERS MAP {{'SECRET': '{PASSWORD_SECRET}'}}",
               # Every row goes to Parquet, none into the catalog, so other engines read all of it.
               "DATA_INLINING_ROW_LIMIT 0"]
    options += ["READ_ONLY"] if read_only else [f"DATA_PATH '{_quoted(target.data_path)}'"]
    try:
        con.execute(f"ATTACH 'ducklake:postgres:{_quoted(target.catalog)}' AS {CATALOG} ({', '.join(options)})")
    except duckdb.InvalidInputException as error:
        if read_only and "does not exist" in str(error):
            raise DuckLakeMissingError(f"no DuckLake catalog in PostgreSQL at {target.catalog!r}: materialise "
                                       "raw_incidents first (see README), or check CRIME_DUCKLAKE_CATALOG") from None
        raise
    con.execute(f"USE {CATALOG}")


def _s3_secret(con: duckdb.DuckDBPyConnection, target: DuckLakeTarget) -> None:
    endpoint = target.s3_endpoint or ""
    use_ssl = not endpoint.startswith("http://")
    endpoint = endpoint.removeprefix("http://").removeprefix("https://")
    fields = {"KEY_ID": target.s3_access_key_id or "", "SECRET": target.s3_secret_access_key or "",
              "REGION": target.s3_region,
              "URL_STYLE": target.s3_url_style or ("path" if endpoint else "vhost")}
    if endpoint:
        fields["ENDPOINT"] = endpoint
    body = ", ".join(f"{key} ${key.lower()}" for key in fields)
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {S3_SECRET} (TYPE s3, {body}, USE_SSL {str(use_ssl).lower()})",
                {key.lower(): value for key, value in fields.items()})


def _quoted(text: str) -> str:
    return text.replace("'", "''")
