"""Request and response bodies of the scoring service (pydantic; /docs shows them).

A record is one raw incident as the Socrata JSON API returns it -- the fields ``load_model().predict_proba``
reads, plus any others, which are passed along and ignored. The types here are the JSON shapes the
source uses (Socrata sends numbers as text, codes such as IUCR only as text); whether a value is usable
(a date that parses, a latitude that is a number) is judged by the model itself, the one place that
rule lives, and its refusals come back as 422 naming the field like those of these schemas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, with_config
from typing_extensions import NotRequired, TypedDict

EXAMPLE_RECORD = {
    "id": "10801130", "case_number": "JA100001", "date": "2016-12-31T23:10:00.000", "block": "043XX W MADISON ST",
    "primary_type": "NARCOTICS", "iucr": "2027", "description": "POSS: CRACK", "location_description": "STREET",
    "fbi_code": "18", "domestic": False, "beat": "1112", "district": "011", "ward": "28", "community_area": "26",
    "latitude": "41.8799", "longitude": "-87.7260",
}

Text = str | None
WholeNumber = int | str | None   # "1112" from Socrata, 1112 from other clients
Decimal = float | str | None     # "41.8799" from Socrata


# TypedDicts, not models: a validated record stays the dict that was sent (unknown fields included),
# which is what predict_proba is given, and validating a batch costs a third of building models.
@with_config(ConfigDict(extra="allow"))
class Location(TypedDict, total=False):
    """Socrata's ``location`` object; its coordinates are used when ``latitude`` / ``longitude`` are absent."""

    latitude: Decimal
    longitude: Decimal


@with_config(ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLE_RECORD]}))
class IncidentRecord(TypedDict):
    """One raw incident record (Socrata JSON field names). Required: id, case_number, date, primary_type,
    iucr, domestic; a missing optional field is scored as not known. Other fields are allowed and ignored."""

    id: Annotated[int | str, Field(description="the record id, a whole number")]
    case_number: str
    date: Annotated[str, Field(description="when it occurred, Chicago time: ISO 8601 (2016-12-31T23:10:00.000) "
                                           "or the bulk export's 12/31/2016 11:10:00 PM")]
    primary_type: str
    iucr: str
    domestic: Annotated[bool | str, Field(description="true/false (also the texts true, t, 1, y, yes and "
                                                      "false, f, 0, n, no)")]
    block: NotRequired[Text]
    location_description: NotRequired[Text]
    fbi_code: NotRequired[Text]
    beat: NotRequired[WholeNumber]
    district: NotRequired[WholeNumber]
    ward: NotRequired[WholeNumber]
    community_area: NotRequired[WholeNumber]
    latitude: NotRequired[Decimal]
    longitude: NotRequired[Decimal]
    location: NotRequired[Annotated[Location | str | None, Field(description="Socrata's location object, "
                                                                            "or \"(lat, lon)\"")]]


def batch_request(max_records: int) -> type:
    """The body of ``POST /predict/batch``, holding at most ``max_records`` records (CRIME_SERVING_MAX_BATCH)."""
    body = TypedDict("BatchRequest", {"records": Annotated[list[IncidentRecord], Field(
        max_length=max_records, description=f"up to {max_records:,} records, scored together as one batch",
        examples=[[EXAMPLE_RECORD]])]})
    body.__pydantic_config__ = ConfigDict(extra="forbid")
    return body


class ModelRef(BaseModel):
    name: str
    version: str


class Prediction(BaseModel):
    id: int | str = Field(description="the record's id, as sent")
    arrest_probability: float = Field(description="P(arrest), from load_model().predict_proba")
    arrest_predicted: bool = Field(description="arrest_probability >= the model's threshold")


class PredictResponse(Prediction):
    threshold: float
    model: ModelRef


class BatchResponse(BaseModel):
    model: ModelRef
    threshold: float
    predictions: list[Prediction] = Field(description="one per record, in the order sent")


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str | None
    loaded_at: datetime
    train_months: list[str]
    validation_months: list[str]
    test_months: list[str]
    test_metrics: dict[str, float]
    threshold: float
    features: list[str]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    alias: str
    model: ModelRef | None = None
    reason: str | None = Field(default=None, description="why no model is served, or why the last check of the "
                                                         "alias failed while the loaded model is still served")
