"""Raw incident records -> the typed model fields (``canonical_records``), by the rules described in
``crime_assets.model.arrest_model``: the typing rules of ``crime_assets/ingestion/sql/raw_incidents.sql``,
and a ``RecordError`` naming the field and the record for a value that cannot be scored.

The work is column by column on numpy arrays taken straight from the records (no DataFrame is built
until the end): each column is parsed in one numpy cast when its values have the usual form (digit
strings, ISO dates, decimal strings, booleans), and value by value only when that cast refuses one,
so that a single record costs little more than the fixed cost of a handful of array operations.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

REQUIRED_FIELDS = ("id", "case_number", "occurred_at", "primary_type", "iucr", "domestic")
OPTIONAL_FIELDS = ("block", "location_description", "fbi_code", "beat", "district", "ward", "community_area",
                   "latitude", "longitude")
MODEL_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
_TEXT = ("primary_type", "iucr", "block", "location_description", "fbi_code")
_INTEGERS = ("beat", "district", "ward", "community_area")
_DECIMALS = ("latitude", "longitude")
# normalize.sql: the text forms of booleans, and the two date formats (bulk export, then ISO).
_TRUE_WORDS, _FALSE_WORDS = {"true", "t", "1", "y", "yes"}, {"false", "f", "0", "n", "no"}
_EXPORT_DATE = "%m/%d/%Y %I:%M:%S %p"
_DATE_FORMS = "MM/DD/YYYY hh:mm:ss AM or ISO 8601"
_BEYOND = f"is a whole number beyond the int64 range ({-(2 ** 63):,} to {2 ** 63 - 1:,})"
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_PLAIN_NUMBER = re.compile(r"\s*-?[0-9.]+\s*")
_PLAIN_CHARS = frozenset("0123456789.- \t\n\r\f\v")
_BAD, _BIG = object(), object()  # a value that does not parse; a whole number beyond int64


class RecordError(ValueError):
    """A record that cannot be scored; ``field`` names the culprit, ``rows`` the records (0-based)."""

    def __init__(self, message: str, field: str, rows: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.field, self.rows = field, list(rows)


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of the values as they are (a list value stays one element)."""
    return np.fromiter(values, dtype=object, count=len(values))


class _Batch:
    """The raw columns of a batch, and what names a record in an error (its id, once known)."""

    def __init__(self, columns: dict[str, np.ndarray], size: int) -> None:
        self.columns, self.size = columns, size
        self.ids: np.ndarray | None = columns.get("id")

    def fail(self, field: str, problem: str, bad: np.ndarray, shown: np.ndarray | None = None) -> None:
        rows = np.flatnonzero(bad)
        if not rows.size:
            return
        first = int(rows[0])
        label = f"record {first}"
        if self.ids is not None and not _missing(self.ids[first]):
            label += f" (id {self.ids[first]})"
        label += f" and {len(rows) - 1} more" if len(rows) > 1 else ""
        example = f": {shown[first]!r}" if shown is not None else ""
        raise RecordError(f"{label}: field '{field}' {problem}{example}", field, rows[:100])


# ------------------------------------------------------------------------------------ the columns


def _series_values(values: pd.Series) -> np.ndarray:
    """A DataFrame column as a numpy array: its own dtype when numpy has it, else objects (NA -> None)."""
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("America/Chicago").dt.tz_localize(None).to_numpy()
    if isinstance(dtype, np.dtype):
        return values.to_numpy()
    return values.astype(object).where(values.notna(), None).to_numpy()


def _source_name(name: Any) -> str:
    name = str(name).strip().lower().replace(" ", "_")
    return "occurred_at" if name == "date" else name


def _record_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The model fields (and ``location``) of Socrata / export records, by their canonical names."""
    keys: dict[str, Any] = {}
    for key in set().union(*records) if records else ():
        keys.setdefault(_source_name(key), key)
    columns = {}
    for name in (*MODEL_FIELDS, "location"):
        key = keys.get(name)
        if key is not None:
            columns[name] = _objects([r.get(key) for r in records])
        elif name != "location":
            columns[name] = np.full(len(records), None, dtype=object)
    return columns


def _frame_columns(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], bool]:
    """The model fields of a DataFrame (canonical names, or the source's); True for source names."""
    source = "occurred_at" not in frame.columns and "date" in frame.columns
    names = {(_source_name(c) if source else c): c for c in reversed(frame.columns)}
    if not source:
        missing = [f for f in MODEL_FIELDS if f not in names]
        if missing:
            raise RecordError(
                f"the records have no column(s) {missing}; a DataFrame needs every model field "
                f"{list(MODEL_FIELDS)} (optional ones may hold nulls)", missing[0])
    columns = {}
    for name in (*MODEL_FIELDS, "location") if source else MODEL_FIELDS:
        if name in names:
            columns[name] = _series_values(frame[names[name]])
        elif name != "location":
            columns[name] = np.full(len(frame), None, dtype=object)
    return columns, source


# ------------------------------------------------------------------------------------------ typing


def _clean(v: Any) -> str | None:
    """trim + nullif(''), as normalize.sql does; a value that is not text becomes its text."""
    if _missing(v):
        return None
    text = (v if isinstance(v, str) else str(v)).strip()
    return text or None


def _texts(values: np.ndarray) -> np.ndarray:
    """Object array of trimmed text, None where missing or empty."""
    return _objects([(v.strip() or None) if type(v) is str else _clean(v) for v in values])


def _case_text(values: np.ndarray) -> np.ndarray:
    """Case numbers as text (None when missing); the parser (features.case_numbers) trims them."""
    return _objects([None if _missing(v) else v if isinstance(v, str) else str(v) for v in values])


def _whole(v: Any) -> Any:
    """A whole number within int64; None when missing, _BIG beyond int64, _BAD when not a whole number."""
    if _missing(v):
        return None
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        number = int(v)
    else:
        text = _clean(v) if not isinstance(v, (bool, np.bool_)) else "bool"
        if text is None:
            return None
        try:
            number = int(text) if "_" not in text else _BAD
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return _BAD
            if not np.isfinite(value):
                return _BIG if np.isinf(value) else _BAD
            if not value.is_integer():
                return _BAD
            number = int(value)
    if number is _BAD:
        return _BAD
    return number if _INT64_MIN <= number <= _INT64_MAX else _BIG


def _whole_numbers(batch: _Batch, field: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 values and the missing mask."""
    kind = values.dtype.kind
    if kind in "ib":
        return values.astype(np.int64), np.zeros(len(values), bool)
    if kind == "u":
        batch.fail(field, _BEYOND, values > _INT64_MAX, values)
        return values.astype(np.int64), np.zeros(len(values), bool)
    if kind == "f":
        missing = np.isnan(values)
        with np.errstate(invalid="ignore"):
            batch.fail(field, "is not a whole number", ~missing & (values != np.floor(values)), values)
            batch.fail(field, _BEYOND, ~missing & ~(np.abs(values) < 2.0 ** 63), values)
        return np.where(missing, 0, values).astype(np.int64), missing
    missing = pd.isna(values)
    try:  # the usual form: digit strings, or ints
        text = values[~missing].astype(str)
        if not np.strings.find(text, "_").max(initial=-1) >= 0:
            out = np.zeros(len(values), np.int64)
            out[~missing] = text.astype(np.int64)
            return out, missing
    except (ValueError, OverflowError, TypeError):
        pass
    parsed = [_whole(v) for v in values]
    shown = _objects([_clean(v) for v in values])
    batch.fail(field, "is not a whole number", np.fromiter((p is _BAD for p in parsed), bool, len(parsed)), shown)
    batch.fail(field, _BEYOND, np.fromiter((p is _BIG for p in parsed), bool, len(parsed)), shown)
    missing = np.fromiter((p is None for p in parsed), bool, len(parsed))
    return np.fromiter((0 if p is None else p for p in parsed), np.int64, len(parsed)), missing


def _decimal(v: Any, strict: bool = True) -> Any:
    if _missing(v):
        return np.nan
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        return float(v)
    text = _clean(v)
    if text is None:
        return np.nan
    try:
        value = float(text) if "_" not in text else np.nan
    except ValueError:
        value = np.nan
    return _BAD if strict and np.isnan(value) else value


def _decimals(batch: _Batch, field: str, values: np.ndarray) -> np.ndarray:
    """float64, NaN where missing."""
    if values.dtype.kind in "iuf":
        return values.astype(np.float64)
    if values.dtype.kind == "O":
        present = ~pd.isna(values)
        try:  # the usual form: decimal strings (and no "nan", which would be refused below)
            given = values[present].astype(str)
            parsed = given.astype(np.float64)
            if not np.isnan(parsed).any() and not np.strings.find(given, "_").max(initial=-1) >= 0:
                out = np.full(len(values), np.nan)
                out[present] = parsed
                return out
        except (ValueError, TypeError):
            pass
    parsed = [_decimal(v) for v in values]
    bad = np.fromiter((p is _BAD for p in parsed), bool, len(parsed))
    batch.fail(field, "is not a number", bad, _objects([_clean(v) for v in values]))
    return np.fromiter((np.nan if p is _BAD else p for p in parsed), np.float64, len(parsed))


def _location_part(location: np.ndarray, part: str) -> np.ndarray:
    """Latitude / longitude from a Socrata ``location``: an object, its text, or the export's "(lat, lon)"
    (unreadable ones give NaN)."""
    picked = _objects([v.get(part) if type(v) is dict or isinstance(v, Mapping) else v for v in location])
    present = ~pd.isna(picked)
    given = picked[present]
    if all(type(v) is str for v in given) and set("".join(given)) <= _PLAIN_CHARS:
        try:  # the usual form: plain decimal strings
            out = np.full(len(picked), np.nan)
            out[present] = given.astype(str).astype(np.float64)
            return out
        except ValueError:
            pass
    return np.fromiter((_location_value(v, part) for v in picked), np.float64, len(picked))


def _location_value(value: Any, part: str) -> float:
    if _missing(value):
        return np.nan
    text = str(value)
    if _PLAIN_NUMBER.fullmatch(text):
        found = text
    elif pair := re.search(r"\(\s*(-?[0-9.]+)\s*,\s*(-?[0-9.]+)\s*\)", text):
        found = pair.group(1 if part == "latitude" else 2)
    elif keyed := re.search(rf"{part}['\"]?\s*:\s*['\"]?(-?[0-9.]+)", text):
        found = keyed.group(1)
    else:
        return np.nan
    return _decimal(found, strict=False)


def _flag(v: Any) -> Any:
    if _missing(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    text = str(v).strip().lower()
    return True if text in _TRUE_WORDS else False if text in _FALSE_WORDS else _BAD


def _flags(batch: _Batch, field: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bool values and the missing mask."""
    if values.dtype.kind == "b":
        return values, np.zeros(len(values), bool)
    parsed = [v if type(v) is bool else _flag(v) for v in values]
    batch.fail(field, "is not true/false", np.fromiter((p is _BAD for p in parsed), bool, len(parsed)), values)
    missing = np.fromiter((p is None for p in parsed), bool, len(parsed))
    return np.fromiter((p is True for p in parsed), bool, len(parsed)), missing


def _timestamps(batch: _Batch, field: str, values: np.ndarray) -> np.ndarray:
    """datetime64[us] in Chicago time, NaT where missing."""
    if values.dtype.kind == "M":
        return values.astype("datetime64[us]")
    text = _texts(values)
    present = np.flatnonzero(text != None)  # noqa: E711 (elementwise)
    out = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
    given = [text[i] for i in present]
    if all(t[0].isdigit() for t in given):
        try:  # the usual form: ISO 8601 without an offset, which numpy parses as pandas does
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy warns (and still converts) on an offset
                out[present] = np.asarray(given, dtype=str).astype("datetime64[us]")
            return out
        except (ValueError, UserWarning, DeprecationWarning):
            pass
    export = pd.to_datetime(pd.Series(given, dtype=object), format=_EXPORT_DATE, errors="coerce").to_numpy()
    offset = np.zeros(len(text), bool)
    for at, i in enumerate(present):
        if not np.isnat(export[at]):
            out[i] = export[at]
            continue
        try:
            stamp = pd.to_datetime(text[i], format="ISO8601")
        except (ValueError, OverflowError):
            continue
        if stamp.tzinfo is not None:
            offset[i] = True
        else:
            out[i] = stamp.to_datetime64()
    batch.fail(field, "has a UTC offset (Chicago local time without one is expected)", offset, text)
    bad = np.isnat(out)
    bad[text == None] = False  # noqa: E711
    batch.fail(field, f"is not a date ({_DATE_FORMS})", bad, text)
    return out


# -------------------------------------------------------------------------------------- the records


def canonical_columns(records: Sequence[Mapping[str, Any]] | pd.DataFrame) -> dict[str, Any]:
    """The typed model fields as arrays (``canonical_records`` without the DataFrame)."""
    source_names = not isinstance(records, pd.DataFrame)
    try:
        if isinstance(records, pd.DataFrame):
            columns, source_names = _frame_columns(records)
            size = len(records)
        elif isinstance(records, Sequence) and not isinstance(records, (str, bytes)):
            not_dicts = [i for i, r in enumerate(records) if not isinstance(r, Mapping)]
            if not_dicts:
                raise RecordError(f"record {not_dicts[0]} is a {type(records[not_dicts[0]]).__name__}, not a "
                                  "JSON object", "record", not_dicts)
            columns, size = _record_columns(records), len(records)
        else:
            raise TypeError(f"records must be a pandas DataFrame or a list of dicts, got {type(records).__name__}")
        return _typed(_Batch(columns, size))
    except RecordError as error:
        if source_names and error.field == "occurred_at":  # say it in the caller's words
            raise RecordError(str(error).replace("field 'occurred_at'", "field 'date'"), "date", error.rows) from None
        raise


def _typed(batch: _Batch) -> dict[str, Any]:
    raw = batch.columns
    missing: dict[str, np.ndarray] = {}
    # Ids first, so later errors can name the record by its id.
    ids, missing["id"] = _whole_numbers(batch, "id", raw["id"])
    batch.ids = np.where(missing["id"], None, ids.astype(object))
    out: dict[str, Any] = {"id": ids}
    out["occurred_at"] = _timestamps(batch, "occurred_at", raw["occurred_at"])
    missing["occurred_at"] = np.isnat(out["occurred_at"])
    out["case_number"] = _case_text(raw["case_number"])
    for name in _TEXT:
        out[name] = _texts(raw[name])
    out["domestic"], missing["domestic"] = _flags(batch, "domestic", raw["domestic"])
    for name in _INTEGERS:
        values, absent = _whole_numbers(batch, name, raw[name])
        out[name] = pd.arrays.IntegerArray(values, absent)
    for name in _DECIMALS:
        out[name] = _decimals(batch, name, raw[name])
        if "location" in raw:
            unknown = np.isnan(out[name])
            if unknown.any():
                out[name][unknown] = _location_part(raw["location"][unknown], name)
    for name in REQUIRED_FIELDS:
        absent = missing.get(name)
        if absent is None:
            absent = out[name] == None  # noqa: E711 (elementwise: the text columns)
        batch.fail(name, "is required but missing or empty", absent)
    return out


def canonical_records(records: Sequence[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Validated, typed model fields of raw records (see ``crime_assets.model.arrest_model``)."""
    return pd.DataFrame(canonical_columns(records), copy=False)
