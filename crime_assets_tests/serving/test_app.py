"""The scoring service over real HTTP on loopback: its scores are load_model()'s, it follows the alias, and
bad input gets an answer that names the problem."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime, timezone

import mlflow
import numpy as np
import pytest
import xgboost as xgb
from fastapi import HTTPException

from crime_assets import load_model
from crime_assets.serving.app import RECORD_BYTES
from crime_assets.serving.champion import ServedModel
from crime_assets.serving.schemas import EXAMPLE_RECORD, BatchResponse, PredictResponse
from crime_assets.serving.scoring import predictions
from crime_assets_tests.serving.conftest import MAX_BATCH, start_scoring

GOOD = {"id": "1", "case_number": "JA100001", "date": "2015-06-15T23:10:00.000", "primary_type": "NARCOTICS",
        "iucr": "2027", "domestic": False, "latitude": "41.8799", "longitude": "-87.7260"}


def model(store, version):
    return load_model(version=version, tracking_uri=store.uri)


def served_version(response) -> str | None:
    return response.json()["model"]["version"] if response.status_code == 200 else None


# ----------------------------------------------------------------------------------------- scores


def test_predict_scores_one_record_as_load_model_does(store, scoring):
    champion = model(store, store.versions[0])
    with scoring.client() as http:
        for record in store.day[:25]:
            response = http.post("/predict", json=record)
            assert response.status_code == 200, response.text
            body = response.json()
            PredictResponse.model_validate(body)  # the documented schema
            expected = champion.predict_proba([record])[0, 1]
            assert body["arrest_probability"] == expected
            assert body["arrest_predicted"] == bool(expected >= champion.threshold)
            assert body["threshold"] == champion.threshold
            assert body["id"] == record["id"]
            assert body["model"] == {"name": "chicago_arrest", "version": store.versions[0]}


def test_predict_batch_scores_the_batch_as_load_model_does(store, scoring):
    champion = model(store, store.versions[0])
    records = store.day[:MAX_BATCH]
    assert len(records) > 500  # a day of incidents: the batch uses its own reporting-delay references
    with scoring.client() as http:
        response = http.post("/predict/batch", json={"records": records})
        empty = http.post("/predict/batch", json={"records": []})
    assert response.status_code == 200, response.text
    body = response.json()
    BatchResponse.model_validate(body)  # the documented schema
    expected = champion.predict_proba(records)[:, 1]
    assert [p["id"] for p in body["predictions"]] == [r["id"] for r in records]
    assert np.array_equal([p["arrest_probability"] for p in body["predictions"]], expected)
    assert [p["arrest_predicted"] for p in body["predictions"]] == list(expected >= champion.threshold)
    assert body["model"] == {"name": "chicago_arrest", "version": store.versions[0]}
    # Scored together, not one by one: the batch's scores are not those of its records alone.
    alone = np.array([champion.predict_proba([r])[0, 1] for r in records[:50]])
    assert not np.array_equal(alone, expected[:50])
    assert empty.status_code == 200 and empty.json()["predictions"] == []


def test_model_describes_the_served_version(store, scoring):
    champion = model(store, store.versions[0])
    with scoring.client() as http:
        body = http.get("/model").json()
    run = store.client().get_run(champion.info["run_id"])
    assert (body["name"], body["version"], body["alias"], body["run_id"]) == (
        "chicago_arrest", store.versions[0], "champion", run.info.run_id)
    assert body["train_months"] == ["2015-01", "2015-02", "2015-03"]
    assert body["validation_months"] == ["2015-04"] and body["test_months"] == ["2015-05", "2015-06"]
    assert body["test_metrics"]["roc_auc"] == pytest.approx(run.data.metrics["test_roc_auc"])
    assert body["test_metrics"]["mcc"] == pytest.approx(run.data.metrics["test_mcc"])
    assert body["threshold"] == champion.threshold
    assert body["features"] == list(champion.feature_names)


def test_health_and_the_documented_schema(store, scoring):
    with scoring.client() as http:
        health = http.get("/health")
        docs = http.get("/docs")
        schema = http.get("/openapi.json").json()
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "alias": "champion", "reason": None,
                             "model": {"name": "chicago_arrest", "version": store.versions[0]}}
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    record = schema["components"]["schemas"]["IncidentRecord"]
    assert record["examples"] == [EXAMPLE_RECORD]
    assert set(record["required"]) == {"id", "case_number", "date", "primary_type", "iucr", "domestic"}
    assert schema["components"]["schemas"]["BatchRequest"]["properties"]["records"]["maxItems"] == MAX_BATCH
    assert {"/predict", "/predict/batch", "/model", "/health"} <= set(schema["paths"])


def test_the_example_record_of_the_docs_scores(store, scoring):
    with scoring.client() as http:
        response = http.post("/predict", json=EXAMPLE_RECORD)
    assert response.status_code == 200, response.text
    expected = model(store, store.versions[0]).predict_proba([EXAMPLE_RECORD])[0, 1]
    assert response.json()["arrest_probability"] == expected


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("change, field, words", [
    ({"case_number": None}, "case_number", "string"),
    ("drop case_number", "case_number", "required"),
    ({"latitude": "north"}, "latitude", "is not a number: 'north'"),
    ({"latitude": [41.8, -87.7]}, "latitude", ""),
    ({"date": "2015-06-31T10:00:00"}, "date", "is not a date"),
    ({"date": "yesterday"}, "date", "is not a date"),
    ({"id": "A-17"}, "id", "is not a whole number"),
    ({"domestic": "maybe"}, "domestic", "is not true/false"),
    ({"iucr": "  "}, "iucr", "is required but missing or empty"),
    ({"date": "2015-06-15T23:10:00+05:00"}, "date", "has a UTC offset"),
    ({"date": "2015-06-15T23:10:00Z"}, "date", "has a UTC offset"),
    ({"id": "99999999999999999999"}, "id", "beyond the int64 range"),
    ({"id": 99999999999999999999}, "id", "beyond the int64 range"),
])
def test_a_bad_record_gets_422_naming_the_field(scoring, change, field, words):
    if change == "drop case_number":
        record = {k: v for k, v in GOOD.items() if k != "case_number"}
    else:
        record = {**GOOD, **change}
    batch = [GOOD, GOOD, record, GOOD]
    with scoring.client() as http:
        one = http.post("/predict", json=record)
        many = http.post("/predict/batch", json={"records": batch})
    # (a value of the wrong JSON type fails every member of a union: its loc goes on with the member's type)
    assert one.status_code == 422, one.text
    assert one.json()["detail"][0]["loc"][:2] == ["body", field]
    assert words.lower() in one.json()["detail"][0]["msg"].lower()
    assert many.status_code == 422, many.text
    assert many.json()["detail"][0]["loc"][:4] == ["body", "records", 2, field]


def test_requests_that_are_not_records_get_422(scoring):
    with scoring.client() as http:
        not_object = http.post("/predict", json=[GOOD])
        not_json = http.post("/predict", content=b"{'id': 1", headers={"content-type": "application/json"})
        no_records = http.post("/predict/batch", json=[GOOD])
    assert not_object.status_code == not_json.status_code == no_records.status_code == 422
    assert not_json.json()["detail"][0]["type"] == "json_invalid"


def test_an_oversized_batch_gets_413(scoring):
    with scoring.client() as http:
        response = http.post("/predict/batch", json={"records": [GOOD] * (MAX_BATCH + 1)})
        fits = http.post("/predict/batch", json={"records": [GOOD] * MAX_BATCH})
    assert response.status_code == 413
    assert response.json() == {"detail": f"a batch holds at most {MAX_BATCH:,} records (CRIME_SERVING_MAX_BATCH), "
                                         f"this one {MAX_BATCH + 1:,}: split it"}
    assert fits.status_code == 200 and len(fits.json()["predictions"]) == MAX_BATCH


def test_a_body_over_the_limit_gets_413_before_it_is_parsed(scoring):
    # Sizes, not counts: records this long are refused while the body arrives, whatever their number.
    padded = {**GOOD, "notes": "x" * RECORD_BYTES}
    with scoring.client() as http:
        one = http.post("/predict", json={**GOOD, "notes": "x" * 16 * RECORD_BYTES})
        batch = http.post("/predict/batch", json={"records": [padded] * MAX_BATCH})
        after = http.post("/predict/batch", json={"records": [padded] * (MAX_BATCH // 2)})
    assert one.status_code == batch.status_code == 413, (one.text, batch.text)
    assert one.text == batch.text == "Content Too Large"  # Starlette's answer, sent before the body is read
    assert after.status_code == 200 and len(after.json()["predictions"]) == MAX_BATCH // 2
    scoring.service.assert_running()


def test_a_failure_of_the_model_is_a_500_that_names_it(store):
    # A real failure that is not a refused record: the version's booster expects 2 features, not the model's.
    broken = model(store, store.versions[0])
    X = np.zeros((4, 2), np.float32)
    broken = dataclasses.replace(broken, booster=xgb.train({}, xgb.DMatrix(X, label=[0, 1, 0, 1]), 1))
    served = ServedModel(broken, "chicago_arrest", store.versions[0], "champion", datetime.now(timezone.utc))
    with pytest.raises(HTTPException) as failure:
        predictions(served, store.day[:3], lambda row: ("body", "records", row))
    assert failure.value.status_code == 500
    assert failure.value.detail == (f"chicago_arrest v{store.versions[0]} could not score the record(s): "
                                    f"ValueError: Feature shape mismatch, expected: 2, got {len(broken.feature_names)}")
    assert not served.lock.locked()


def test_a_refused_record_does_not_stop_the_worker(scoring):
    odd = [{**GOOD, "date": "2015-06-15T23:10:00+05:00"}, {**GOOD, "id": "99999999999999999999"}]
    with scoring.client() as http:
        answers = [http.post("/predict", json=record) for record in odd]
        after = http.post("/predict", json=GOOD)
    assert [answer.status_code for answer in answers] == [422, 422], [answer.text for answer in answers]
    assert after.status_code == 200
    scoring.service.assert_running()


# ----------------------------------------------------------------------------------- the alias


def test_a_moved_alias_is_served_without_a_restart(store, scoring):
    first, second = store.versions
    records = store.day[:300]
    try:
        store.set_champion(second)
        scoring.wait_for(f"v{second} served", lambda r: served_version(r) == second, timeout=30)
        with scoring.client() as http:
            batch = http.post("/predict/batch", json={"records": records}).json()
            info = http.get("/model").json()
        expected = model(store, second).predict_proba(records)[:, 1]
        assert batch["model"]["version"] == info["version"] == second
        assert np.array_equal([p["arrest_probability"] for p in batch["predictions"]], expected)
        assert not np.array_equal(expected, model(store, first).predict_proba(records)[:, 1])
        assert info["threshold"] == model(store, second).threshold
    finally:
        store.set_champion(first)
        scoring.wait_for(f"v{first} served again", lambda r: served_version(r) == first, timeout=30)


def test_no_request_sees_half_a_swap(store, scoring):
    """While the alias flips between the two versions, every answer's scores are those of the version it names."""
    records = store.day[:40]
    expected = {v: [float(p) for p in model(store, v).predict_proba(records)[:, 1]] for v in store.versions}
    assert expected[store.versions[0]] != expected[store.versions[1]]
    answers, failures, stop = [], [], threading.Event()

    def client():
        with scoring.client() as http:
            while not stop.is_set():
                response = http.post("/predict/batch", json={"records": records})
                if response.status_code != 200:
                    failures.append(response.text)
                    return
                body = response.json()
                answers.append((body["model"]["version"], [p["arrest_probability"] for p in body["predictions"]]))

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for version in [*store.versions[::-1], *store.versions]:  # v2, v1, v2, v1
            store.set_champion(version)
            scoring.wait_for(f"v{version} served", lambda r: served_version(r) == version, timeout=30)
            time.sleep(0.5)
    finally:
        store.set_champion(store.versions[0])
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not failures
    assert {version for version, _ in answers} == set(store.versions)
    mixed = [version for version, scores in answers if scores != expected[version]]
    assert not mixed, f"{len(mixed)} of {len(answers)} answers scored with another model than they name"


# -------------------------------------------------------------------------------- no model (503)


def test_503_until_a_model_is_registered_then_served_without_a_restart(store, tmp_path):
    later = start_scoring(store.settings.data_dir, tmp_path, ARREST_MODEL_NAME="serving_later")
    try:
        later.wait_for("the first look at the registry", lambda r: "first load" not in r.json()["reason"])
        with later.client() as http:
            health, predict, info = http.get("/health"), http.post("/predict", json=GOOD), http.get("/model")
        assert health.status_code == predict.status_code == info.status_code == 503
        reason = health.json()["reason"]
        assert health.json()["status"] == "unavailable" and health.json()["model"] is None
        assert "model 'serving_later' has no alias 'champion'" in reason and "nothing is registered" in reason
        assert predict.json()["detail"] == reason

        # Register the first version's model under that name and point the alias at it.
        mlflow.set_tracking_uri(store.uri)
        mlflow.set_registry_uri(store.uri)
        source = store.client().get_model_version("chicago_arrest", store.versions[0]).source
        version = mlflow.register_model(source, "serving_later").version
        store.set_champion(str(version), name="serving_later")
        health = later.wait_for("serving_later served", lambda r: r.status_code == 200, timeout=30)
        assert health.json()["model"] == {"name": "serving_later", "version": str(version)}
        with later.client() as http:
            scored = http.post("/predict", json=GOOD).json()
        assert scored["arrest_probability"] == model(store, store.versions[0]).predict_proba([GOOD])[0, 1]
    finally:
        later.service.stop()


def test_503_without_a_model_store(tmp_path):
    empty = start_scoring(tmp_path / "no_data_yet", tmp_path)
    try:
        empty.wait_for("the first look for the store", lambda r: "first load" not in r.json()["reason"])
        with empty.client() as http:
            health, batch = http.get("/health"), http.post("/predict/batch", json={"records": [GOOD]})
        assert health.status_code == batch.status_code == 503
        assert health.json()["reason"].startswith(f"no MLflow store at sqlite:///{tmp_path / 'no_data_yet'}")
        assert not (tmp_path / "no_data_yet").exists()  # looking created nothing
    finally:
        empty.service.stop()


def test_serving_settings_name_the_bad_variable():
    from crime_assets.common.settings import Settings

    assert Settings.from_env({}).serving.max_batch == 10_000
    for variable, value in (("CRIME_SERVING_MAX_BATCH", "0"), ("CRIME_SERVING_REFRESH_SECONDS", "soon"),
                            ("CRIME_SERVING_MODEL_ALIAS", "new champion")):
        with pytest.raises(ValueError, match=variable):
            Settings.from_env({variable: value})
