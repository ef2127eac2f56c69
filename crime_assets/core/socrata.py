"""A small Socrata (SODA 2) client on top of sodapy: month windows, paging in id order, visible retries.

Plain Python on purpose (no Dagster import) so it can be tested against a local fake server and
reused by assets, sensors and scripts alike.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata

log = logging.getLogger(__name__)

# Socrata dataset ids are "four-by-four" (ijzp-q8t2); checking keeps anything else out of the URL path.
_DATASET_ID = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")
# Transport failures worth another try: timeouts, refused/reset/dropped connections, a body cut short.
_RETRYABLE_ERRORS = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


class SocrataFetchError(RuntimeError):
    """A request failed for good: names the window label, the attempts made and the last status."""


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
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    logger: logging.Logger = field(default=log, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    _client: Socrata = field(init=False, repr=False)
    _warned_no_token: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.page_size < 1 or self.max_attempts < 1:
            raise ValueError("page_size and max_attempts must be at least 1")
        host, adapter = self.domain.rstrip("/"), None
        if host.startswith("http://"):
            host = host.removeprefix("http://")
            # sodapy builds "<prefix><domain><path>", the prefix being the adapter's; mounting a plain
            # adapter is how it talks plain HTTP. Default adapters retry nothing: our loop does that.
            adapter = {"prefix": "http://", "adapter": HTTPAdapter()}
        host = host.removeprefix("https://")
        if not host or "/" in host:
            raise ValueError(f"domain must be a host[:port], optionally with http:// or https://: {self.domain!r}")
        # sodapy warns through the ROOT logger on every construction without a token (and
        # logging.warning() configures an unconfigured root logger as a side effect). We warn once,
        # through our own logger, instead: so give it a placeholder and drop the header again.
        self._client = Socrata(host, self.app_token or "unset", session_adapter=adapter, timeout=self.timeout)
        if not self.app_token:
            self._client.session.headers.pop("X-App-token", None)

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
        answer = self._get(label, dataset_id, select="count(*), max(updated_on)", where=where)
        first = answer[0] if answer else {}
        # Socrata answers counts as strings and leaves max_updated_on out when no row matches.
        return {"rows": int(first.get("count", 0)), "max_updated_on": first.get("max_updated_on")}

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
        counted = self._get(label, dataset_id, select="count(*)", where=where)
        total = int(counted[0]["count"]) if counted else 0
        rows: list[dict] = []
        page = 0
        while True:
            # Offset paging is only stable under a total order; :id is Socrata's row identifier.
            batch = self._get(label, dataset_id, where=where, order=":id",
                              limit=self.page_size, offset=page * self.page_size)
            rows.extend(batch)
            page += 1
            self.logger.info("%s: page %d, %d of %d rows", label, page, len(rows), total)
            if len(batch) < self.page_size:
                break
        if len(rows) != total:
            self.logger.warning("%s: counted %d rows but fetched %d (dataset changed while paging?)",
                                label, total, len(rows))
        return rows

    def _get(self, label: str, dataset_id: str, **params: Any) -> list[dict]:
        """One sodapy GET with our retry policy around it."""
        if not _DATASET_ID.match(dataset_id):
            raise ValueError(f"not a Socrata dataset id: {dataset_id!r}")
        if not self.app_token and not self._warned_no_token:
            self.logger.warning("no SOCRATA_APP_TOKEN: requests are throttled more")
            self._warned_no_token = True
        params = {k: v for k, v in params.items() if v is not None}
        last, last_exc = "no attempt", None
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            try:
                answer = self._client.get(dataset_id, **params)
            except requests.HTTPError as exc:  # sodapy raises these with .response for non-2xx
                last_exc = exc
                status = exc.response.status_code if exc.response is not None else 0
                last = f"HTTP {status}"
                if status != 429 and not 500 <= status < 600:
                    raise SocrataFetchError(
                        f"{label}: {last} from dataset {dataset_id} (not retried): {self._redact(exc)}"
                    ) from exc
                retry_after = _retry_after_seconds(exc.response)
            except _RETRYABLE_ERRORS as exc:
                last, last_exc = type(exc).__name__, exc
            else:
                if not isinstance(answer, list):
                    # sodapy hands back the raw Response when the body is empty.
                    raise SocrataFetchError(f"{label}: unexpected answer from dataset {dataset_id}: "
                                            f"{type(answer).__name__}")
                return answer
            if attempt == self.max_attempts:
                break
            cap = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
            wait = min(retry_after, self.backoff_max) if retry_after is not None else random.uniform(0, cap)
            self.logger.warning("%s: %s, retry %d of %d in %.2f s",
                                label, last, attempt, self.max_attempts - 1, wait)
            self.sleep(wait)
        raise SocrataFetchError(
            f"{label}: gave up after {self.max_attempts} attempts, last error {last}"
        ) from last_exc

    def _redact(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split())
        return text.replace(self.app_token, "***") if self.app_token else text


def _retry_after_seconds(response: requests.Response | None) -> float | None:
    """Retry-After in seconds when given as a number (the HTTP-date form falls back to backoff)."""
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
