"""Arrest features: one model-ready row per incident, from what is known when the incident is reported.

Three kinds of signal, all computed by ``build_features`` -- the one function both the
``arrest_features`` asset and the packaged model (``crime_assets.core.arrest_model``) call, so the
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

from collections.abc import Iterable
from dataclasses import dataclass, field
from time import perf_counter

import duckdb
import numpy as np
import pandas as pd

from crime_assets.core.months import MonthWindow, months_before
from crime_assets.core.schema import Column, create_table_sql
from crime_assets.core.sql import sql, transaction

FEATURES_TABLE = "arrest_features"
# Bump when a feature's definition changes: the asset's code version, so Dagster marks the table stale
# (a model must be trained on rows built by the same definitions it scores with).
FEATURES_VERSION = "1"
ENRICHED_TABLE = "incidents_enriched"

HISTORY_MONTHS = 12          # trailing months of history behind each month's features
RUN_MONTHS = 24              # months written per run: loaded with their history in one query, inserted at once
SMOOTHING = 20.0             # pseudo-incidents at the type's prior rate added to every history rate
REGULAR_ID_MIN = 1_000_000   # homicides carry ids from a separate, small range (below 30,000 in 2015-2016)
SLOTS_PER_DAY = 8            # 3-hour slots of occurrence time for the id / case-number references
MIN_PEERS = 15               # a slot needs this many incidents in a batch to give its own reference
REFERENCE_QUANTILE = 0.25    # most incidents are reported at once: the lower quartile is "on time"
CASE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # RD-number prefixes skip I and O
CASE_ANCHOR = ("HY", 2015)   # a prefix seen in the data: every later year is one step further

CATEGORICAL_FEATURES = ("primary_type", "iucr", "location_description", "fbi_code")

# name -> key columns of a history lookup table; "type" holds the per-type priors.
HISTORY_KEYS: dict[str, tuple[str, ...]] = {
    "type": ("primary_type",),
    "iucr": ("iucr",),
    "iucr_location": ("iucr", "location_description"),
    "type_beat": ("primary_type", "beat"),
    "type_h3_r8": ("primary_type", "h3_r8"),
    "type_h3_r10": ("primary_type", "h3_r10"),
    "type_block": ("primary_type", "block"),
    "iucr_block": ("iucr", "block"),
    "location_type_district": ("location_description", "primary_type", "district"),
    "block": ("block",),
}
_INTEGER_KEYS = {"beat", "district", "h3_r8", "h3_r10"}
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

# The canonical incident fields the features read (crime_assets.core.schema.RAW_INCIDENTS names) and
# the geography computed from the coordinates (incidents_enriched, or the model itself).
INCIDENT_FIELDS = (
    "id", "case_number", "occurred_at", "block", "iucr", "primary_type", "location_description", "fbi_code",
    "domestic", "beat", "district", "ward", "community_area", "latitude", "longitude",
)
GEOGRAPHY_FIELDS = ("nearest_station_district", "station_distance_m", "h3_r8", "h3_r10")

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
NUMERIC_FEATURES = tuple(n for n in FEATURE_NAMES if n not in CATEGORICAL_FEATURES)

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


# --------------------------------------------------------------------------------------------- history


def _key_values(frame: pd.DataFrame, column: str) -> np.ndarray | pd.Series:
    """A key column in one comparable form: int64 (-1 = missing, and H3 cell 0), or text (object or categorical)."""
    values = frame[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values  # factorised through its codes: no string hashing
    if column not in _INTEGER_KEYS:
        return values.astype(object).to_numpy()
    raw = values.to_numpy()
    if raw.dtype.kind in "iu":
        out = raw.astype(np.int64)  # H3 ids (< 2**63) keep every bit
    elif column.startswith("h3_"):
        # Never through float: H3 ids exceed its 53-bit precision.
        out = np.full(len(raw), -1, dtype=np.int64)
        mask = ~pd.isna(raw)
        out[mask] = np.asarray([int(v) for v in raw[mask]], dtype=np.uint64).astype(np.int64)
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        out = np.where(np.isnan(numbers), -1, numbers).astype(np.int64)
    return np.where(out == 0, -1, out) if column.startswith("h3_") else out


@dataclass
class _Table:
    keys: pd.Index         # composite keys (unique): a hash index, so lookups are O(1)
    incidents: np.ndarray
    arrests: np.ndarray


class BatchCodes:
    """Each key column of a batch factorised once, then mapped into any vocabulary (history, categories)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._factorized: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._mapped: dict[tuple[str, int], np.ndarray] = {}

    def factorized(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        if column not in self._factorized:
            self._factorized[column] = pd.factorize(_key_values(self.frame, column), use_na_sentinel=True)
        return self._factorized[column]

    def codes_in(self, column: str, vocab: pd.Index) -> np.ndarray:
        """Position of each row's value in ``vocab``; -1 when missing or unknown."""
        key = (column, id(vocab))
        if key not in self._mapped:
            codes, uniques = self.factorized(column)
            mapped = np.append(vocab.get_indexer(uniques), -1)  # code -1 (missing) picks the appended -1
            self._mapped[key] = mapped[codes]
        return self._mapped[key]


def _vocabularies(tables: dict[str, pd.DataFrame]) -> dict[str, pd.Index]:
    """The values of each key column found in the history tables (missing ones and H3 cell 0 left out)."""
    vocab = {}
    for column in {c for keys in HISTORY_KEYS.values() for c in keys}:
        parts = [_key_values(tables[name], column) for name, keys in HISTORY_KEYS.items() if column in keys]
        vocab[column] = _present(column, pd.unique(np.concatenate(parts)))
    return vocab


def _composite(vocab: dict[str, pd.Index], keys: tuple[str, ...], codes: BatchCodes) -> np.ndarray:
    """One int64 per row for its key columns' positions in ``vocab``; -1 when a part is missing or unknown."""
    composite = None
    missing = None
    for column in keys:
        code = codes.codes_in(column, vocab[column]).astype(np.int64)
        missing = code < 0 if missing is None else missing | (code < 0)
        composite = code if composite is None else composite * (len(vocab[column]) + 1) + code
    return np.where(missing, -1, composite)


@dataclass
class HistoryTables:
    """Incidents and arrests per key over a run of earlier months: what the history features look up."""

    months: tuple[str, ...]
    tables: dict[str, pd.DataFrame]  # name -> key columns + incidents + arrests
    _vocab: dict[str, pd.Index] = field(default_factory=dict, repr=False)
    _compiled: dict[str, _Table] = field(default_factory=dict, repr=False)

    @classmethod
    def empty(cls) -> HistoryTables:
        return cls((), {name: pd.DataFrame({**{k: pd.Series(dtype=object) for k in keys},
                                            "incidents": pd.Series(dtype="int64"), "arrests": pd.Series(dtype="int64")})
                        for name, keys in HISTORY_KEYS.items()})

    @property
    def incidents(self) -> int:
        table = self.tables.get("type")
        return int(table["incidents"].sum()) if table is not None and len(table) else 0

    @property
    def arrest_rate(self) -> float:
        table = self.tables["type"]
        return float(table["arrests"].sum() / table["incidents"].sum()) if self.incidents else float("nan")

    def compile(self) -> None:
        """Vocabulary per key column and a hash index per table, built once (when a model loads)."""
        if self._compiled:
            return
        self._vocab.update(_vocabularies(self.tables))
        for name, keys in HISTORY_KEYS.items():
            table = self.tables[name]
            composite = _composite(self._vocab, keys, BatchCodes(table))
            keep = composite >= 0  # H3 cell 0 = no coordinates: not a place
            self._compiled[name] = _Table(
                pd.Index(composite[keep]),
                table["incidents"].to_numpy(dtype=np.float64)[keep],
                table["arrests"].to_numpy(dtype=np.float64)[keep],
            )

    def lookup(self, frame: pd.DataFrame, codes: BatchCodes | None = None) -> dict[str, np.ndarray]:
        """History features of each row: type prior, and per key a smoothed rate and a count."""
        self.compile()
        codes = codes or BatchCodes(frame)
        found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, keys in HISTORY_KEYS.items():
            table = self._compiled[name]
            composite = _composite(self._vocab, keys, codes)
            at = table.keys.get_indexer(composite) if len(table.keys) else np.full(len(frame), -1)
            hit = (at >= 0) & (composite >= 0)
            at = np.where(hit, at, 0)
            incidents = np.where(hit, table.incidents[at], 0.0) if len(table.keys) else np.zeros(len(frame))
            arrests = np.where(hit, table.arrests[at], 0.0) if len(table.keys) else np.zeros(len(frame))
            found[name] = incidents, arrests
        type_n, type_a = found.pop("type")
        # NaN when there is no history at all: the model treats it as missing.
        prior = (type_a + SMOOTHING * self.arrest_rate) / (type_n + SMOOTHING)
        out = {"history_incidents": np.full(len(frame), float(self.incidents)), "type_prior": prior}
        for name, (incidents, arrests) in found.items():
            out[f"rate_{name}"] = (arrests + SMOOTHING * prior) / (incidents + SMOOTHING)
            out[f"n_{name}"] = incidents
        return out

    # Persistence: plain parquet tables, so an artifact does not depend on pickling this class.
    def to_frames(self) -> dict[str, pd.DataFrame]:
        return {name: table.reset_index(drop=True) for name, table in self.tables.items()}

    @classmethod
    def from_frames(cls, months: Iterable[str], frames: dict[str, pd.DataFrame]) -> HistoryTables:
        missing = set(HISTORY_KEYS) - set(frames)
        if missing:
            raise ValueError(f"history tables missing: {sorted(missing)}")
        return cls(tuple(months), {name: frames[name] for name in HISTORY_KEYS})


def history_months(month: str, months: int = HISTORY_MONTHS) -> list[str]:
    """The ``months`` months before ``month`` (oldest first)."""
    return months_before(month, months)


def fit_history(con: duckdb.DuckDBPyConnection, first: str, last: str) -> HistoryTables:
    """Lookup tables over months ``first``..``last`` of incidents_enriched (only months present count)."""
    bounds = {"first": first, "last": last}
    tables = {name: con.execute(_history_query(keys), bounds).df() for name, keys in HISTORY_KEYS.items()}
    return HistoryTables(tuple(_present_months(con, first, last)), tables)


def _present_months(con: duckdb.DuckDBPyConnection, first: str, last: str) -> list[str]:
    return [row[0] for row in con.execute(
        f"SELECT DISTINCT month FROM {ENRICHED_TABLE} WHERE month BETWEEN $first AND $last ORDER BY 1",
        {"first": first, "last": last}).fetchall()]


def _history_query(keys: tuple[str, ...]) -> str:
    return (sql("feature_history")
            .replace("FEATURE_ROWS", sql("features"))
            .replace("KEYS_NOT_NULL", " AND ".join(f"{k} IS NOT NULL" for k in keys))
            .replace("KEYS", ", ".join(keys)))


@dataclass
class _MonthlyTable:
    keys: pd.Index                   # composite keys (unique) of every key seen in the run's months
    key_rows: dict[str, object]      # the key columns of each of them (arrays), in the same order
    starts: np.ndarray               # the incidents of the run's i-th month are rows starts[i]:starts[i + 1]
    at: np.ndarray                   # per incident (in month order): position of its key in ``keys``
    arrested: np.ndarray             # per incident: 1.0 when it ended in an arrest


class HistoryRun:
    """Each incident of a run of months with its key in every history table, numbered once. The history of
    any span of those months (each month's trailing twelve, when a window of months is built) is then a
    count over a slice of rows: no new query, no new index. ``span(first, last)``, within the run's months,
    gives the lookups of ``fit_history(con, first, last)``."""

    def __init__(self, rows: pd.DataFrame) -> None:
        """``rows``: the incident rows of the run's months, in any order (``coded_rows``, or ``incident_rows``)."""
        month, months = pd.factorize(rows["month"], sort=True)
        self.months = [str(m) for m in months]  # the months present, ascending
        known = np.flatnonzero(rows["arrest"].notna().to_numpy())  # an unknown outcome does not count
        known = known[np.argsort(month[known], kind="stable")]
        columns = sorted({c for keys in HISTORY_KEYS.values() for c in keys})
        frame = rows[columns].take(known)
        codes = BatchCodes(frame)
        self._vocab = {column: _present(column, codes.factorized(column)[1]) for column in columns}
        self._month = month[known]
        self._arrested = rows["arrest"].to_numpy()[known].astype(np.float64)
        self._tables = {name: self._index(keys, frame, codes) for name, keys in HISTORY_KEYS.items()}

    @classmethod
    def fit(cls, con: duckdb.DuckDBPyConnection, first: str, last: str) -> HistoryRun:
        return cls(coded_rows(con, first, last))

    def _index(self, keys: tuple[str, ...], frame: pd.DataFrame, codes: BatchCodes) -> _MonthlyTable:
        composite = _composite(self._vocab, keys, codes)
        rows = np.flatnonzero(composite >= 0)  # a missing key part, or H3 cell 0 = no coordinates: not a place
        at, uniques = pd.factorize(composite[rows])
        # Codes are numbered in order of appearance: a key's first row is where the running maximum grows.
        first_rows = rows[np.flatnonzero(np.diff(np.maximum.accumulate(at), prepend=-1))]
        return _MonthlyTable(
            pd.Index(uniques), {k: frame[k].array.take(first_rows) for k in keys},
            np.searchsorted(self._month[rows], np.arange(len(self.months) + 1)), at, self._arrested[rows],
        )

    def span(self, first: str, last: str) -> HistoryTables:
        """The history tables of months ``first``..``last`` of the run, compiled already (rows without an H3
        cell, which lookups ignore, are left out)."""
        months = tuple(m for m in self.months if first <= m <= last)
        lo, hi = (self.months.index(months[0]), self.months.index(months[-1]) + 1) if months else (0, 0)
        tables, compiled = {}, {}
        for name, table in self._tables.items():
            rows = slice(table.starts[lo], table.starts[hi])
            incidents = np.bincount(table.at[rows], minlength=len(table.keys)).astype(np.float64)
            arrests = np.bincount(table.at[rows], table.arrested[rows], minlength=len(table.keys))
            compiled[name] = _Table(table.keys, incidents, arrests)  # keys without rows here count 0
            seen = incidents > 0
            tables[name] = pd.DataFrame({**{k: values[seen] for k, values in table.key_rows.items()},
                                         "incidents": incidents[seen].astype(np.int64),
                                         "arrests": arrests[seen].astype(np.int64)}, copy=False)
        return HistoryTables(months, tables, dict(self._vocab), compiled)


def _present(column: str, values: object) -> pd.Index:
    """A vocabulary: the values of a key column, missing ones (and H3 cell 0) left out."""
    values = np.asarray(values)
    return pd.Index(values[values != -1] if column in _INTEGER_KEYS else values[pd.notna(values)])


# ------------------------------------------------------------------------------------- report clocks


def _occurred_seconds(occurred_at: pd.Series) -> np.ndarray:
    return occurred_at.to_numpy(dtype="datetime64[s]").astype(np.int64)


@dataclass(frozen=True)
class CounterClock:
    """The reference value of a counter (record id, case number) per 3-hour slot of occurrence time."""

    slots: np.ndarray   # int64 slot numbers (days since 1970 * SLOTS_PER_DAY), ascending
    values: np.ndarray  # float64 references, non-decreasing

    @classmethod
    def fit(cls, t_days: np.ndarray, counter: np.ndarray, valid: np.ndarray) -> CounterClock:
        slots = np.floor(t_days[valid] * SLOTS_PER_DAY).astype(np.int64)
        if not slots.size:
            return cls.empty()
        frame = pd.DataFrame({"slot": slots, "value": counter[valid]})
        grouped = frame.groupby("slot")["value"]
        counts = grouped.size()
        reference = grouped.quantile(REFERENCE_QUANTILE)[counts >= MIN_PEERS]
        return cls(reference.index.to_numpy(np.int64), np.maximum.accumulate(reference.to_numpy(np.float64)))

    @classmethod
    def empty(cls) -> CounterClock:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float64))

    def overlay(self, fallback: CounterClock | None) -> CounterClock:
        """This clock where it has slots, ``fallback`` elsewhere (a batch over the training clock)."""
        if fallback is None or not fallback.slots.size:
            return self
        keep = ~np.isin(fallback.slots, self.slots)
        slots = np.concatenate([self.slots, fallback.slots[keep]])
        values = np.concatenate([self.values, fallback.values[keep]])
        order = np.argsort(slots, kind="stable")
        return CounterClock(slots[order], np.maximum.accumulate(values[order]))

    def reference(self, t_days: np.ndarray) -> np.ndarray:
        """The reference at each time: interpolated between slot centres, extrapolated at the clock's
        own average pace beyond its ends. NaN everywhere for an empty clock."""
        if not self.slots.size:
            return np.full(len(t_days), np.nan)
        centres = (self.slots + 0.5) / SLOTS_PER_DAY
        reference = np.interp(t_days, centres, self.values)
        span = centres[-1] - centres[0]
        if span >= 1.0:
            pace = (self.values[-1] - self.values[0]) / span
            reference = reference + np.where(t_days > centres[-1], (t_days - centres[-1]) * pace, 0.0) \
                - np.where(t_days < centres[0], (centres[0] - t_days) * pace, 0.0)
        return reference


@dataclass(frozen=True)
class ReportClock:
    """The id and case-number references; ``fit`` on a batch, ``overlay`` on a stored one."""

    ids: CounterClock
    cases: CounterClock

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> ReportClock:
        ids = frame["id"].to_numpy(dtype=np.float64)
        return cls.from_arrays(_occurred_seconds(frame["occurred_at"]) / 86400.0, ids,
                               case_numbers(frame["case_number"], frame["occurred_at"]))

    @classmethod
    def from_arrays(cls, t_days: np.ndarray, ids: np.ndarray, cases: CaseNumbers) -> ReportClock:
        """As ``fit``, from arrays a caller has already parsed (occurrence days, ids, case numbers)."""
        return cls(
            CounterClock.fit(t_days, ids, ids >= REGULAR_ID_MIN),
            CounterClock.fit(t_days, cases.counter, cases.year_offset == 0),
        )

    def overlay(self, fallback: ReportClock | None) -> ReportClock:
        if fallback is None:
            return self
        return ReportClock(self.ids.overlay(fallback.ids), self.cases.overlay(fallback.cases))

    def to_frame(self) -> pd.DataFrame:
        return pd.concat([
            pd.DataFrame({"counter": "id", "slot": self.ids.slots, "value": self.ids.values}),
            pd.DataFrame({"counter": "case", "slot": self.cases.slots, "value": self.cases.values}),
        ], ignore_index=True)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ReportClock:
        def clock(name: str) -> CounterClock:
            rows = frame[frame["counter"] == name].sort_values("slot")
            return CounterClock(rows["slot"].to_numpy(np.int64), rows["value"].to_numpy(np.float64))
        return cls(clock("id"), clock("case"))


_LETTER_INDEX = np.full(256, -1, dtype=np.int64)
for _i, _letter in enumerate(CASE_LETTERS):
    _LETTER_INDEX[ord(_letter)] = _i
_ANCHOR_ORDINAL = _LETTER_INDEX[ord(CASE_ANCHOR[0][0])] * len(CASE_LETTERS) + _LETTER_INDEX[ord(CASE_ANCHOR[0][1])]


@dataclass(frozen=True)
class CaseNumbers:
    regular: np.ndarray      # two letters and six digits
    year: np.ndarray         # year of the prefix (NaN when irregular)
    year_offset: np.ndarray  # prefix year - occurrence year (NaN when irregular)
    counter: np.ndarray      # year * 1e6 + sequence: grows with the time of reporting across years


def case_numbers(case_number: pd.Series, occurred_at: pd.Series) -> CaseNumbers:
    """Parse RD numbers like ``HZ133499`` in bulk (byte arithmetic, no per-row Python)."""
    text = case_number.astype(object).where(case_number.notna(), "").to_numpy()
    try:
        raw = np.asarray(text, dtype="S16")
    except UnicodeEncodeError:
        raw = np.asarray([str(v).encode("ascii", "replace") for v in text], dtype="S16")
    raw = np.strings.strip(raw).astype("S9")  # trim, as normalize.sql does; longer ones stay irregular
    raw = raw.view(np.uint8).reshape(len(text), 9) if len(text) else np.zeros((0, 9), np.uint8)
    letters = _LETTER_INDEX[raw[:, :2]]
    digits = raw[:, 2:8].astype(np.int64) - 48
    regular = (letters >= 0).all(axis=1) & ((digits >= 0) & (digits <= 9)).all(axis=1) & (raw[:, 8] == 0)
    sequence = (digits * (10 ** np.arange(5, -1, -1))).sum(axis=1)
    ordinal = letters[:, 0] * len(CASE_LETTERS) + letters[:, 1]
    year = np.where(regular, CASE_ANCHOR[1] + ordinal - _ANCHOR_ORDINAL, np.nan)
    occurred_year = occurred_at.dt.year.to_numpy(dtype=np.float64)
    return CaseNumbers(regular, year, year - occurred_year, np.where(regular, year * 1e6 + sequence, np.nan))


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
    seconds = _occurred_seconds(incidents["occurred_at"])
    t_days = seconds / 86400.0
    minute = (seconds // 60) % 60
    hour = (seconds // 3600) % 24
    days = seconds // 86400
    first_of_month = incidents["occurred_at"].dt.day.to_numpy() == 1
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
        return pd.to_numeric(incidents[column], errors="coerce").astype("float64").to_numpy()

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
    return con.execute(f"SELECT * FROM ({sql('features')}) ORDER BY month, id", {"first": first, "last": last}).df()


# Text columns ``coded_rows`` loads as categoricals (case numbers, unique per incident, stay text).
CODED_COLUMNS = ("month", "block", "iucr", "primary_type", "location_description", "fbi_code")


def coded_rows(con: duckdb.DuckDBPyConnection, first: str, last: str) -> pd.DataFrame:
    """``incident_rows`` with the CODED_COLUMNS as categoricals: each is cast to an ENUM of its values in
    these months, so DuckDB sends integer codes rather than a Python string per value."""
    bounds = {"first": first, "last": last}
    rows = f"({sql('features')})"
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
    bounds = {"first": window.keys[0], "last": window.keys[-1]}
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
