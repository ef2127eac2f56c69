"""Every setting of the platform, read from the environment in this one place.

Each field below names its variable (``alias``), its default, its bounds and what it means; the resources
(``crime_assets/defs/resources.py``), the code location, ``load_model()``, the explorer and the scoring
service all take their configuration from ``Settings.from_env()``. An empty variable counts as unset.
Secrets (the Socrata app token, the webhook URL, the SMTP and DuckLake passwords, the S3 secret) appear
here only as ``has_*`` flags: the resources read them through ``dg.EnvVar``, so the UI shows only their
names. ``python -m crime_assets.common.settings`` prints the table of every variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

SAMPLE_DIR = Path(__file__).parent.parent / "sample_data"
SOURCES = ("export", "socrata")


class SettingsError(ValueError):
    """A setting the platform cannot use, named by its variable."""


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def _words(value):
    """A comma-separated list."""
    return tuple(w.strip() for w in value.split(",") if w.strip()) if isinstance(value, str) else value


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


Present = Annotated[bool, BeforeValidator(lambda value: bool(value))]  # a secret: only whether it is set
Url = Annotated[str, AfterValidator(_url)]


def setting(default, variable: str, meaning: str, **bounds):
    return Field(default, alias=variable, description=meaning, **bounds)


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True,
                              validate_default=True)


class AutomationSettings(_Group):
    """The schedule, the new-data sensor and the automation sensor (crime_assets/defs/automation)."""

    # 28 at most: every month has that day.
    schedule_day: int = setting(8, "CRIME_SCHEDULE_DAY", "day of the month the monthly schedule runs the "
                                "previous month", ge=1, le=28)
    schedule_hour: int = setting(6, "CRIME_SCHEDULE_HOUR", "hour (Chicago time) of that run", ge=0, le=23)
    sensor_interval_s: int = setting(3600, "CRIME_SENSOR_INTERVAL_SECONDS", "how often the new-data sensor "
                                     "polls the source", ge=1, le=7 * 86400)
    sensor_lookback_months: Annotated[Optional[int], BeforeValidator(lambda v: None if _lower(v) == "all" else v)] = \
        setting(24, "CRIME_SENSOR_LOOKBACK_MONTHS", "complete months the new-data sensor watches for new and "
                "changed records; `all`: every month since 2001", ge=1, le=10_000)
    automation_interval_s: int = setting(30, "CRIME_AUTOMATION_INTERVAL_SECONDS", "how often the automation "
                                         "sensor evaluates the downstream assets' conditions", ge=1, le=86400)


class AlertSettings(_Group):
    """Where alerts go and which ones (crime_assets/defs/monitoring)."""

    has_webhook: Present = setting(False, "CRIME_ALERT_WEBHOOK_URL", "Slack-compatible incoming webhook for "
                                   "alerts (secret)")
    smtp_host: Optional[str] = setting(None, "CRIME_SMTP_HOST", "SMTP server for alert e-mails; unset: no e-mail")
    smtp_port: int = setting(25, "CRIME_SMTP_PORT", "its port", ge=1, le=65535)
    smtp_user: Optional[str] = setting(None, "CRIME_SMTP_USER", "login name, when the server needs one")
    has_smtp_password: Present = setting(False, "CRIME_SMTP_PASSWORD", "its password (secret)")
    # A password never crosses the network in clear unless someone says so explicitly.
    smtp_starttls: bool = setting(False, "CRIME_SMTP_STARTTLS", "upgrade the connection with STARTTLS "
                                            "before logging in; default: true when CRIME_SMTP_USER is set")
    email_from: str = setting("crime-assets@localhost", "CRIME_ALERT_EMAIL_FROM", "sender of alert e-mails")
    email_to: Annotated[tuple[str, ...], BeforeValidator(_words)] = setting(
        (), "CRIME_ALERT_EMAIL_TO", "comma-separated recipients; required with CRIME_SMTP_HOST")
    alert_on_warn: Annotated[tuple[str, ...], BeforeValidator(
        lambda v: ("*",) if _lower(v) == "all" else () if _lower(v) == "none" else _words(v))] = setting(
        ("freshness_check",), "CRIME_ALERT_ON_WARN", "WARN check failures that also alert: `all`, `none`, or "
        "comma-separated check names (ERROR always alerts)")
    ui_base_url: Url = setting("http://localhost:3000", "CRIME_UI_BASE_URL", "the Dagster UI as people reach "
                               "it; alerts link into it")
    interval_s: int = setting(30, "CRIME_ALERT_INTERVAL_SECONDS", "how often the alert sensor looks for failed "
                              "checks and runs and retries deliveries", ge=1, le=86400)
    # 27 at most: the deadline is day N+1 of the next month, and every month has a 28th.
    freshness_days: int = setting(14, "CRIME_FRESHNESS_DAYS", "days after a month ends by which raw_incidents "
                                  "and incidents_enriched must hold it", ge=1, le=27)

    @model_validator(mode="before")
    @classmethod
    def _starttls_with_a_login(cls, env: dict) -> dict:
        return {"CRIME_SMTP_STARTTLS": "CRIME_SMTP_USER" in env} | env

    @model_validator(mode="after")
    def _coherent(self) -> AlertSettings:
        if self.smtp_host and not self.email_to:
            raise ValueError("CRIME_ALERT_EMAIL_TO must name at least one recipient when CRIME_SMTP_HOST is set")
        if self.has_smtp_password and not self.smtp_user:
            raise ValueError("CRIME_SMTP_PASSWORD is set but CRIME_SMTP_USER is not")
        return self


class WarehouseSettings(_Group):
    """Which warehouse the assets write and analysts read (crime_assets/warehouse.py)."""

    backend: Annotated[Literal["duckdb", "ducklake"], BeforeValidator(_lower)] = setting(
        "duckdb", "CRIME_WAREHOUSE", "`duckdb`: the file <CRIME_DATA_DIR>/warehouse.duckdb, one process at a "
        "time; `ducklake`: DuckLake (catalog in PostgreSQL, Parquet files), many readers and writers")
    ducklake_catalog: Annotated[Optional[str], BeforeValidator(lambda v: " ".join(v.split()) or None if isinstance(v, str) else v)] = setting(
        None, "CRIME_DUCKLAKE_CATALOG", "the catalog's PostgreSQL as a libpq string without the password, e.g. "
        "`host=pg port=5432 dbname=crime_lake user=crime`; required with ducklake")
    has_ducklake_password: Present = setting(False, "CRIME_DUCKLAKE_PASSWORD", "that login's password (secret)")
    ducklake_data_path: Optional[str] = setting(None, "CRIME_DUCKLAKE_DATA_PATH", "where the Parquet files go: "
                                                "a folder every run can reach, or `s3://bucket/prefix/`; "
                                                "default <CRIME_DATA_DIR>/lake/")
    s3_endpoint: Optional[str] = setting(None, "CRIME_S3_ENDPOINT", "an S3-compatible store as `host:port` or "
                                         "`http(s)://host:port`; unset: AWS")
    s3_region: str = setting("us-east-1", "CRIME_S3_REGION", "the bucket's region")
    s3_url_style: Annotated[Optional[Literal["path", "vhost"]], BeforeValidator(_lower)] = setting(
        None, "CRIME_S3_URL_STYLE", "`path` or `vhost` addressing; default path with CRIME_S3_ENDPOINT")
    s3_access_key_id: Optional[str] = setting(None, "CRIME_S3_ACCESS_KEY_ID", "S3 key id")
    has_s3_secret: Present = setting(False, "CRIME_S3_SECRET_ACCESS_KEY", "its secret (secret)")

    @model_validator(mode="after")
    def _coherent(self) -> WarehouseSettings:
        if self.backend == "ducklake" and not self.ducklake_catalog:
            raise ValueError("CRIME_WAREHOUSE=ducklake needs CRIME_DUCKLAKE_CATALOG, the catalog's PostgreSQL as a "
                             "libpq string, e.g. 'host=pg port=5432 dbname=crime_lake user=crime'")
        if self.ducklake_catalog and "password" in self.ducklake_catalog.lower():
            raise ValueError("CRIME_DUCKLAKE_CATALOG must not hold the password: put it in CRIME_DUCKLAKE_PASSWORD")
        return self


class ServingSettings(_Group):
    """The scoring service (crime_assets/serving)."""

    model_alias: str = setting("champion", "CRIME_SERVING_MODEL_ALIAS", "registry alias of ARREST_MODEL_NAME "
                               "the scoring service serves", pattern=r"^[A-Za-z0-9_-]+$")
    refresh_s: int = setting(30, "CRIME_SERVING_REFRESH_SECONDS", "how often the scoring service checks "
                             "whether that alias has moved", ge=1, le=86400)
    max_batch: int = setting(10_000, "CRIME_SERVING_MAX_BATCH", "most records one POST /predict/batch may "
                             "hold (more: 413)", ge=1, le=1_000_000)


def _tiles(value: str) -> str:
    if any(p not in value for p in ("{z}", "{x}", "{y}")):
        raise ValueError("must contain {z}, {x} and {y}")
    return value


class Settings(_Group):
    data_dir: Annotated[Path, AfterValidator(lambda p: p.expanduser().resolve())] = setting(
        Path("data"), "CRIME_DATA_DIR", "everything the platform writes: warehouse.duckdb, reports, the MLflow "
        "store, logs")
    source: Annotated[Literal[SOURCES], BeforeValidator(_lower)] = setting(
        "export", "CRIME_SOURCE", "`export` (bulk CSV files; the shipped sample by default) or `socrata` (live API)")
    export_path: str = setting(str(SAMPLE_DIR), "CRIME_EXPORT_PATH", "a bulk-export file, a folder of them, or a "
                               "glob; default: the shipped sample")
    socrata_domain: str = setting("data.cityofchicago.org", "SOCRATA_DOMAIN", "portal host, or `http://host:port` "
                                  "for a mirror")
    has_app_token: Present = setting(False, "SOCRATA_APP_TOKEN", "app token (secret); without it, one warning")
    socrata_page_size: int = setting(50_000, "SOCRATA_PAGE_SIZE", "rows per API page", ge=1, le=1_000_000)
    incidents_dataset: str = setting("ijzp-q8t2", "SOCRATA_INCIDENTS_DATASET", "crimes dataset id")
    stations_dataset: str = setting("z8bn-74gv", "SOCRATA_STATIONS_DATASET", "police stations dataset id")
    chunk_months: int = setting(24, "CRIME_CHUNK_MONTHS", "months a run processes at a time (bounds memory on "
                                "long ranges)", ge=1)
    mlflow_uri_from_env: Optional[str] = setting(
        None, "MLFLOW_TRACKING_URI", "MLflow runs and model registry (`http://host:5000` for a server); default: "
        "sqlite:///<CRIME_DATA_DIR>/mlflow/mlflow.db, artifacts in <CRIME_DATA_DIR>/mlflow/artifacts")
    arrest_model_name: str = setting("chicago_arrest", "ARREST_MODEL_NAME", "registered model name of the "
                                     "arrest model (`load_model()` reads it)")
    explorer_url: Url = setting("http://localhost:8501", "CRIME_EXPLORER_URL", "the hotspot explorer as people "
                                "reach it; the `hotspots` asset links to it")
    explorer_tiles_url: Annotated[Optional[str], AfterValidator(lambda v: _tiles(_url(v)) if v else v)] = setting(
        None, "CRIME_EXPLORER_TILES_URL", "a raster tile URL with {z}, {x}, {y} drawn under the explorer's "
        "hexagons; unset: no tiles (works offline)")
    automation: AutomationSettings = AutomationSettings()
    alerts: AlertSettings = AlertSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
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
        """The settings of ``environ``; a value it cannot use raises SettingsError naming the variable."""
        env = {name: value.strip() for name, value in environ.items() if value.strip()}
        try:
            groups = {name: field.annotation.model_validate(env) for name, field in cls.model_fields.items()
                      if isinstance(field.annotation, type) and issubclass(field.annotation, _Group)}
            return cls.model_validate(env | groups)
        except ValidationError as error:
            raise SettingsError("; ".join(_problem(e) for e in error.errors(include_url=False))) from None


def _problem(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a rule across variables: its message names them
        return message
    # Secrets are has_* flags, which never fail: the value shown is never a secret.
    return f"{error['loc'][0]}: {message} (got {error['input']!r})"


def table() -> str:
    """Every variable as a Markdown table: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for model in (Settings, AutomationSettings, AlertSettings, WarehouseSettings, ServingSettings):
        for name, field in model.model_fields.items():
            if field.alias:
                default = field.default
                default = "(secret)" if name.startswith("has_") else "(none)" if default in (None, ()) else \
                    "the shipped sample" if default == str(SAMPLE_DIR) else \
                    f"`{', '.join(default) if isinstance(default, tuple) else str(default).lower() if isinstance(default, bool) else default}`"
                rows.append(f"| `{field.alias}` | {default} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
