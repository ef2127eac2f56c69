"""SocrataClient over real HTTP against a loopback FakeSocrata: paging, retries, validation, token hygiene."""

from __future__ import annotations

import logging
import random
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest

from crime_assets.ingestion.socrata import SocrataClient, SocrataFetchError
from crime_assets_tests.fake_socrata import FakeSocrata, export_rows_to_api_records

REPO = Path(__file__).parents[2]
REAL_2016 = REPO.parent / "shared/data/chicago/crimes_2016.csv.gz"
SAMPLE_2016 = REPO / "crime_assets/sample_data/crimes_2016.csv.zst"
STATIONS = REPO / "crime_assets/sample_data/police_stations.csv"

CRIMES, STATIONS_ID = "ijzp-q8t2", "z8bn-74gv"
MARCH = (datetime(2016, 3, 1), datetime(2016, 4, 1))
MARCH_WHERE = "date >= '2016-03-01T00:00:00' AND date < '2016-04-01T00:00:00'"
LOGGER = "crime_assets.ingestion.socrata"
TOKEN = "tok-3f9a1c77e2b4-do-not-leak"


@pytest.fixture(scope="module")
def records() -> dict[str, list[dict]]:
    """350 real March 2016 incidents (5 at exactly the lower bound) and 45 just outside the month."""
    path = REAL_2016 if REAL_2016.exists() else SAMPLE_2016
    con = duckdb.connect()
    # One scan of the export; the picks below come from this small table.
    con.execute(f"""create table spring as select * from read_csv('{path}', all_varchar=true, header=true)
                    where "Date" like '02/%/2016 %' or "Date" like '03/%/2016 %' or "Date" like '04/01/2016 %'""")

    def pick(where: str, limit: int) -> list[dict]:
        df = con.sql(f'select * from spring where {where} order by hash("ID") limit {limit}').df()
        return export_rows_to_api_records(df)

    lower, upper = "'03/01/2016 12:00:00 AM'", "'04/01/2016 12:00:00 AM'"
    march = pick(f'"Date" = {lower}', 5) + pick(f'"Date" like \'03/%\' and "Date" <> {lower}', 345)
    outside = (pick(f'"Date" = {upper}', 5)  # exactly the (exclusive) upper bound
               + pick('"Date" like \'02/%\'', 20) + pick(f'"Date" like \'04/%\' and "Date" <> {upper}', 20))
    return {"march": march, "outside": outside}


@pytest.fixture
def server(records):
    rows = records["march"] + records["outside"]
    random.Random(7).shuffle(rows)  # stored out of id order: only $order=:id gives a stable paging
    stations = export_rows_to_api_records(duckdb.sql(
        f"select * from read_csv('{STATIONS}', all_varchar=true, header=true)").df())
    with FakeSocrata({CRIMES: rows, STATIONS_ID: stations}) as fake:
        yield fake


def client_for(server: FakeSocrata, **kwargs) -> SocrataClient:
    options = {"page_size": 100, "timeout": 5.0, "max_attempts": 4, "backoff_base": 0.01, "backoff_max": 2.0}
    return SocrataClient(server.domain, **(options | kwargs))


def march_ids(records) -> list[str]:
    return sorted((r["id"] for r in records["march"]), key=int)


def test_fetch_window_pages_in_id_order_and_logs_progress(server, records, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    rows = client_for(server).fetch_window(CRIMES, *MARCH, label="2016-03")

    assert [r["id"] for r in rows] == march_ids(records)  # every March row once, in id order
    assert all(r["date"].startswith("2016-03-") for r in rows)
    count, *pages = server.requests
    assert count["query"] == {"$select": "count(*)", "$where": MARCH_WHERE}
    assert [p["query"]["$offset"] for p in pages] == ["0", "100", "200", "300"]
    assert all(p["query"] == {"$where": MARCH_WHERE, "$order": ":id", "$limit": "100",
                              "$offset": p["query"]["$offset"]} for p in pages)
    progress = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert progress == [f"2016-03: page {n}, {min(100 * n, 350)} of 350 rows" for n in (1, 2, 3, 4)]


def test_fetch_all_and_window_summary(server, records):
    client = client_for(server, page_size=10, app_token=TOKEN)
    stations = client.fetch_all(STATIONS_ID)
    assert len(stations) == 23 and {"district", "district_name", "latitude"} <= set(stations[0])
    assert [p["query"]["$offset"] for p in server.requests[1:]] == ["0", "10", "20"]

    summary = client.window_summary(CRIMES, *MARCH)
    assert summary == {"rows": 350, "max_updated_on": max(r["updated_on"] for r in records["march"])}
    assert server.requests[-1]["query"] == {"$select": "count(*), max(updated_on)", "$where": MARCH_WHERE}
    empty = client.window_summary(CRIMES, datetime(2030, 1, 1), datetime(2030, 2, 1))
    assert empty == {"rows": 0, "max_updated_on": None}


@pytest.mark.parametrize("faults, first_status", [
    ((("status", 429, {"Retry-After": "1"}),), "HTTP 429"),
    ((("status", 500, {}),), "HTTP 500"),
    ((("status", 503, {}), ("status", 503, {})), "HTTP 503"),
    ((("sleep", 2.0),), "ReadTimeoutError"),
    ((("drop",),), "ProtocolError"),
    ((("ok",), ("ok",), ("status", 503, {}), ("drop",)), "HTTP 503"),  # page 2 fails twice, then resumes
], ids=["429-retry-after", "500", "503-twice", "timeout", "dropped", "mid-paging"])
def test_transient_faults_are_retried(server, records, caplog, faults, first_status):
    caplog.set_level(logging.INFO, logger=LOGGER)
    server.fail_next(*faults)
    rows = client_for(server, timeout=0.5).fetch_window(CRIMES, *MARCH, label="2016-03")

    assert [r["id"] for r in rows] == march_ids(records)
    retries = [r.getMessage() for r in caplog.records if r.name == LOGGER and "retry" in r.getMessage()]
    assert len(retries) == len([f for f in faults if f[0] != "ok"])
    assert retries[0].startswith(f"2016-03: {first_status}, retry 1 of 3 in ")
    assert all(f"retry {n} of 3 in " in message for n, message in enumerate(retries, 1))
    if first_status == "HTTP 429":
        assert retries[0].endswith("in 1.00 s")  # Retry-After honoured
    # A retried request repeats the same query: offsets still run 0, 100, 200, 300 without gaps.
    offsets = [r["query"].get("$offset") for r in server.requests if r["fault"] in (None, ("ok",))]
    assert offsets == [None, "0", "100", "200", "300"]


@pytest.mark.parametrize("fault, last_error", [(503, "HTTP 503"), (("drop",), "ProtocolError")])
def test_persistent_failure_gives_up_after_max_attempts(server, caplog, fault, last_error):
    caplog.set_level(logging.INFO, logger=LOGGER)
    server.fail_always(fault)
    with pytest.raises(SocrataFetchError) as raised:
        client_for(server).fetch_window(CRIMES, *MARCH, label="2016-03")
    message = str(raised.value)
    assert "2016-03" in message and f"last error {last_error}" in message and "4 attempts" in message
    assert len(server.requests) == 4
    # Exponential backoff with jitter (backoff_base 0.01): at once, then 0.02 and 0.04 s, each + up to 0.01 s.
    waits = [float(r.getMessage().split(" in ")[-1].removesuffix(" s")) for r in caplog.records
             if r.name == LOGGER and "retry" in r.getMessage()]
    assert len(waits) == 3 and waits[0] == 0.0
    assert 0.02 <= waits[1] <= 0.03 and 0.04 <= waits[2] <= 0.05


def test_connection_cut_mid_answer_is_a_named_error(server):
    server.fail_next(("ok",), ("cut", 3000))  # the first page: announced whole, 3,000 bytes sent
    with pytest.raises(SocrataFetchError) as raised:
        client_for(server).fetch_window(CRIMES, *MARCH, label="2016-03")
    message = str(raised.value)
    assert message.startswith(f"2016-03: ChunkedEncodingError from dataset {CRIMES} (not retried)")
    assert "IncompleteRead(3000 bytes read" in message


def html_page(title: str) -> str:
    return (f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>The data portal is"
            f" down for maintenance. Request token {TOKEN} logged. {'Please come back later. ' * 10}</p></body></html>")


JSON, RECORDS = "application/json", "a JSON list of records; got HTTP 200"


@pytest.mark.parametrize("call, faults, expected", [
    ("fetch", [("rows_for_aggregates",)], f"one row with a count for count(*); got HTTP 200 {JSON}"),
    ("summary", [("rows_for_aggregates",)], "one row with a count for count(*), max(updated_on); got HTTP 200"),
    ("fetch", [("ok",), ("body", JSON, '{"data": [{"id": "1"}], "meta": {"view": "ijzp-q8t2"}}')], f"{RECORDS} {JSON}"),
    ("fetch", [("ok",), ("body", JSON, '["10000001", "10000002"]')], RECORDS),
    ("fetch", [("ok",), ("body", "text/html; charset=utf-8", html_page("Maintenance"))],
     f"{RECORDS} text/html; charset=utf-8"),
    ("summary", [("body", JSON, html_page("Gateway"))], f"{RECORDS} {JSON}"),
    ("fetch", [("ok",), ("truncate", 5000)], f"{RECORDS} {JSON};charset=utf-8, 5,000 characters starting: [{{"),
    ("fetch", [("ok",), ("body", JSON, "")], f"{RECORDS} {JSON}, empty body"),
], ids=["rows-for-count", "rows-for-summary", "object", "list-of-ids", "html", "html-as-json", "truncated", "empty"])
def test_an_answer_of_the_wrong_shape_is_a_named_error(server, call, faults, expected):
    client = client_for(server, app_token=TOKEN)
    server.fail_next(*faults)
    with pytest.raises(SocrataFetchError) as raised:
        if call == "fetch":
            client.fetch_window(CRIMES, *MARCH, label="2016-03")
        else:
            client.window_summary(CRIMES, *MARCH, label="2016-03 (summary)")
    message = str(raised.value)
    assert len(server.requests) == len(faults)  # failed at the bad answer, not retried
    sent = server.requests[-1]["sent"]
    assert message.startswith(f"2016-03{' (summary)' if call == 'summary' else ''}: unexpected answer from dataset"
                              f" {CRIMES}, expected {expected}")
    start = " ".join(sent[:200].split()).replace(TOKEN, "***")
    assert message.endswith(f"characters starting: {start}" if sent else "empty body")
    assert TOKEN not in message and TOKEN not in repr(raised.value)


@pytest.mark.parametrize("status", [400, 404])
def test_client_errors_are_not_retried(server, status):
    dataset = CRIMES
    if status == 404:
        dataset = "abcd-1234"  # unknown dataset: the fake answers 404
    else:
        server.fail_next(("status", 400, {}))
    with pytest.raises(SocrataFetchError, match=f"2016-03: HTTP {status} .*not retried"):
        client_for(server).fetch_window(dataset, *MARCH, label="2016-03")
    assert len(server.requests) == 1


@pytest.mark.parametrize("start, end, error", [
    ("2016-03-01", datetime(2016, 4, 1), TypeError),
    (datetime(2016, 3, 1), "2016-04-01' OR 1=1 OR date > '", TypeError),
    (date(2016, 3, 1), date(2016, 4, 1), TypeError),
    (datetime(2016, 3, 1, tzinfo=timezone.utc), datetime(2016, 4, 1, tzinfo=timezone.utc), ValueError),
    (datetime(2016, 4, 1), datetime(2016, 3, 1), ValueError),
])
def test_bounds_must_be_datetimes_checked_before_any_request(server, start, end, error):
    client = client_for(server)
    with pytest.raises(error):
        client.fetch_window(CRIMES, start, end, label="2016-03")
    with pytest.raises(error):
        client.window_summary(CRIMES, start, end)
    assert server.requests == []


def test_app_token_sent_but_never_logged_or_raised(server, caplog):
    caplog.set_level(logging.DEBUG)  # everything, urllib3's request lines included
    client = client_for(server, app_token=TOKEN)
    server.fail_next(("status", 500, {}))
    client.fetch_window(CRIMES, *MARCH, label="2016-03")
    server.fail_always(503)
    with pytest.raises(SocrataFetchError) as raised:
        client.fetch_window(CRIMES, *MARCH, label="2016-03")

    assert set(server.token_counts) == {TOKEN} and server.token_counts[TOKEN] == len(server.requests)
    assert not any("SOCRATA_APP_TOKEN" in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(r.msg) + repr(r.args) for r in caplog.records)
    assert TOKEN not in str(raised.value) and TOKEN not in repr(raised.value.__cause__)
    assert TOKEN not in repr(client)


def test_without_token_one_warning_per_client(server, caplog):
    caplog.set_level(logging.INFO)
    client = client_for(server)
    client.fetch_window(CRIMES, *MARCH, label="2016-03")
    client.fetch_all(STATIONS_ID)
    client.window_summary(CRIMES, *MARCH)

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["no SOCRATA_APP_TOKEN: requests are throttled more"]
    assert warnings[0].name == LOGGER  # and none from sodapy through the root logger
    assert set(server.token_counts) == {None}
