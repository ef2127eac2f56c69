"""A small Socrata (SODA 2) client on top of sodapy: month windows, paging in id order, visible retries.

Plain Python on purpose (no Dagster import) so it can be tested against a local fake server and
reused by assets, sensors and scripts alike.
"""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata
from urllib3.exceptions import MaxRetryError
from urllib3.util import Retry

log = logging.getLogger(__name__)

# Socrata dataset ids are "four-by-four" (ijzp-q8t2); checking keeps anything else out of the URL path.
_DATASET_ID = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")
_RETRIED_STATUSES = frozenset([429, *range(500, 600)])
# What the request under way is for ("2016-03"), so the retry log can say so (urllib3 only knows the URL).
_request_label: ContextVar[str] = ContextVar("socrata_request_label", default="socrata")


class SocrataFetchError(RuntimeError):
    """A request failed for good, or its answer was not what was asked: names the window label."""


class _LoggedRetry(Retry):
    """urllib3's Retry, saying what failed and how long it waits before each retry."""

    def sleep(self, response: Any = None) -> None:
        last = self.history[-1]
        # Retry-After (seconds or an HTTP date) when the server sent one, else exponential backoff + jitter.
        wait = min((self.get_retry_after(response) if response else None) or self.get_backoff_time(), self.backoff_max)
        log.warning("%s: %s, retry %d of %d in %.2f s", _request_label.get(),
                    f"HTTP {last.status}" if last.status else type(last.error).__name__,
                    len(self.history), len(self.history) + self.total, wait)
        time.sleep(wait)


def soql_window(start: datetime, end: datetime) -> str:
    """The SoQL filter start <= date < end, built only from validated datetimes (never from text)."""
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime):
            raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
        if value.tzinfo is not None:
            # The portal's `date` is a floating timestamp (Chicago local time): an offset would be ignored.
            raise ValueError(f"{name} must be a naive (Chicago local) datetime, got {value.isoformat()}")
        if value.microsecond:
            raise ValueError(f"{name} must be whole seconds, got {value.isoformat()}")
    if not start < end:
        raise ValueError(f"empty window: start {start.isoformat()} is not before end {end.isoformat()}")
    fmt = "%Y-%m-%dT%H:%M:%S"
    return f"date >= '{start.strftime(fmt)}' AND date < '{end.strftime(fmt)}'"


@dataclass
class SocrataClient:
    domain: str  # "data.cityofchicago.org", "https://host" or "http://host:port" (a mirror or a fake)
    app_token: str | None = field(default=None, repr=False)
    page_size: int = 50_000
    timeout: float = 60.0
    max_attempts: int = 6
    # Retry 1 goes at once, retry n waits backoff_base * 2**(n-1) s plus up to backoff_base s of jitter.
    backoff_base: float = 1.0
    backoff_max: float = 60.0  # also caps Retry-After
    _client: Socrata = field(init=False, repr=False)
    _answer: requests.Response | None = field(default=None, init=False, repr=False)
    _warned_no_token: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.page_size < 1 or self.max_attempts < 1:
            raise ValueError("page_size and max_attempts must be at least 1")
        host = self.domain.rstrip("/")
        scheme = "http://" if host.startswith("http://") else "https://"
        host = host.removeprefix(scheme)
        if not host or "/" in host:
            raise ValueError(f"domain must be a host[:port], optionally with http:// or https://: {self.domain!r}")
        retry = _LoggedRetry(total=self.max_attempts - 1, status_forcelist=_RETRIED_STATUSES,
                             backoff_factor=self.backoff_base, backoff_jitter=self.backoff_base,
                             backoff_max=self.backoff_max, raise_on_status=False)  # the last answer names its status
        # sodapy builds "<prefix><domain><path>", the prefix being the mounted adapter's.
        adapter = {"prefix": scheme, "adapter": HTTPAdapter(max_retries=retry)}
        # sodapy warns through the ROOT logger on every construction without a token (and
        # logging.warning() configures an unconfigured root logger as a side effect). We warn once,
        # through our own logger, instead: so give it a placeholder and drop the header again.
        self._client = Socrata(host, self.app_token or "unset", session_adapter=adapter, timeout=self.timeout)
        if not self.app_token:
            self._client.session.headers.pop("X-App-token", None)
        # sodapy's errors about a body name at most its content type: keep the answer to quote it.
        self._client.session.hooks["response"].append(self._keep_answer)

    # -- public API --------------------------------------------------------------------------

    def fetch_window(self, dataset_id: str, start: datetime, end: datetime, label: str) -> list[dict]:
        """Every record with start <= date < end, paged in :id order."""
        return self._fetch_pages(dataset_id, soql_window(start, end), label)

    def fetch_all(self, dataset_id: str) -> list[dict]:
        """Every record of a (small) dataset, e.g. the police stations."""
        return self._fetch_pages(dataset_id, None, dataset_id)

    def window_summary(self, dataset_id: str, start: datetime, end: datetime, label: str | None = None) -> dict:
        """{"rows": N, "max_updated_on": "..." or None} for start <= date < end: cheap change detection."""
        where = soql_window(start, end)
        label = label or f"{start:%Y-%m-%d}..{end:%Y-%m-%d}"
        summary = self._aggregate(label, dataset_id, "count(*), max(updated_on)", where)
        # Socrata leaves max_updated_on out when no row matches.
        return {"rows": int(summary["count"]), "max_updated_on": summary.get("max_updated_on")}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SocrataClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _fetch_pages(self, dataset_id: str, where: str | None, label: str) -> list[dict]:
        # The count is only for progress messages; paging stops at the first short page, which
        # stays right even if the dataset changes between the count and the last page.
        total = int(self._aggregate(label, dataset_id, "count(*)", where)["count"])
        rows: list[dict] = []
        page = 0
        while True:
            # Offset paging is only stable under a total order; :id is Socrata's row identifier.
            batch = self._get(label, dataset_id, where=where, order=":id",
                              limit=self.page_size, offset=page * self.page_size)
            rows.extend(batch)
            page += 1
            log.info("%s: page %d, %d of %d rows", label, page, len(rows), total)
            if len(batch) < self.page_size:
                break
        if len(rows) != total:
            log.warning("%s: counted %d rows but fetched %d (dataset changed while paging?)", label, total, len(rows))
        self._answer = None  # the last page's body, not needed once parsed
        return rows

    def _aggregate(self, label: str, dataset_id: str, select: str, where: str | None) -> dict:
        answer = self._get(label, dataset_id, select=select, where=where)
        # Socrata answers an aggregate as one row, counts as strings: [{"count": "350", ...}].
        if len(answer) != 1 or not str(answer[0].get("count")).isdigit():
            raise self._unexpected(label, dataset_id, f"one row with a count for {select}")
        return answer[0]

    def _get(self, label: str, dataset_id: str, **params: Any) -> list[dict]:
        """One sodapy GET (retried by the adapter's Retry); a list of records, or SocrataFetchError."""
        if not _DATASET_ID.match(dataset_id):
            raise ValueError(f"not a Socrata dataset id: {dataset_id!r}")
        if not self.app_token and not self._warned_no_token:
            log.warning("no SOCRATA_APP_TOKEN: requests are throttled more")
            self._warned_no_token = True
        _request_label.set(label)
        self._answer = None
        try:
            answer = self._client.get(dataset_id, **{k: v for k, v in params.items() if v is not None})
        except requests.HTTPError as exc:  # sodapy raises these, with .response, for non-2xx answers
            status = exc.response.status_code
            failure, last, retried = exc, f"HTTP {status}", status in _RETRIED_STATUSES
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            # Timeouts, refused or dropped connections come retried by the adapter (a MaxRetryError
            # inside); a connection lost while the body is read comes after it, so is not retried.
            gave_up = exc.args[0] if exc.args and isinstance(exc.args[0], MaxRetryError) else None
            failure, last, retried = exc, type(gave_up.reason if gave_up else exc).__name__, gave_up is not None
        except Exception as exc:
            # A 2xx answer sodapy could not read: "Unknown response format" (not JSON) or a JSONDecodeError.
            if self._answer is None:
                raise
            raise self._unexpected(label, dataset_id, "a JSON list of records") from exc
        else:
            if not isinstance(answer, list) or not all(isinstance(row, dict) for row in answer):
                raise self._unexpected(label, dataset_id, "a JSON list of records")
            return answer
        if retried:
            raise SocrataFetchError(f"{label}: gave up after {self.max_attempts} attempts, last error {last}"
                                    f" from dataset {dataset_id}") from failure
        raise SocrataFetchError(
            f"{label}: {last} from dataset {dataset_id} (not retried): {self._redact(failure)}") from failure

    def _keep_answer(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._answer = response

    def _unexpected(self, label: str, dataset_id: str, expected: str) -> SocrataFetchError:
        answer, text = self._answer, self._answer.text
        return SocrataFetchError(
            f"{label}: unexpected answer from dataset {dataset_id}, expected {expected}; got HTTP "
            f"{answer.status_code} {answer.headers.get('Content-Type', 'without a content type')}, "
            + (f"{len(text):,} characters starting: {self._redact(text[:200])}" if text else "empty body"))

    def _redact(self, value: BaseException | str) -> str:
        text = " ".join(str(value).split())
        return text.replace(self.app_token, "***") if self.app_token else text
