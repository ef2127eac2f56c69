"""The scoring service's routes: the registered arrest model over HTTP.

    uvicorn crime_assets.serving.app:app --port 8800      # then http://localhost:8800/docs

``POST /predict`` scores one raw incident record, ``POST /predict/batch`` up to CRIME_SERVING_MAX_BATCH
records as one batch, ``GET /model`` describes the model being served, ``GET /health`` is 200 when one
is loaded and 503 with the reason when not. The model is the version at CRIME_SERVING_MODEL_ALIAS
(default ``champion``) of ARREST_MODEL_NAME in the MLflow store of the settings; the alias is checked
every CRIME_SERVING_REFRESH_SECONDS and a moved alias is followed without a restart.
"""

# No `from __future__ import annotations`: FastAPI reads the annotation of predict_batch, a class made
# in create_app, at definition time.
import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from crime_assets.serving.champion import ChampionWatcher, ServedModel
from crime_assets.serving.schemas import (
    BatchResponse, Health, IncidentRecord, ModelInfo, ModelRef, PredictResponse, batch_request,
)
from crime_assets.serving.scoring import predictions
from crime_assets.common.settings import Settings

UNAVAILABLE = {503: {"model": Health, "description": "no model is loaded (the reason says why)"}}
# Body limits, checked against Content-Length and while the body arrives, before it is parsed (Starlette
# answers 413 "Content Too Large"): a Socrata record is about 0.4 KB of JSON, so 4 KiB a record leaves
# room for the fields other clients add; a body of one record may be 16 times that.
RECORD_BYTES = 4096


async def keep_current(watcher: ChampionWatcher, interval_s: float) -> None:
    """Check the alias now, then every ``interval_s`` seconds after the previous check ended."""
    while True:
        await asyncio.to_thread(watcher.refresh)
        await asyncio.sleep(interval_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: the environment's); its model loads in the background once it starts."""
    settings = settings or Settings.from_env()
    serving = settings.serving
    watcher = ChampionWatcher(settings.mlflow_tracking_uri, settings.arrest_model_name, serving.model_alias)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Listening starts at once: while the first load runs (or when there is nothing to load), /health
        # answers 503 with the reason instead of not answering.
        task = asyncio.create_task(keep_current(watcher, serving.refresh_s))
        try:
            yield
        finally:
            task.cancel()

    record_bytes, batch_bytes = 16 * RECORD_BYTES, serving.max_batch * RECORD_BYTES
    app = FastAPI(title="crime_assets scoring service", lifespan=lifespan, max_body_size=record_bytes,
                  summary=f"P(arrest) of raw Chicago incident records by models:/{settings.arrest_model_name}"
                          f"@{serving.model_alias}")
    app.state.watcher = watcher

    @app.exception_handler(RequestValidationError)
    async def too_many_records(request: Request, error: RequestValidationError):
        # The record count is checked before any record is validated; the list itself is not echoed.
        for problem in error.errors():
            if problem.get("type") == "too_long" and tuple(problem.get("loc", ())) == ("body", "records"):
                sent = problem.get("ctx", {}).get("actual_length")
                return JSONResponse(status_code=413, content={"detail": (
                    f"a batch holds at most {serving.max_batch:,} records (CRIME_SERVING_MAX_BATCH)"
                    + (f", this one {sent:,}" if isinstance(sent, int) else "") + ": split it")})
        return await request_validation_exception_handler(request, error)

    def served() -> ServedModel:
        current = watcher.served
        if current is None:
            raise HTTPException(status_code=503, detail=watcher.problem)
        return current

    BatchRequest = batch_request(serving.max_batch)

    # Plain `def` routes: scoring is CPU work, so it runs in the thread pool and the event loop stays free.
    # They return JSONResponse, built from plain values: response_model documents the body in /docs, and
    # validating our own output again would cost a batch as much as validating its records
    # (test_app checks the answers against these models).
    @app.post("/predict", response_model=PredictResponse, responses=UNAVAILABLE)
    def predict(record: IncidentRecord) -> JSONResponse:
        """Score one raw incident record (Socrata JSON fields)."""
        model = served()
        [prediction] = predictions(model, [record], lambda row: ("body",))
        return JSONResponse({**prediction, "threshold": model.model.threshold,
                             "model": {"name": model.name, "version": model.version}})

    @app.post("/predict/batch", response_model=BatchResponse, max_body_size=batch_bytes, responses={
        **UNAVAILABLE, 413: {"description": f"more than CRIME_SERVING_MAX_BATCH ({serving.max_batch:,}) records, "
                                            f"or a body over {batch_bytes:,} bytes ({RECORD_BYTES:,} a record)"}})
    def predict_batch(batch: BatchRequest) -> JSONResponse:
        """Score up to CRIME_SERVING_MAX_BATCH records together, as load_model().predict_proba(records) does:
        a batch of a day or more of incidents uses its own reporting-delay references (see the README)."""
        model = served()
        scored = predictions(model, batch["records"], lambda row: ("body", "records", row))
        return JSONResponse({"model": {"name": model.name, "version": model.version},
                             "threshold": model.model.threshold, "predictions": scored})

    # Cheap routes are async: they answer even while every pool thread is scoring.
    @app.get("/model", response_model=ModelInfo, responses=UNAVAILABLE)
    async def model_info() -> ModelInfo:
        """The model being served: registry name, version and alias, its months, test metrics, threshold, features."""
        model = served()
        info = model.model.info
        return ModelInfo(
            name=model.name, version=model.version, alias=model.alias, run_id=info.get("run_id"),
            loaded_at=model.loaded_at, train_months=info.get("train_months", []),
            validation_months=info.get("validation_months", []), test_months=info.get("test_months", []),
            test_metrics=info.get("test_metrics", {}), threshold=model.model.threshold,
            features=list(model.model.feature_names))

    @app.get("/health", response_model=Health, responses=UNAVAILABLE)
    async def health():
        """200 while a model is loaded, 503 with the reason while none is."""
        current = watcher.served
        if current is None:
            return JSONResponse(status_code=503, content=Health(
                status="unavailable", alias=watcher.alias, reason=watcher.problem).model_dump())
        return Health(status="ok", alias=current.alias, model=ModelRef(name=current.name, version=current.version),
                      reason=watcher.problem)

    return app


app = create_app()
