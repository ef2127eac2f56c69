"""Every setting of the platform, read from the environment in this one place.

| variable | default | meaning |
|---|---|---|
| CRIME_DATA_DIR | ./data | everything the platform writes: warehouse.duckdb, reports, the MLflow store, logs |
| CRIME_SOURCE | export | `export` (bulk CSV files; the shipped sample by default) or `socrata` (live API) |
| CRIME_EXPORT_PATH | the shipped sample | a bulk-export file, a folder of them, or a glob |
| SOCRATA_DOMAIN | data.cityofchicago.org | portal host, or `http://host:port` for a mirror |
| SOCRATA_APP_TOKEN | (none) | app token; secret, read through EnvVar only |
| SOCRATA_PAGE_SIZE | 50000 | rows per API page |
| SOCRATA_INCIDENTS_DATASET | ijzp-q8t2 | crimes dataset id |
| SOCRATA_STATIONS_DATASET | z8bn-74gv | police stations dataset id |
| CRIME_WAREHOUSE | duckdb | `duckdb`: the file <CRIME_DATA_DIR>/warehouse.duckdb, one process at a time; `ducklake`: DuckLake, catalog in PostgreSQL, Parquet files in CRIME_DUCKLAKE_DATA_PATH, many readers and writers on many machines |
| CRIME_DUCKLAKE_CATALOG | (none; required with ducklake) | the catalog's PostgreSQL as a libpq string without the password, e.g. `host=pg port=5432 dbname=crime_lake user=crime` |
| CRIME_DUCKLAKE_PASSWORD | (none) | that login's password; secret, read through EnvVar only |
| CRIME_DUCKLAKE_DATA_PATH | <CRIME_DATA_DIR>/lake/ | where the Parquet files go: a folder every run can reach (a shared volume), or `s3://bucket/prefix/` |
| CRIME_S3_ENDPOINT | (none: AWS) | an S3-compatible store as `host:port` or `http(s)://host:port` (MinIO, Ceph, R2, ...) |
| CRIME_S3_REGION | us-east-1 | the bucket's region |
| CRIME_S3_URL_STYLE | vhost (path with CRIME_S3_ENDPOINT) | `path` or `vhost` addressing |
| CRIME_S3_ACCESS_KEY_ID | (none) | S3 key id |
| CRIME_S3_SECRET_ACCESS_KEY | (none) | its secret; secret, read through EnvVar only |
| CRIME_CHUNK_MONTHS | 24 | months a run processes at a time (bounds memory on long ranges) |
| CRIME_SCHEDULE_DAY | 8 | day of the month (1-28) the monthly schedule runs the previous month |
| CRIME_SCHEDULE_HOUR | 6 | hour (0-23, Chicago time) of that run |
| CRIME_SENSOR_INTERVAL_SECONDS | 3600 | how often the new-data sensor polls the source |
| CRIME_SENSOR_LOOKBACK_MONTHS | 24 | complete months the new-data sensor watches for new and changed records; `all` = since 2001 |
| CRIME_AUTOMATION_INTERVAL_SECONDS | 30 | how often the automation sensor evaluates the downstream assets' conditions |
| CRIME_ALERT_WEBHOOK_URL | (none) | Slack-compatible incoming webhook for alerts; secret, read through EnvVar only |
| CRIME_SMTP_HOST | (none) | SMTP server for alert e-mails; unset: no e-mail |
| CRIME_SMTP_PORT | 25 | its port |
| CRIME_SMTP_USER | (none) | login name, when the server needs one |
| CRIME_SMTP_PASSWORD | (none) | its password; secret, read through EnvVar only |
| CRIME_SMTP_STARTTLS | true when CRIME_SMTP_USER is set | `true`/`false`: upgrade the connection with STARTTLS before logging in |
| CRIME_ALERT_EMAIL_FROM | crime-assets@localhost | sender of alert e-mails |
| CRIME_ALERT_EMAIL_TO | (none) | comma-separated recipients; required with CRIME_SMTP_HOST |
| CRIME_ALERT_ON_WARN | freshness_check | WARN check failures that also alert: `all`, `none`, or comma-separated check names (ERROR always alerts) |
| CRIME_UI_BASE_URL | http://localhost:3000 | the Dagster UI as people reach it; alerts link into it |
| CRIME_ALERT_INTERVAL_SECONDS | 30 | how often the alert sensor looks for failed checks and runs and retries deliveries |
| CRIME_FRESHNESS_DAYS | 14 | days (1-27) after a month ends by which it must be materialised (raw_incidents, incidents_enriched) |
| MLFLOW_TRACKING_URI | sqlite:///<CRIME_DATA_DIR>/mlflow/mlflow.db | MLflow runs and model registry (`http://host:5000` for a server); the default store keeps artifacts in <CRIME_DATA_DIR>/mlflow/artifacts |
| ARREST_MODEL_NAME | chicago_arrest | registered model name of the arrest model (`load_model()` reads it) |
| CRIME_EXPLORER_URL | http://localhost:8501 | the hotspot explorer as people reach it; the `hotspots` asset links to it |
| CRIME_EXPLORER_TILES_URL | (none) | a raster tile URL with {z}, {x}, {y} drawn under the explorer's hexagons; unset: no tiles (works offline) |
| CRIME_SERVING_MODEL_ALIAS | champion | registry alias of ARREST_MODEL_NAME the scoring service serves (crime_assets/serving) |
| CRIME_SERVING_REFRESH_SECONDS | 30 | how often the scoring service checks whether that alias has moved to another version |
| CRIME_SERVING_MAX_BATCH | 10000 | most records one `POST /predict/batch` may hold (more: 413) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SAMPLE_DIR = Path(__file__).parent.parent / "sample_data"
SOURCES = ("export", "socrata")


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, str(default))
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {text!r}")
    return int(text)


def _int_in_range(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = environ.get(name, str(default)).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class AutomationSettings:
    """The schedule, the new-data sensor and the automation sensor (crime_assets/defs/automation)."""

    schedule_day: int = 8
    schedule_hour: int = 6
    sensor_interval_s: int = 3600
    sensor_lookback_months: int | None = 24  # None: every month since the partitions start
    automation_interval_s: int = 30

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AutomationSettings:
        lookback = environ.get("CRIME_SENSOR_LOOKBACK_MONTHS", "24").strip().lower()
        return cls(
            # 28 at most: every month has that day.
            schedule_day=_int_in_range(environ, "CRIME_SCHEDULE_DAY", 8, 1, 28),
            schedule_hour=_int_in_range(environ, "CRIME_SCHEDULE_HOUR", 6, 0, 23),
            sensor_interval_s=_int_in_range(environ, "CRIME_SENSOR_INTERVAL_SECONDS", 3600, 1, 7 * 86400),
            sensor_lookback_months=None if lookback == "all" else
            _int_in_range(environ, "CRIME_SENSOR_LOOKBACK_MONTHS", 24, 1, 10_000),
            automation_interval_s=_int_in_range(environ, "CRIME_AUTOMATION_INTERVAL_SECONDS", 30, 1, 86400),
        )


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _url(environ: Mapping[str, str], name: str, default: str | None, placeholders: tuple[str, ...] = ()) -> str | None:
    text = environ.get(name, "").strip() or default
    if text is None:
        return None
    if not text.startswith(("http://", "https://")) or any(p not in text for p in placeholders):
        needs = f" containing {', '.join(placeholders)}" if placeholders else ""
        raise ValueError(f"{name} must be an http:// or https:// URL{needs}, got {text!r}")
    return text.rstrip("/") if not placeholders else text


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    text = environ.get(name, "").strip().lower()
    if not text:
        return default
    if text not in _TRUE + _FALSE:
        raise ValueError(f"{name} must be true or false, got {text!r}")
    return text in _TRUE


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go and which ones (crime_assets/defs/monitoring). Secrets appear only as has_* flags."""

    has_webhook: bool = False
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    has_smtp_password: bool = False
    smtp_starttls: bool = False
    email_from: str = "crime-assets@localhost"
    email_to: tuple[str, ...] = ()
    alert_on_warn: tuple[str, ...] = ("freshness_check",)  # ("*",): every WARN check
    ui_base_url: str = "http://localhost:3000"
    interval_s: int = 30
    freshness_days: int = 14

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AlertSettings:
        smtp_host = environ.get("CRIME_SMTP_HOST", "").strip() or None
        smtp_user = environ.get("CRIME_SMTP_USER", "").strip() or None
        email_to = tuple(a.strip() for a in environ.get("CRIME_ALERT_EMAIL_TO", "").split(",") if a.strip())
        if smtp_host and not email_to:
            raise ValueError("CRIME_ALERT_EMAIL_TO must name at least one recipient when CRIME_SMTP_HOST is set")
        if environ.get("CRIME_SMTP_PASSWORD") and not smtp_user:
            raise ValueError("CRIME_SMTP_PASSWORD is set but CRIME_SMTP_USER is not")
        on_warn = environ.get("CRIME_ALERT_ON_WARN", "freshness_check").strip()
        return cls(
            has_webhook=bool(environ.get("CRIME_ALERT_WEBHOOK_URL", "").strip()),
            smtp_host=smtp_host,
            smtp_port=_int_in_range(environ, "CRIME_SMTP_PORT", 25, 1, 65535),
            smtp_user=smtp_user,
            has_smtp_password=bool(environ.get("CRIME_SMTP_PASSWORD")),
            # A password never crosses the network in clear unless someone says so explicitly.
            smtp_starttls=_bool(environ, "CRIME_SMTP_STARTTLS", default=smtp_user is not None),
            email_from=environ.get("CRIME_ALERT_EMAIL_FROM", "").strip() or "crime-assets@localhost",
            email_to=email_to,
            alert_on_warn=("*",) if on_warn.lower() == "all" else () if on_warn.lower() in ("", "none") else
            tuple(n.strip() for n in on_warn.split(",") if n.strip()),
            ui_base_url=environ.get("CRIME_UI_BASE_URL", "").strip().rstrip("/") or "http://localhost:3000",
            interval_s=_int_in_range(environ, "CRIME_ALERT_INTERVAL_SECONDS", 30, 1, 86400),
            # 27 at most: the deadline is day N+1 of the next month, and every month has a 28th.
            freshness_days=_int_in_range(environ, "CRIME_FRESHNESS_DAYS", 14, 1, 27),
        )


WAREHOUSES = ("duckdb", "ducklake")


@dataclass(frozen=True)
class WarehouseSettings:
    """Which warehouse the assets write and analysts read (crime_assets/warehouse.py). Secrets appear only
    as has_* flags: the password and the S3 secret are read through EnvVar (or from the environment by
    ``warehouse.connect``)."""

    backend: str = "duckdb"
    ducklake_catalog: str | None = None      # libpq connection string of the catalog, no password
    has_ducklake_password: bool = False
    ducklake_data_path: str | None = None    # None: <data_dir>/lake/
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_url_style: str | None = None
    s3_access_key_id: str | None = None
    has_s3_secret: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WarehouseSettings:
        backend = environ.get("CRIME_WAREHOUSE", "").strip().lower() or "duckdb"
        if backend not in WAREHOUSES:
            raise ValueError(f"CRIME_WAREHOUSE must be one of {WAREHOUSES}, got {backend!r}")
        catalog = " ".join(environ.get("CRIME_DUCKLAKE_CATALOG", "").split()) or None
        if backend == "ducklake" and not catalog:
            raise ValueError("CRIME_WAREHOUSE=ducklake needs CRIME_DUCKLAKE_CATALOG, the catalog's PostgreSQL as a "
                             "libpq string, e.g. 'host=pg port=5432 dbname=crime_lake user=crime'")
        if catalog and "password" in catalog.lower():
            raise ValueError("CRIME_DUCKLAKE_CATALOG must not hold the password: put it in CRIME_DUCKLAKE_PASSWORD")
        url_style = environ.get("CRIME_S3_URL_STYLE", "").strip().lower() or None
        if url_style not in (None, "path", "vhost"):
            raise ValueError(f"CRIME_S3_URL_STYLE must be path or vhost, got {url_style!r}")
        return cls(
            backend=backend,
            ducklake_catalog=catalog,
            has_ducklake_password=bool(environ.get("CRIME_DUCKLAKE_PASSWORD")),
            ducklake_data_path=environ.get("CRIME_DUCKLAKE_DATA_PATH", "").strip() or None,
            s3_endpoint=environ.get("CRIME_S3_ENDPOINT", "").strip() or None,
            s3_region=environ.get("CRIME_S3_REGION", "").strip() or "us-east-1",
            s3_url_style=url_style,
            s3_access_key_id=environ.get("CRIME_S3_ACCESS_KEY_ID", "").strip() or None,
            has_s3_secret=bool(environ.get("CRIME_S3_SECRET_ACCESS_KEY")),
        )


@dataclass(frozen=True)
class ServingSettings:
    """The scoring service (crime_assets/serving)."""

    model_alias: str = "champion"
    refresh_s: int = 30
    max_batch: int = 10_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServingSettings:
        alias = environ.get("CRIME_SERVING_MODEL_ALIAS", "").strip() or "champion"
        if not alias.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"CRIME_SERVING_MODEL_ALIAS must be an MLflow alias (letters, digits, _ and -), "
                             f"got {alias!r}")
        return cls(
            model_alias=alias,
            refresh_s=_int_in_range(environ, "CRIME_SERVING_REFRESH_SECONDS", 30, 1, 86400),
            max_batch=_int_in_range(environ, "CRIME_SERVING_MAX_BATCH", 10_000, 1, 1_000_000),
        )


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    source: str
    export_path: str
    socrata_domain: str
    socrata_page_size: int
    incidents_dataset: str
    stations_dataset: str
    has_app_token: bool
    chunk_months: int
    automation: AutomationSettings
    alerts: AlertSettings
    warehouse: WarehouseSettings = WarehouseSettings()
    mlflow_uri_from_env: str | None = None  # MLFLOW_TRACKING_URI; None: the sqlite store in data_dir
    arrest_model_name: str = "chicago_arrest"
    explorer_url: str = "http://localhost:8501"
    explorer_tiles_url: str | None = None
    serving: ServingSettings = ServingSettings()

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file of the default backend."""
        return self.data_dir / "warehouse.duckdb"

    @property
    def ducklake_data_path(self) -> str:
        """Where the DuckLake backend keeps its Parquet files (a folder ends with a slash)."""
        path = self.warehouse.ducklake_data_path or str(self.data_dir / "lake")
        if "://" not in path:
            path = str(Path(path).expanduser().resolve())
        return path if path.endswith("/") else path + "/"

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow_uri_from_env or f"sqlite:///{self.data_dir / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifact_location(self) -> str | None:
        """Artifact root for a new experiment: the data dir's folder with the default store; a server decides."""
        return None if self.mlflow_uri_from_env else (self.data_dir / "mlflow" / "artifacts").as_uri()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        source = environ.get("CRIME_SOURCE", "export").strip().lower()
        if source not in SOURCES:
            raise ValueError(f"CRIME_SOURCE must be one of {SOURCES}, got {source!r}")
        page_size_text = environ.get("SOCRATA_PAGE_SIZE", "50000")
        try:
            page_size = int(page_size_text)
        except ValueError:
            raise ValueError(f"SOCRATA_PAGE_SIZE must be a whole number, got {page_size_text!r}") from None
        if not 1 <= page_size <= 1_000_000:
            raise ValueError(f"SOCRATA_PAGE_SIZE must be between 1 and 1,000,000, got {page_size}")
        return cls(
            data_dir=Path(environ.get("CRIME_DATA_DIR", "./data")).expanduser().resolve(),
            source=source,
            export_path=environ.get("CRIME_EXPORT_PATH", str(SAMPLE_DIR)),
            socrata_domain=environ.get("SOCRATA_DOMAIN", "data.cityofchicago.org"),
            socrata_page_size=page_size,
            incidents_dataset=environ.get("SOCRATA_INCIDENTS_DATASET", "ijzp-q8t2"),
            stations_dataset=environ.get("SOCRATA_STATIONS_DATASET", "z8bn-74gv"),
            has_app_token=bool(environ.get("SOCRATA_APP_TOKEN")),
            chunk_months=_positive_int(environ, "CRIME_CHUNK_MONTHS", 24),
            automation=AutomationSettings.from_env(environ),
            alerts=AlertSettings.from_env(environ),
            warehouse=WarehouseSettings.from_env(environ),
            mlflow_uri_from_env=environ.get("MLFLOW_TRACKING_URI", "").strip() or None,
            arrest_model_name=environ.get("ARREST_MODEL_NAME", "").strip() or "chicago_arrest",
            explorer_url=_url(environ, "CRIME_EXPLORER_URL", "http://localhost:8501"),
            explorer_tiles_url=_url(environ, "CRIME_EXPLORER_TILES_URL", None, ("{z}", "{x}", "{y}")),
            serving=ServingSettings.from_env(environ),
        )
