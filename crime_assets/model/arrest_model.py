"""The trained arrest model as one self-contained object: raw incident records in, arrest probabilities out.

``ArrestModel`` carries everything scoring needs -- the XGBoost booster, the category encodings, the
history lookup tables and id / case-number references as of the end of its training window, the police
stations, and the decision threshold chosen on validation -- so it scores records with no access to the
warehouse. It is saved as a folder of plain files (``save`` / ``load``: XGBoost UBJSON, JSON, parquet),
which MLflow stores as the artifact of a pyfunc model (``crime_assets.model.model_registry``).

Records are either a DataFrame in the canonical schema (``crime_assets.common.schema.RAW_INCIDENTS``
names: ``occurred_at`` ...) or Socrata JSON records (a list of dicts, or a DataFrame, with the source's
field names: ``date``, ``location`` ...). Source records are typed by the rules of
``crime_assets/ingestion/sql/raw_incidents.sql`` (the same text forms of booleans and dates, the ``location``
fallback for coordinates).

- Required, non-empty in every record: ``REQUIRED_FIELDS``. A record without one, or with a value of
  the wrong type (an id that is not a whole number, a date that does not parse ...), raises
  ``RecordError`` naming the field and the record; nothing is scored.
- Optional: ``OPTIONAL_FIELDS``. An empty value means "not known" and is scored as such, as the model
  saw such rows in training (2-3% of incidents have no coordinates, some no location description). A
  DataFrame must still have the column; a JSON record may leave the key out (Socrata omits nulls).
- Unknown categories (a new IUCR code) are scored as missing values.

Scores depend on the batch only through the id / case-number references: a batch that holds at
least ``MIN_PEERS`` incidents per 3-hour slot (a day or more of incidents) uses its own; smaller
batches use the references of the training months, extrapolated beyond them, which blurs the
reporting-delay signal for incidents far past the training window.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from crime_assets.common import geo
from crime_assets.enrichment.enrich import point_geography
from crime_assets.model.feature_history import BatchCodes, HistoryTables, Vocabulary
from crime_assets.model.features import FEATURE_NAMES, FEATURES_VERSION, feature_columns
from crime_assets.model.report_clock import SLOTS_PER_DAY, ReportClock
from crime_assets.common.h3cells import parent_cells
from crime_assets.model.records import (  # noqa: F401 (the model's record rules, re-exported)
    MODEL_FIELDS, OPTIONAL_FIELDS, REQUIRED_FIELDS, RecordError, canonical_columns, canonical_records,
)

FORMAT_VERSION = 1

# ----------------------------------------------------------------------------------------- geography


class Geography:
    """Nearest district station and H3 cells of coordinates, by the rules of
    ``crime_assets.enrichment.enrich.point_geography`` (coordinates outside Chicago count as none; coarser
    cells are parents of the r10 cell).

    Incidents sit on block-level coordinates that repeat month after month, so each distinct pair is
    computed once per batch, and pairs already seen in training come from ``places`` (a memo of the same
    computation, carried in the artifact) -- H3 has no vectorised point-to-cell call.
    """

    def __init__(self, stations: pd.DataFrame, places: pd.DataFrame | None = None) -> None:
        self.stations = stations
        self.districts = stations[stations["is_district_station"]].reset_index(drop=True)
        self.places = places if places is not None else pd.DataFrame(
            {"latitude": [], "longitude": [], "h3_r10": np.zeros(0, np.uint64), "station": np.zeros(0, np.int16),
             "station_distance_m": []})
        self._index = pd.Index(self.places["latitude"].to_numpy(float) + 1j * self.places["longitude"].to_numpy(float))

    def _compute(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """r10 cell, station index and distance of usable points: the enrichment's own computation."""
        points = point_geography(lat, lon, self.districts)
        return (points["h3_r10"].to_numpy(np.uint64), points["station"].to_numpy(np.int16),
                points["station_distance_m"].to_numpy(float))

    def memo(self, latitude: np.ndarray, longitude: np.ndarray) -> pd.DataFrame:
        """The ``places`` table for these coordinates (usable, distinct pairs)."""
        lat, lon = np.asarray(latitude, dtype=float), np.asarray(longitude, dtype=float)
        usable = geo.coordinate_status(lat, lon) == geo.OK
        _, unique = pd.factorize(lat[usable] + 1j * lon[usable])
        cells, station, distance = self._compute(unique.real, unique.imag)
        return pd.DataFrame({"latitude": unique.real, "longitude": unique.imag, "h3_r10": cells,
                             "station": station, "station_distance_m": distance})

    def __call__(self, latitude: np.ndarray, longitude: np.ndarray) -> dict[str, np.ndarray]:
        lat, lon = np.asarray(latitude, dtype=float), np.asarray(longitude, dtype=float)
        usable = geo.coordinate_status(lat, lon) == geo.OK
        n = len(lat)
        out = {"station_distance_m": np.full(n, np.nan), "nearest_station_district": np.full(n, np.nan),
               "h3_r8": np.zeros(n, np.uint64), "h3_r10": np.zeros(n, np.uint64)}
        if not usable.any():
            return out
        inverse, unique = pd.factorize(lat[usable] + 1j * lon[usable])
        known = self._index.get_indexer(unique)
        hit = np.flatnonzero(known >= 0)
        cells, station, distance = np.zeros(len(unique), np.uint64), np.zeros(len(unique), np.int16), \
            np.zeros(len(unique), float)
        cells[hit] = self.places["h3_r10"].to_numpy(np.uint64)[known[hit]]
        station[hit] = self.places["station"].to_numpy(np.int16)[known[hit]]
        distance[hit] = self.places["station_distance_m"].to_numpy(float)[known[hit]]
        new = np.flatnonzero(known < 0)
        if new.size:
            cells[new], station[new], distance[new] = self._compute(unique.real[new], unique.imag[new])
        out["station_distance_m"][usable] = distance[inverse]
        out["nearest_station_district"][usable] = self.districts["district"].to_numpy(float)[station][inverse]
        out["h3_r10"][usable] = cells[inverse]
        out["h3_r8"][usable] = parent_cells(cells, 8)[inverse]
        return out


# ------------------------------------------------------------------------------------------ the model


@dataclass
class ArrestModel:
    """Scores raw incident records; see the module docstring. Build with ``crime_assets.model.training``."""

    booster: xgb.Booster
    categories: dict[str, list[str]]   # per categorical feature, ordered by training arrest rate
    history: HistoryTables             # earlier months' arrests as of the end of training
    clock: ReportClock                 # id / case-number references of the training months
    stations: pd.DataFrame             # the police stations at training time
    places: pd.DataFrame | None = None  # memo of Geography for the training months' coordinates
    threshold: float = 0.5             # decision threshold (max MCC on validation)
    info: dict[str, Any] = field(default_factory=dict)  # name, version, months, metrics ...
    _category_index: dict[str, Vocabulary] = field(default_factory=dict, repr=False)
    _geography: Geography | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._category_index = {name: Vocabulary(values) for name, values in self.categories.items()}
        self._geography = Geography(self.stations, self.places)
        self.booster.set_param({"nthread": os.cpu_count() or 1})

    @property
    def feature_names(self) -> tuple[str, ...]:
        return FEATURE_NAMES

    # Scoring ------------------------------------------------------------------------------------
    def prepare(self, records) -> pd.DataFrame:
        """Typed records plus the geography the features need."""
        columns = canonical_columns(records)
        columns.update(self._geography(columns["latitude"], columns["longitude"]))
        return pd.DataFrame(columns, copy=False)

    def matrix(self, records) -> np.ndarray:
        """The float32 feature matrix (FEATURE_NAMES columns) the booster scores."""
        incidents = self.prepare(records)
        return self._matrix(incidents)

    def _matrix(self, incidents: pd.DataFrame) -> np.ndarray:
        codes = BatchCodes(incidents)
        columns = feature_columns(incidents, self.history, self.clock, codes)
        X = np.empty((len(incidents), len(FEATURE_NAMES)), dtype=np.float32, order="F")
        for j, name in enumerate(FEATURE_NAMES):
            if name in self._category_index:
                code = codes.codes_in(name, self._category_index[name])
                X[:, j] = np.where(code < 0, np.nan, code)
            else:
                X[:, j] = columns[name]
        return X

    def features(self, records) -> pd.DataFrame:
        """The model's inputs for the records, as a DataFrame (for inspection; categories as codes)."""
        return pd.DataFrame(self.matrix(records), columns=list(FEATURE_NAMES))

    def predict_proba(self, records) -> np.ndarray:
        """An (n, 2) array like scikit-learn's: column 0 P(no arrest), column 1 P(arrest)."""
        X = self.matrix(records)
        p = self.booster.inplace_predict(X) if len(X) else np.zeros(0, np.float32)
        p = np.asarray(p, dtype=np.float64)
        return np.column_stack([1.0 - p, p])

    def predict(self, records) -> np.ndarray:
        """1 where P(arrest) reaches the decision threshold chosen on validation, else 0."""
        return (self.predict_proba(records)[:, 1] >= self.threshold).astype(np.int8)

    def __repr__(self) -> str:
        def show(value):
            return f"{value[0]}..{value[-1]}" if isinstance(value, list) and len(value) > 1 else \
                (value[0] if isinstance(value, list) and value else value)
        what = ", ".join(f"{k}={show(self.info[k])}" for k in ("name", "version", "train_months", "test_months")
                         if k in self.info)
        return f"ArrestModel({what}, threshold={self.threshold:.3f})"

    # Persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        (directory / "history").mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / "booster.ubj"))
        for name, table in self.history.to_frames().items():
            table.to_parquet(directory / "history" / f"{name}.parquet", index=False)
        self.clock.to_frame().to_parquet(directory / "clock.parquet", index=False)
        self.stations.to_parquet(directory / "stations.parquet", index=False)
        if self.places is not None:
            self.places.to_parquet(directory / "places.parquet", index=False)
        spec = {
            "format_version": FORMAT_VERSION,
            "features_version": FEATURES_VERSION,
            "slots_per_day": SLOTS_PER_DAY,
            "feature_names": list(FEATURE_NAMES),
            "categories": self.categories,
            "threshold": self.threshold,
            "history_months": list(self.history.months),
            "info": self.info,
        }
        (directory / "model.json").write_text(json.dumps(spec, indent=1, default=str))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ArrestModel:
        directory = Path(directory)
        spec = json.loads((directory / "model.json").read_text())
        if spec.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{directory}: model format {spec.get('format_version')}, this code reads {FORMAT_VERSION}")
        if (spec.get("features_version"), spec.get("slots_per_day")) != (FEATURES_VERSION, SLOTS_PER_DAY):
            raise ValueError(f"{directory}: the model was built with feature definitions version "
                             f"{spec.get('features_version')} ({spec.get('slots_per_day')} slots a day); this code builds "
                             f"version {FEATURES_VERSION} ({SLOTS_PER_DAY}): load it with the crime_assets it was trained with")
        if tuple(spec["feature_names"]) != FEATURE_NAMES:
            raise ValueError(f"{directory}: the model was trained on other features than this code builds: "
                             f"{sorted(set(spec['feature_names']) ^ set(FEATURE_NAMES))}")
        booster = xgb.Booster()
        booster.load_model(str(directory / "booster.ubj"))
        frames = {p.stem: pd.read_parquet(p) for p in (directory / "history").glob("*.parquet")}
        history = HistoryTables.from_frames(spec["history_months"], frames)
        history.compile()  # the lookup indexes now, not on the first scoring
        model = cls(
            booster=booster,
            categories=spec["categories"],
            history=history,
            clock=ReportClock.from_frame(pd.read_parquet(directory / "clock.parquet")),
            stations=pd.read_parquet(directory / "stations.parquet"),
            places=pd.read_parquet(directory / "places.parquet") if (directory / "places.parquet").exists() else None,
            threshold=float(spec["threshold"]),
            info=spec.get("info", {}),
        )
        return model
