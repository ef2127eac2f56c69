"""The police stations table (Socrata z8bn-74gv) from the CSV snapshot or the JSON API."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crime_assets.common.schema import POLICE_STATIONS

_COLUMNS = [c.name for c in POLICE_STATIONS]


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Shared clean-up: text districts ('Headquarters') and addresses with line breaks inside quotes."""
    frame = frame.rename(columns=lambda c: str(c).strip().lower().replace(" ", "_"))
    district_text = frame["district"].astype(str).str.strip()
    out = pd.DataFrame({
        "district": pd.to_numeric(district_text, errors="coerce").astype("Int64"),
        "district_name": frame["district_name"].astype(str).str.strip(),
        "address": frame["address"].astype(str).str.replace(r"\s+", " ", regex=True).str.strip(),
        "zip": frame["zip"].astype(str).str.strip(),
        "latitude": pd.to_numeric(frame["latitude"], errors="coerce"),
        "longitude": pd.to_numeric(frame["longitude"], errors="coerce"),
    })
    out["is_district_station"] = out["district"].notna()
    bad = out[out["latitude"].isna() | out["longitude"].isna()]
    if not bad.empty:
        raise ValueError(f"police stations without coordinates: {bad['district_name'].tolist()}")
    if not out["is_district_station"].any():
        raise ValueError("police stations table has no district station")
    return out.sort_values(["is_district_station", "district"], ascending=[False, True])[_COLUMNS].reset_index(drop=True)


def read_stations_csv(path: str | Path) -> pd.DataFrame:
    return _tidy(pd.read_csv(path, dtype=str))


def stations_from_records(records: list[dict]) -> pd.DataFrame:
    """JSON API records: lower-case names, ``district`` as text, coordinates as strings."""
    if not records:
        raise ValueError("the police stations dataset returned no records")
    return _tidy(pd.DataFrame.from_records(records))
