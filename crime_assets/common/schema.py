"""Column definitions of the warehouse tables: one source for the DDL and for the docs shown in the UI."""

from __future__ import annotations

from typing import NamedTuple


class Column(NamedTuple):
    name: str
    type: str
    description: str


# Field names as both sources spell them once snake-cased (the export's "Case Number" -> case_number).
SOURCE_FIELDS = (
    "id", "case_number", "date", "block", "iucr", "primary_type", "description",
    "location_description", "arrest", "domestic", "beat", "district", "ward", "community_area",
    "fbi_code", "x_coordinate", "y_coordinate", "latitude", "longitude", "location", "updated_on",
)

RAW_INCIDENTS = (
    Column("id", "BIGINT", "Unique record id of the incident (Socrata `id`)"),
    Column("case_number", "VARCHAR", "Chicago Police RD number"),
    Column("occurred_at", "TIMESTAMP", "When the incident occurred (local Chicago time)"),
    Column("block", "VARCHAR", "Partially redacted address (block level)"),
    Column("iucr", "VARCHAR", "Illinois Uniform Crime Reporting code"),
    Column("primary_type", "VARCHAR", "Primary description of the IUCR code"),
    Column("description", "VARCHAR", "Secondary description of the IUCR code"),
    Column("location_description", "VARCHAR", "Kind of place where the incident occurred"),
    Column("arrest", "BOOLEAN", "Whether an arrest was made (as of updated_on)"),
    Column("domestic", "BOOLEAN", "Domestic-related as defined by the Illinois Domestic Violence Act"),
    Column("beat", "INTEGER", "Police beat (smallest police geography)"),
    Column("district", "INTEGER", "Police district"),
    Column("ward", "INTEGER", "City council ward"),
    Column("community_area", "INTEGER", "Community area (77 in Chicago)"),
    Column("fbi_code", "VARCHAR", "FBI NIBRS crime classification"),
    Column("x_coordinate", "DOUBLE", "X coordinate, State Plane Illinois East (feet)"),
    Column("y_coordinate", "DOUBLE", "Y coordinate, State Plane Illinois East (feet)"),
    Column("latitude", "DOUBLE", "Latitude (WGS84), shifted to the block"),
    Column("longitude", "DOUBLE", "Longitude (WGS84), shifted to the block"),
    Column("updated_on", "TIMESTAMP", "When the source last updated the record"),
    Column("month", "VARCHAR", "Partition key (YYYY-MM) of occurred_at"),
    Column("source", "VARCHAR", "Where the row came from (export file or Socrata domain/dataset)"),
)

RAW_QUARANTINE = (
    Column("month", "VARCHAR", "Partition whose load found the row (NULL: export row without a usable date)"),
    Column("reason", "VARCHAR", "Why the row was not loaded: missing_id, invalid_id, missing_date, "
           "unparseable_date, date_has_utc_offset, date_outside_partition, superseded_duplicate"),
    Column("id", "VARCHAR", "The id as found"),
    Column("case_number", "VARCHAR", "The case number as found"),
    Column("date", "VARCHAR", "The occurrence date as found"),
    Column("updated_on", "VARCHAR", "The update time as found"),
    Column("record", "VARCHAR", "The whole source record as JSON text"),
    Column("source", "VARCHAR", "Where the row came from"),
    Column("quarantined_at", "TIMESTAMP", "When the load quarantined it (UTC)"),
)

POLICE_STATIONS = (
    Column("district", "INTEGER", "Police district served (NULL for headquarters)"),
    Column("district_name", "VARCHAR", "District name, e.g. Central"),
    Column("address", "VARCHAR", "Street address (line breaks removed)"),
    Column("zip", "VARCHAR", "ZIP code"),
    Column("latitude", "DOUBLE", "Latitude (WGS84)"),
    Column("longitude", "DOUBLE", "Longitude (WGS84)"),
    Column("is_district_station", "BOOLEAN", "True for the 22 district stations, false for headquarters"),
)

H3_RESOLUTIONS = (6, 7, 8, 9, 10)

ENRICHMENT = (
    Column("geo_status", "VARCHAR", "ok, missing (no coordinates) or outside_chicago (coordinates off the city)"),
    Column("is_geolocated", "BOOLEAN", "geo_status = 'ok'; only these rows get stations and H3 cells"),
    Column("nearest_station_district", "INTEGER", "District of the nearest district police station"),
    Column("nearest_station_name", "VARCHAR", "Name of the nearest district police station"),
    Column("station_distance_m", "DOUBLE", "Great-circle distance to that station in metres"),
    *(Column(f"h3_r{r}", "VARCHAR", f"H3 cell at resolution {r}"
             + (" (computed from the coordinates)" if r == 10 else " (parent of h3_r10)"))
      for r in H3_RESOLUTIONS),
    Column("hour", "INTEGER", "Hour of day of occurred_at (0-23)"),
    Column("day_of_week", "INTEGER", "ISO day of week (1 = Monday ... 7 = Sunday)"),
    Column("is_weekend", "BOOLEAN", "Saturday or Sunday"),
    Column("season", "VARCHAR", "winter (Dec-Feb), spring (Mar-May), summer (Jun-Aug), autumn (Sep-Nov)"),
    Column("time_of_day", "VARCHAR", "night (0-5h), morning (6-11h), afternoon (12-17h), evening (18-23h)"),
    Column("hour_sin", "DOUBLE", "sin(2 pi (hour + minute/60) / 24)"),
    Column("hour_cos", "DOUBLE", "cos(2 pi (hour + minute/60) / 24)"),
    Column("dow_sin", "DOUBLE", "sin(2 pi (day_of_week - 1) / 7)"),
    Column("dow_cos", "DOUBLE", "cos(2 pi (day_of_week - 1) / 7)"),
    Column("month_sin", "DOUBLE", "sin(2 pi (month of year - 1) / 12)"),
    Column("month_cos", "DOUBLE", "cos(2 pi (month of year - 1) / 12)"),
)

INCIDENTS_ENRICHED = RAW_INCIDENTS + ENRICHMENT


def create_table_sql(table: str, columns: tuple[Column, ...]) -> str:
    body = ",\n  ".join(f"{c.name} {c.type}" for c in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  {body}\n)"
