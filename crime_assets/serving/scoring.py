"""Records in, predictions out: the served model on a batch, and the model's refusals as 422 details."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from crime_assets.serving.champion import ServedModel

log = logging.getLogger("uvicorn.error")


def refusal(error: Exception, location: Callable[[int], tuple]) -> dict[str, Any] | None:
    """A record the model refused, as one error in FastAPI's 422 format; None for any other error.

    The model raises a ValueError with ``field`` (the culprit) and ``rows`` (0-based) -- its RecordError,
    recognised by those attributes so that this package needs nothing of the model but ``load_model``.
    ``location(row)`` is where the record sits in the request body."""
    field = getattr(error, "field", None)
    if not isinstance(error, ValueError) or not isinstance(field, str):
        return None
    rows = [int(r) for r in getattr(error, "rows", [])]
    return {"type": "value_error", "loc": [*location(rows[0] if rows else 0), field], "msg": str(error),
            "ctx": {"rows": rows}}


def predictions(served: ServedModel, records: Sequence[dict[str, Any]],
                location: Callable[[int], tuple]) -> list[dict[str, Any]]:
    """``arrest_probability`` (``predict_proba(records)[:, 1]``, the records scored as one batch) and the
    decision at the model's threshold, per record. A record the model refuses raises RequestValidationError
    (422); any other failure of the model, HTTPException 500 that names it (the worker serves on)."""
    try:
        with served.lock:
            p = served.model.predict_proba(list(records))[:, 1]
    except Exception as error:  # noqa: BLE001
        detail = refusal(error, location)
        if detail is not None:
            raise RequestValidationError([detail]) from None
        log.exception("%s v%s failed on %d record(s)", served.name, served.version, len(records))
        raise HTTPException(status_code=500, detail=f"{served.name} v{served.version} could not score the "
                                                    f"record(s): {type(error).__name__}: {error}") from None
    threshold = served.model.threshold
    return [{"id": record["id"], "arrest_probability": float(value), "arrest_predicted": bool(value >= threshold)}
            for record, value in zip(records, p)]
