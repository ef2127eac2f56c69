"""How late an incident was reported: its record id and case (RD) number against the references of incidents
that occurred in the same 3-hour slot (see ``features.py``). No arrest enters these clocks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

REGULAR_ID_MIN = 1_000_000   # homicides carry ids from a separate, small range (below 30,000 in 2015-2016)
SLOTS_PER_DAY = 8            # 3-hour slots of occurrence time for the id / case-number references
MIN_PEERS = 15               # a slot needs this many incidents in a batch to give its own reference
REFERENCE_QUANTILE = 0.25    # most incidents are reported at once: the lower quartile is "on time"
CASE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # RD-number prefixes skip I and O
CASE_ANCHOR = ("HY", 2015)   # a prefix seen in the data: every later year is one step further


def occurred_seconds(occurred_at: pd.Series) -> np.ndarray:
    return occurred_at.to_numpy(dtype="datetime64[s]").astype(np.int64)


def occurred_part(occurred_at: pd.Series, unit: str) -> np.ndarray:
    """The calendar ``unit`` ("year", "day" of the month) of each time as float64 (NaN when missing):
    ``occurred_at.dt.<unit>``, in numpy arithmetic for naive times (no per-call pandas machinery)."""
    if occurred_at.dtype.kind != "M":  # tz-aware: the accessor knows the local calendar
        return getattr(occurred_at.dt, unit).to_numpy(dtype=np.float64)
    times = occurred_at.to_numpy()
    if unit == "year":
        part = times.astype("datetime64[Y]").astype(np.int64) + 1970
    elif unit == "day":
        part = (times.astype("datetime64[D]") - times.astype("datetime64[M]")).astype(np.int64) + 1
    else:
        raise ValueError(f"no calendar unit {unit!r}")
    return np.where(np.isnat(times), np.nan, part)


@dataclass(frozen=True)
class CounterClock:
    """The reference value of a counter (record id, case number) per 3-hour slot of occurrence time."""

    slots: np.ndarray   # int64 slot numbers (days since 1970 * SLOTS_PER_DAY), ascending
    values: np.ndarray  # float64 references, non-decreasing

    @classmethod
    def fit(cls, t_days: np.ndarray, counter: np.ndarray, valid: np.ndarray) -> CounterClock:
        slots = np.floor(t_days[valid] * SLOTS_PER_DAY).astype(np.int64)
        # Only slots with MIN_PEERS incidents give a reference: the others are dropped before grouping,
        # so a small batch (one record) never reaches pandas.
        _, inverse, counts = np.unique(slots, return_inverse=True, return_counts=True)
        peers = counts[inverse.reshape(-1)] >= MIN_PEERS
        if not peers.any():
            return cls.empty()
        frame = pd.DataFrame({"slot": slots[peers], "value": counter[valid][peers]})
        reference = frame.groupby("slot")["value"].quantile(REFERENCE_QUANTILE)
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
        return cls.from_arrays(occurred_seconds(frame["occurred_at"]) / 86400.0, ids,
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
    text = case_number.to_numpy(dtype=object, copy=True)
    text[pd.isna(text)] = ""
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
    occurred_year = occurred_part(occurred_at, "year")
    return CaseNumbers(regular, year, year - occurred_year, np.where(regular, year * 1e6 + sequence, np.nan))
