"""Canonical incident rows back in the SODA JSON API's shape: what a client of ``load_model()`` (or of the
Socrata API) holds. The benchmarks and tests score such records."""

from __future__ import annotations

import numpy as np
import pandas as pd


def socrata_records(frame: pd.DataFrame) -> list[dict]:
    """Canonical rows as the SODA JSON API returns them: text numbers, ISO dates, booleans, a location
    object, and no key at all for an empty field."""
    records = []
    for row in frame.to_dict("records"):
        record = {}
        for key in ("id", "case_number", "block", "iucr", "primary_type", "location_description", "fbi_code",
                    "beat", "district", "ward", "community_area", "domestic"):
            value = row[key]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            record[key] = bool(value) if isinstance(value, (bool, np.bool_)) else str(value)
        record["date"] = pd.Timestamp(row["occurred_at"]).strftime("%Y-%m-%dT%H:%M:%S.000")
        if pd.notna(row["latitude"]):
            record["location"] = {"latitude": str(row["latitude"]), "longitude": str(row["longitude"]),
                                  "human_address": '{"address": ""}'}
        records.append(record)
    return records
