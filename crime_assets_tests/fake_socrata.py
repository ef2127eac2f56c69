"""A fake Socrata (SODA 2) server on loopback, with fault injection, for tests over real HTTP.

It understands exactly what ``crime_assets.ingestion.socrata.SocrataClient`` sends and answers
HTTP 400 to anything else, so a test passing here proves the client sends only those queries.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter, deque
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

_TS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?"
_WHERE = re.compile(rf"^date >= '({_TS})' AND date < '({_TS})'$")
_RESOURCE = re.compile(r"^/resource/([a-z0-9]{4}-[a-z0-9]{4})\.json$")


class FakeSocrata:
    """``FakeSocrata({"ijzp-q8t2": [record, ...]})``; use as a context manager; ``.domain`` to connect.

    Faults (``fail_next``), consumed one per request in order:
      ("status", 429, {"Retry-After": "1"})  answer that status with those headers
      ("sleep", seconds)                     wait, then answer normally (longer than the client timeout)
      ("drop",)                              close the connection without any answer
      ("ok",)                                answer normally (to aim a later fault at a given request)
      ("body", content_type, text)           answer 200 with that body as it is (an HTML page, an object)
      ("truncate", chars)                    answer normally, the JSON cut after that many characters
      ("cut", chars)                         announce the whole answer, close the connection after chars
      ("rows_for_aggregates",)               answer an aggregate ($select) query with the rows instead
    ``fail_always(fault)`` answers every request with that fault (a status number for ("status", n, {}))
    until ``clear_faults()``.
    ``ignore_where_for``: months ("2016-04") for which the date filter is ignored, so the server
    answers every row of the dataset (a source returning rows outside the month asked for).
    ``requests`` lists every request as {"path", "dataset", "query", "fault", "sent"} ("sent": the first
    1,000 characters of the body answered);
    ``token_counts`` counts the X-App-Token values seen (a Counter: compare, do not print).
    """

    def __init__(self, rows: dict[str, list[dict]], ignore_where_for: set[str] | None = None) -> None:
        self.rows = rows
        self.ignore_where_for = set(ignore_where_for or ())
        self.requests: list[dict[str, Any]] = []
        self.token_counts: Counter[str | None] = Counter()
        self._faults: deque[tuple] = deque()
        self._always: tuple | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        # A short poll interval makes close() quick (shutdown waits for the serve loop to poll).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                                        name="fake-socrata")

    @property
    def domain(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeSocrata:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # cuts "sleep" faults short
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSocrata:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fail_next(self, *faults: tuple) -> None:
        with self._lock:
            self._faults.extend(faults)

    def fail_always(self, fault: int | tuple) -> None:
        self._always = ("status", fault, {}) if isinstance(fault, int) else fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._always = None

    # called from handler threads
    def _next_fault(self) -> tuple | None:
        with self._lock:
            if self._always is not None:
                return self._always
            return self._faults.popleft() if self._faults else None

    def _record(self, entry: dict[str, Any], token: str | None) -> None:
        with self._lock:
            self.requests.append(entry)
            self.token_counts[token] += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # do not wait for handlers still sleeping when the test is over
    fake: FakeSocrata


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        match = _RESOURCE.match(url.path)
        fault = fake._next_fault()
        self.entry = {"path": url.path, "dataset": match and match.group(1), "query": dict(query), "fault": fault,
                      "sent": ""}
        fake._record(self.entry, self.headers.get("X-App-Token"))
        kind = fault[0] if fault else "ok"
        if kind == "status":
            return self._send(fault[1], {"error": True, "message": f"injected {fault[1]}"}, fault[2])
        if kind == "drop":
            self.close_connection = True
            return  # nothing written: the client sees the connection closed
        if kind == "body":
            return self._send(200, fault[2], content_type=fault[1])
        if kind == "sleep":
            if fake._closing.wait(fault[1]):
                return
        elif kind == "rows_for_aggregates":
            query.pop("$select", None)
        elif kind not in ("ok", "truncate", "cut"):
            raise ValueError(f"unknown fault {fault!r}")
        if not match or match.group(1) not in fake.rows:
            return self._send(404, {"code": "not_found", "error": True, "message": f"no dataset at {url.path}"})
        try:
            body = json.dumps(_answer(fake.rows[match.group(1)], query, fake.ignore_where_for))
        except ValueError as exc:
            return self._send(400, {"code": "query.soql.invalid", "error": True, "message": str(exc)})
        self._send(200, body[:fault[1]] if kind == "truncate" else body, cut=fault[1] if kind == "cut" else None)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json;charset=utf-8", cut: int | None = None) -> None:
        """``body``: text as it is, or anything else as JSON; ``cut``: bytes written of it before closing."""
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.entry["sent"] = data[:cut][:1000].decode(errors="replace")
        self.close_connection = self.close_connection or cut is not None
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data[:cut])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before we answered


def _answer(records: list[dict], query: dict[str, str], ignore_where_for: set[str] = frozenset()) -> list[dict]:
    """Evaluate the supported SoQL subset; ValueError (-> 400) for anything else."""
    known = {"$where", "$order", "$limit", "$offset", "$select"}
    if set(query) - known:
        raise ValueError(f"unsupported parameters {sorted(set(query) - known)}")
    rows = records
    if "$where" in query:
        match = _WHERE.match(query["$where"])
        if not match:
            raise ValueError(f"unsupported $where {query['$where']!r}")
        low, high = (datetime.fromisoformat(t) for t in match.groups())
        if low.strftime("%Y-%m") not in ignore_where_for:
            rows = [r for r in rows if "date" in r and low <= datetime.fromisoformat(r["date"]) < high]
    select = query.get("$select")
    if select == "count(*)":
        return [{"count": str(len(rows))}]
    if select == "count(*), max(updated_on)":
        answer = {"count": str(len(rows))}
        stamps = [r["updated_on"] for r in rows if r.get("updated_on")]
        if stamps:  # like Socrata: the key is absent when nothing matched
            answer["max_updated_on"] = max(stamps, key=datetime.fromisoformat)
        return [answer]
    if select is not None:
        raise ValueError(f"unsupported $select {select!r}")
    order = query.get("$order")
    if order == ":id":
        # Crime records carry a numeric "id"; for others (stations) the stored order stands in for :id.
        if all("id" in r for r in rows):
            rows = sorted(rows, key=lambda r: int(r["id"]))
    elif order is not None:
        raise ValueError(f"unsupported $order {order!r}")
    try:
        offset = int(query.get("$offset", "0"))
        limit = int(query.get("$limit", "1000"))  # Socrata's default page
    except ValueError:
        raise ValueError("$limit and $offset must be whole numbers") from None
    if offset < 0 or limit < 0:
        raise ValueError("$limit and $offset must not be negative")
    return rows[offset:offset + limit]


# -- building API-style records from the portal's bulk export --------------------------------

_EXPORT_DATE = "%m/%d/%Y %I:%M:%S %p"
_BOOLEAN_FIELDS = {"arrest", "domestic"}
_DATE_FIELDS = {"date", "updated_on"}


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def export_rows_to_api_records(df: pd.DataFrame) -> list[dict]:
    """Bulk-export rows (Title Case headers, text values) -> records as the SODA JSON API returns them.

    Lower-case snake keys, ISO dates ("2016-03-01T12:00:00.000"), booleans for Arrest/Domestic,
    numbers kept as strings, empty fields left out, ``year`` from the date and ``location`` as an
    object when coordinates exist (the export's "(lat, lon)" text is dropped).
    """
    records = []
    for raw in df.to_dict("records"):
        record: dict[str, Any] = {}
        for name, value in raw.items():
            if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
                continue
            key, text = _snake(str(name)), str(value).strip()
            if key == "location":
                continue
            if key in _DATE_FIELDS:
                text = datetime.strptime(text, _EXPORT_DATE).strftime("%Y-%m-%dT%H:%M:%S.000")
            if key in _BOOLEAN_FIELDS:
                record[key] = text.lower() == "true"
            else:
                record[key] = text
        if "date" in record:
            record["year"] = record["date"][:4]
        if "latitude" in record and "longitude" in record:
            record["location"] = {"latitude": record["latitude"], "longitude": record["longitude"],
                                  "human_address": '{"address": "", "city": "", "state": "", "zip": ""}'}
        records.append(record)
    return records
