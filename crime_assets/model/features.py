"""Arrest features: one model-ready row per incident, from what is known when the incident is reported.

Three kinds of signal, all computed by ``build_features`` -- the one function both the
``arrest_features`` asset and the packaged model (``crime_assets.model.arrest_model``) call, so the
rows a model is trained on and the rows it scores are built the same way:

- **The record itself**: the categorical fields, the domestic flag, coordinates, the distance to the
  nearest district station, hour and weekday, and how precisely the time was recorded (on the hour,
  on five minutes, at midnight, 00:01, noon, with seconds). An estimated time ("some time last night")
  marks an incident discovered after the fact, which rarely ends in an arrest.
- **How long after the occurrence it was reported**: record ids and case (RD) numbers are handed out
  as incidents are reported, so an id far above the ids of incidents that *occurred* at the same time
  means a late report. The reference is the 25th percentile of the ids of the incidents that occurred
  in the same 3-hour slot (its "peers"), taken from the batch being built (a month for the asset); a
  model also carries the reference of its training months for batches too small to have peers. Case
  numbers restart every year under a new two-letter prefix (HY = 2015, HZ = 2016, JA = 2017: one step
  a year, I and O skipped), so a prefix later than the occurrence year is a report from a later year.
  No arrest enters these features: only ids, case numbers and times.
- **History of earlier months only**: the arrest rate, in the trailing ``HISTORY_MONTHS`` months
  before the incident's month, of its primary type in its beat, H3 cells (r8, r10) and block, of its
  IUCR code on its block, of its kind of place in its district, and of its block overall. Each rate is
  smoothed toward the type's own rate, ``(arrests + m * prior) / (incidents + m)``, so a cell seen
  twice does not claim 0% or 100%; the counts themselves are features too. The first months of the
  data have little or no history: rates are then missing (NaN) and counts 0, which the model handles.

Nothing is derived from the same or later months' arrests, and ``updated_on`` is never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import duckdb
import numpy as np
import pandas as pd

from crime_assets.enrichment.enrich import ENRICHED_TABLE
from crime_assets.model.feature_history import (
    BatchCodes, HistoryRun, HistoryTables, fit_history, history_months, numbers,
)
from crime_assets.common.months import MonthWindow
from crime_assets.model.report_clock import (
    REGULAR_ID_MIN, ReportClock, case_numbers, occurred_part, occurred_seconds,
)
from crime_assets.common.schema import Column, create_table_sql
from crime_assets.common.sql import sql, transaction

FEATURES_TABLE = "arrest_features"
# Bump when a feature's definition changes: the asset's code version, so Dagster marks the table stale
# (a model must be trained on rows built by the same definitions it scores with).
FEATURES_VERSION = "1"

RUN_MONTHS = 24              # months written per run: loaded with their history in one query, inserted at once

CATEGORICAL_FEATURES = ("primary_type", "iucr", "location_description", "fbi_code")

_HISTORY_DESCRIPTIONS = {
    "iucr": "its IUCR code",
    "iucr_location": "its IUCR code at its kind of place",
    "type_beat": "its primary type in its beat",
    "type_h3_r8": "its primary type in its H3 r8 cell (~0.7 km2)",
    "type_h3_r10": "its primary type in its H3 r10 cell (~15,000 m2)",
    "type_block": "its primary type on its block",
    "iucr_block": "its IUCR code on its block",
    "location_type_district": "its kind of place and primary type in its district",
    "block": "any incident on its block",
}

FEATURE_COLUMNS: tuple[Column, ...] = (
    Column("primary_type", "VARCHAR", "Primary description of the IUCR code (categorical)"),
    Column("iucr", "VARCHAR", "IUCR code (categorical)"),
    Column("location_description", "VARCHAR", "Kind of place (categorical)"),
    Column("fbi_code", "VARCHAR", "FBI NIBRS classification (categorical)"),
    Column("domestic", "DOUBLE", "1 when domestic-related, else 0"),
    Column("beat", "DOUBLE", "Police beat number (its digits encode district and sector, so it splits well as a number)"),
    Column("district", "DOUBLE", "Police district"),
    Column("ward", "DOUBLE", "City council ward"),
    Column("community_area", "DOUBLE", "Community area"),
    Column("latitude", "DOUBLE", "Latitude (NULL without usable coordinates)"),
    Column("longitude", "DOUBLE", "Longitude (NULL without usable coordinates)"),
    Column("station_distance_m", "DOUBLE", "Great-circle distance to the nearest district station, metres"),
    Column("hour", "DOUBLE", "Hour of occurrence (0-23)"),
    Column("day_of_week", "DOUBLE", "ISO day of week of occurrence (1 = Monday)"),
    Column("minute", "DOUBLE", "Minute of the recorded occurrence time"),
    Column("has_seconds", "DOUBLE", "1 when the time carries seconds (recorded by a system, not estimated)"),
    Column("on_the_hour", "DOUBLE", "1 when the time is on the hour (minute 0): an estimate, often"),
    Column("on_five_minutes", "DOUBLE", "1 when the minute is a multiple of 5"),
    Column("at_midnight", "DOUBLE", "1 at exactly 00:00 (time unknown)"),
    Column("at_one_past_midnight", "DOUBLE", "1 at exactly 00:01 (the date is all that is known)"),
    Column("at_noon", "DOUBLE", "1 at exactly 12:00"),
    Column("first_day_midnight", "DOUBLE", "1 at 00:00 on the first of a month (the month is all that is known)"),
    Column("small_id", "DOUBLE", "1 when the record id comes from the small range homicides use"),
    Column("id_offset", "DOUBLE", "Record id minus the reference id of incidents that occurred in the same 3-hour "
                                  "slot (~1,100 ids a day: large = reported late)"),
    Column("case_offset", "DOUBLE", "Case number (year * 1e6 + sequence) minus the reference of the same slot "
                                    "(~1,300 a day; ~1e6 = reported in a later year)"),
    Column("case_year_offset", "DOUBLE", "Year of the case-number prefix minus the year of occurrence"),
    Column("case_irregular", "DOUBLE", "1 when the case number is not two letters and six digits"),
    Column("same_block_time", "DOUBLE", "Other incidents of the batch on the same block at the same minute"),
    Column("history_incidents", "DOUBLE", "Incidents in the history months (0: no history yet)"),
    Column("type_prior", "DOUBLE", "Arrest rate of the primary type in the history months (smoothed toward all types)"),
    *(col for name, what in _HISTORY_DESCRIPTIONS.items() for col in (
        Column(f"rate_{name}", "DOUBLE", f"Smoothed arrest rate of {what}, history months"),
        Column(f"n_{name}", "DOUBLE", f"Incidents of {what}, history months"),
    )),
)
FEATURE_NAMES = tuple(c.name for c in FEATURE_COLUMNS)

ARREST_FEATURES = (
    Column("id", "BIGINT", "Incident id"),
    Column("month", "VARCHAR", "Partition key (YYYY-MM) of the occurrence"),
    Column("occurred_at", "TIMESTAMP", "When the incident occurred"),
    Column("arrest", "BOOLEAN", "The label: whether an arrest was made (never a feature)"),
    *FEATURE_COLUMNS,
    Column("history_first_month", "VARCHAR", "First month of the history behind the row (NULL: none)"),
    Column("history_last_month", "VARCHAR", "Last month of that history: always before `month`"),
    Column("features_version", "VARCHAR", "FEATURES_VERSION of the code that built the row"),
)


# ------------------------------------------------------------------------------------------ features


def feature_columns(
    incidents: pd.DataFrame, history: HistoryTables, stored_clock: ReportClock | None = None,
    codes: BatchCodes | None = None,
) -> dict[str, np.ndarray]:
    """The FEATURE_NAMES columns (arrays) for a batch of incidents (canonical fields + geography).

    ``history`` holds earlier months only. The id and case-number references come from the batch's own
    3-hour slots where they hold ``MIN_PEERS`` incidents, else from ``stored_clock`` (a model's
    training months), else are extrapolated. Categorical columns stay text here: the model maps them
    to its training categories.
    """
    seconds = occurred_seconds(incidents["occurred_at"])
    t_days = seconds / 86400.0
    minute = (seconds // 60) % 60
    hour = (seconds // 3600) % 24
    days = seconds // 86400
    first_of_month = occurred_part(incidents["occurred_at"], "day") == 1
    at_midnight = (hour == 0) & (minute == 0)

    ids = incidents["id"].to_numpy(dtype=np.float64)
    cases = case_numbers(incidents["case_number"], incidents["occurred_at"])
    clock = ReportClock.from_arrays(t_days, ids, cases).overlay(stored_clock)
    regular_id = ids >= REGULAR_ID_MIN

    codes = codes or BatchCodes(incidents)
    block_codes, _ = codes.factorized("block")
    same_time = block_codes.astype(np.int64) * 10**11 + seconds // 60 % 10**11
    _, inverse, counts = np.unique(same_time, return_inverse=True, return_counts=True)
    same_block_time = np.where(block_codes >= 0, counts[inverse.reshape(-1)] - 1, 0)

    def number(column: str) -> np.ndarray:
        return numbers(incidents[column])

    columns: dict[str, object] = {
        # Categorical features as given: the table stores the text, a model maps them to its codes.
        **{name: incidents[name] for name in CATEGORICAL_FEATURES},
        "domestic": incidents["domestic"].astype("float64").to_numpy(),
        "beat": number("beat"),
        "district": number("district"),
        "ward": number("ward"),
        "community_area": number("community_area"),
        "latitude": number("latitude"),
        "longitude": number("longitude"),
        "station_distance_m": number("station_distance_m"),
        "hour": hour.astype(np.float64),
        "day_of_week": ((days + 3) % 7 + 1).astype(np.float64),
        "minute": minute.astype(np.float64),
        "has_seconds": (seconds % 60 != 0).astype(np.float64),
        "on_the_hour": (minute == 0).astype(np.float64),
        "on_five_minutes": (minute % 5 == 0).astype(np.float64),
        "at_midnight": at_midnight.astype(np.float64),
        "at_one_past_midnight": ((hour == 0) & (minute == 1)).astype(np.float64),
        "at_noon": ((hour == 12) & (minute == 0)).astype(np.float64),
        "first_day_midnight": (first_of_month & at_midnight).astype(np.float64),
        "small_id": (~regular_id).astype(np.float64),
        "id_offset": np.where(regular_id, ids - clock.ids.reference(t_days), np.nan),
        "case_offset": cases.counter - clock.cases.reference(t_days),
        "case_year_offset": cases.year_offset,
        "case_irregular": (~cases.regular).astype(np.float64),
        "same_block_time": same_block_time.astype(np.float64),
    }
    columns.update(history.lookup(incidents, codes))
    return columns


def build_features(
    incidents: pd.DataFrame, history: HistoryTables, stored_clock: ReportClock | None = None
) -> pd.DataFrame:
    """``feature_columns`` as a DataFrame in FEATURE_NAMES order (the arrest_features table's layout)."""
    columns = feature_columns(incidents, history, stored_clock)
    for name in CATEGORICAL_FEATURES:
        columns[name] = columns[name].astype(object).to_numpy()
    return pd.DataFrame({name: columns[name] for name in FEATURE_NAMES}, index=incidents.index)


# ------------------------------------------------------------------------------- the asset's table


@dataclass(frozen=True)
class FeatureStats:
    rows_by_month: dict[str, int]
    history_by_month: dict[str, str]
    arrest_rate_by_month: dict[str, float]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.rows_by_month.values())


def incident_rows(con: duckdb.DuckDBPyConnection, first: str, last: str) -> pd.DataFrame:
    """Canonical fields + geography of months ``first``..``last`` of incidents_enriched, in id order."""
    return con.execute(f"SELECT * FROM ({sql('arrest_features')}) ORDER BY month, id", {"first": first, "last": last}).df()


# Text columns ``coded_rows`` loads as categoricals (case numbers, unique per incident, stay text).
CODED_COLUMNS = ("month", "block", "iucr", "primary_type", "location_description", "fbi_code")


def coded_rows(con: duckdb.DuckDBPyConnection, first: str, last: str) -> pd.DataFrame:
    """``incident_rows`` with the CODED_COLUMNS as categoricals: each is cast to an ENUM of its values in
    these months, so DuckDB sends integer codes rather than a Python string per value."""
    bounds = {"first": first, "last": last}
    rows = f"({sql('arrest_features')})"
    for column in CODED_COLUMNS:
        con.execute(f"CREATE OR REPLACE TEMP TYPE feature_{column} AS ENUM "
                    f"(SELECT DISTINCT {column} FROM {rows} WHERE {column} IS NOT NULL ORDER BY 1)", bounds)
    try:
        casts = ", ".join(f"{column}::feature_{column} AS {column}" for column in CODED_COLUMNS)
        return con.execute(f"SELECT * REPLACE ({casts}) FROM {rows} ORDER BY month, id", bounds).df()
    finally:
        for column in CODED_COLUMNS:
            con.execute(f"DROP TYPE IF EXISTS feature_{column}")


def report_clock(con: duckdb.DuckDBPyConnection, first: str, last: str) -> ReportClock:
    """The id / case-number references of months ``first``..``last``, reading only the columns they need."""
    return ReportClock.fit(con.execute(
        f"SELECT id, case_number, occurred_at FROM {ENRICHED_TABLE} WHERE month BETWEEN $first AND $last",
        {"first": first, "last": last}).df())


def features_for_month(
    con: duckdb.DuckDBPyConnection, month: str, history: HistoryTables | None = None
) -> pd.DataFrame:
    """The arrest_features rows of one month: its incidents with the history of the months before
    (``history``, else ``fit_history`` over the HISTORY_MONTHS before ``month``)."""
    if history is None:
        earlier = history_months(month)
        history = fit_history(con, earlier[0], earlier[-1])
    return _feature_rows(incident_rows(con, month, month), history)


def _feature_rows(rows: pd.DataFrame, history: HistoryTables) -> pd.DataFrame:
    """The arrest_features rows of a month's incident rows, built by one DataFrame constructor."""
    features = feature_columns(rows, history)
    first, last = (history.months[0], history.months[-1]) if history.months else (None, None)
    return pd.DataFrame({
        **{name: rows[name] for name in ("id", "month", "occurred_at", "arrest")},
        **{name: features[name] for name in FEATURE_NAMES},
        "history_first_month": first, "history_last_month": last, "features_version": FEATURES_VERSION,
    }, index=rows.index)


def write_arrest_features(con: duckdb.DuckDBPyConnection, window: MonthWindow) -> FeatureStats:
    """Replace the window's months of arrest_features in one transaction, RUN_MONTHS months at a time: the
    incidents of a run's months and of the HISTORY_MONTHS before are loaded in one query, their history
    counted once (HistoryRun), and the run's rows inserted in one statement."""
    started = perf_counter()
    con.execute(create_table_sql(FEATURES_TABLE, ARREST_FEATURES))
    bounds = window.bounds
    rows, history, rates = {}, {}, {}
    with transaction(con):
        con.execute(f"DELETE FROM {FEATURES_TABLE} WHERE month BETWEEN $first AND $last", bounds)
        for part in window.chunks(RUN_MONTHS):
            incidents = coded_rows(con, history_months(part.keys[0])[0], part.keys[-1])
            run = HistoryRun(incidents)
            frames = []
            for month in part.keys:
                earlier = history_months(month)
                span = run.span(earlier[0], earlier[-1])
                frame = _feature_rows(incidents[incidents["month"] == month], span)
                frames.append(frame)
                rows[month] = len(frame)
                history[month] = f"{span.months[0]}...{span.months[-1]}" if len(frame) and span.months else "none"
                rates[month] = float(frame["arrest"].mean()) if len(frame) else float("nan")
            _insert(con, frames)
    return FeatureStats(rows, history, rates, perf_counter() - started)


def _insert(con: duckdb.DuckDBPyConnection, frames: list[pd.DataFrame]) -> None:
    """Insert the frames' rows in one statement, a UNION ALL of them rather than a concatenated copy: one
    large INSERT writes whole row groups, which costs much less than an INSERT (and a commit) per month."""
    columns = ", ".join(c.name for c in ARREST_FEATURES)
    names = [f"run_features_{i}" for i in range(len(frames))]
    for name, frame in zip(names, frames):
        con.register(name, frame)
    try:
        con.execute(f"INSERT INTO {FEATURES_TABLE} ({columns}) "
                    + " UNION ALL ".join(f"SELECT {columns} FROM {name}" for name in names))
    finally:
        for name in names:
            con.unregister(name)


def read_features(con: duckdb.DuckDBPyConnection, months: list[str]) -> pd.DataFrame:
    """arrest_features rows of the given months, in month and id order; refuses rows built by other
    feature definitions than this code's (re-materialise those months)."""
    rows = con.execute(
        f"SELECT * FROM {FEATURES_TABLE} WHERE month IN (SELECT unnest($months)) ORDER BY month, id",
        {"months": months}).df()
    check_version(rows)
    return rows


def check_version(rows: pd.DataFrame) -> None:
    """Refuses arrest_features rows built by other feature definitions than this code's."""
    stale = sorted(rows.loc[rows["features_version"] != FEATURES_VERSION, "month"].unique())
    if stale:
        raise ValueError(f"{FEATURES_TABLE} months {stale} were built by other feature definitions than this "
                         f"code's (version {FEATURES_VERSION}): re-materialise them")
