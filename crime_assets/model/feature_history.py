"""History features' lookups: incidents and arrests per key (type in beat, H3 cell, block...) over earlier
months, as ``arrest_features`` and the packaged model look them up (see ``features.py``).

``fit_history`` counts one span of months in SQL (a model's training months); ``HistoryRun`` numbers the
incidents of a run of months once, so the trailing span of each month of a window is a count over a slice
of rows (what ``write_arrest_features`` uses).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from crime_assets.enrichment.enrich import ENRICHED_TABLE
from crime_assets.common.months import months_before
from crime_assets.common.sql import sql

HISTORY_MONTHS = 12          # trailing months of history behind each month's features
SMOOTHING = 20.0             # pseudo-incidents at the type's prior rate added to every history rate

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


def numbers(values: pd.Series) -> np.ndarray:
    """float64 of a numeric column, NaN for missing or non-numeric values (``pd.to_numeric(errors="coerce")``),
    without pandas' per-call machinery for the dtypes the features see (numpy numbers, nullable integers)."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return values.to_numpy(dtype=np.float64)
    if isinstance(values.array, (pd.arrays.IntegerArray, pd.arrays.FloatingArray)):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()


def _key_values(frame: pd.DataFrame, column: str) -> np.ndarray | pd.Series:
    """A key column in one comparable form: int64 (-1 = missing, and H3 cell 0), or text (object or categorical)."""
    values = frame[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values  # factorised through its codes: no string hashing
    if column not in _INTEGER_KEYS:
        return values.to_numpy(dtype=object)
    raw = values.to_numpy()
    if raw.dtype.kind in "iu":
        out = raw.astype(np.int64)  # H3 ids (< 2**63) keep every bit
    elif column.startswith("h3_"):
        # Never through float: H3 ids exceed its 53-bit precision.
        out = np.full(len(raw), -1, dtype=np.int64)
        mask = ~pd.isna(raw)
        out[mask] = np.asarray([int(v) for v in raw[mask]], dtype=np.uint64).astype(np.int64)
    else:
        number = numbers(values)
        out = np.where(np.isnan(number), -1, number).astype(np.int64)
    return np.where(out == 0, -1, out) if column.startswith("h3_") else out


@dataclass
class _Table:
    keys: pd.Index         # composite keys (unique): a hash index, so lookups are O(1)
    incidents: np.ndarray
    arrests: np.ndarray


class Vocabulary:
    """The values of a key column (or a feature's categories) and each one's position. A dict rather than
    a pandas Index: a batch's distinct values are looked up with no per-call pandas machinery, which is
    most of the cost of scoring one record."""

    def __init__(self, values: object) -> None:
        self.values = pd.Index(values)
        self._position = {value: at for at, value in enumerate(self.values.tolist())}

    def __len__(self) -> int:
        return len(self.values)

    def positions(self, values: object) -> np.ndarray:
        """Position of each value; -1 when it is not in the vocabulary."""
        position = self._position
        return np.fromiter((position.get(v, -1) for v in values), np.intp, len(values))


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

    def codes_in(self, column: str, vocab: Vocabulary) -> np.ndarray:
        """Position of each row's value in ``vocab``; -1 when missing or unknown."""
        key = (column, id(vocab))
        if key not in self._mapped:
            codes, uniques = self.factorized(column)
            mapped = np.append(vocab.positions(uniques), -1)  # code -1 (missing) picks the appended -1
            self._mapped[key] = mapped[codes]
        return self._mapped[key]


def _vocabularies(tables: dict[str, pd.DataFrame]) -> dict[str, Vocabulary]:
    """The values of each key column found in the history tables (missing ones and H3 cell 0 left out)."""
    vocab = {}
    for column in {c for keys in HISTORY_KEYS.values() for c in keys}:
        parts = [_key_values(tables[name], column) for name, keys in HISTORY_KEYS.items() if column in keys]
        vocab[column] = _present(column, pd.unique(np.concatenate(parts)))
    return vocab


def _composite(vocab: dict[str, Vocabulary], keys: tuple[str, ...], codes: BatchCodes) -> np.ndarray:
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
    tables: Mapping[str, pd.DataFrame]  # name -> key columns + incidents + arrests
    _vocab: dict[str, Vocabulary] = field(default_factory=dict, repr=False)
    _compiled: dict[str, _Table] = field(default_factory=dict, repr=False)
    _totals: tuple[float, float] | None = field(default=None, repr=False)

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
        if self._totals is None:  # summed once: the tables do not change once looked up
            self._totals = float(self.incidents), self.arrest_rate
        total, rate = self._totals
        prior = (type_a + SMOOTHING * rate) / (type_n + SMOOTHING)
        out = {"history_incidents": np.full(len(frame), total), "type_prior": prior}
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
            .replace("FEATURE_ROWS", sql("arrest_features"))
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
        compiled = {}
        for name, table in self._tables.items():
            rows = slice(table.starts[lo], table.starts[hi])
            incidents = np.bincount(table.at[rows], minlength=len(table.keys)).astype(np.float64)
            arrests = np.bincount(table.at[rows], table.arrested[rows], minlength=len(table.keys))
            compiled[name] = _Table(table.keys, incidents, arrests)  # keys without rows here count 0
        return HistoryTables(months, _SpanTables(self._tables, compiled), dict(self._vocab), compiled)


class _SpanTables(Mapping):
    """A span's tables as DataFrames of the keys it counted, each built on first use: lookups read the
    compiled counts, so ``write_arrest_features`` never needs the frames (only the type totals)."""

    def __init__(self, tables: dict[str, _MonthlyTable], compiled: dict[str, _Table]) -> None:
        self._tables, self._compiled, self._frames = tables, compiled, {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            key_rows, counted = self._tables[name].key_rows, self._compiled[name]
            seen = counted.incidents > 0
            self._frames[name] = pd.DataFrame({**{k: values[seen] for k, values in key_rows.items()},
                                               "incidents": counted.incidents[seen].astype(np.int64),
                                               "arrests": counted.arrests[seen].astype(np.int64)}, copy=False)
        return self._frames[name]

    def __iter__(self):
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)


def _present(column: str, values: object) -> Vocabulary:
    """A vocabulary: the values of a key column, missing ones (and H3 cell 0) left out."""
    values = np.asarray(values)
    return Vocabulary(values[values != -1] if column in _INTEGER_KEYS else values[pd.notna(values)])
