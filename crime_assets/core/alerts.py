"""Alerts about failed quality gates and failed runs: the record, its text, where it goes, and a ledger.

Plain Python, no Dagster: the sensor in ``crime_assets.defs.alerts`` turns events into ``Alert``
records and hands them to an ``Outbox``; the outbox delivers each alert to each destination once.

The outbox is a small SQLite file in the data directory. An alert is stored (keyed by its id) before
anything is sent, and every (alert, destination) pair is marked delivered only after the destination
accepted it, so a destination that is down is retried on later ticks, an alert that is enqueued twice
is stored once, and nothing already delivered is sent again, across restarts.

Secrets (the webhook URL, the SMTP password) live in the destination objects only. Error reasons
recorded in the ledger or logged are built from an exception's class name and a status code, never
from its message, which for HTTP libraries contains the URL.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import smtplib
import sqlite3
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Protocol
import urllib.error
import urllib.request
from urllib.parse import quote

logger = logging.getLogger(__name__)

ERROR, WARN = "ERROR", "WARN"
CHECK_FAILED, RUN_FAILED = "check_failed", "run_failed"
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Alert:
    """One failure a person should hear about: a failed asset check or a failed run."""

    id: str                      # stable: derived from the event (storage id) or the run id
    kind: str                    # check_failed | run_failed
    severity: str                # ERROR | WARN
    asset: str | None            # the checked asset; for a run, the assets whose steps failed
    partitions: str | None       # "2016-04" or "2016-01...2016-03"
    check: str | None
    found: str                   # what the check or the run found, one paragraph
    run_id: str
    job: str | None
    occurred_at: float           # seconds since the epoch
    run_url: str
    asset_url: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        what = f"check {self.check} failed on {self.asset}" if self.kind == CHECK_FAILED else f"run of {self.job} failed"
        where = f" ({self.partitions})" if self.partitions else ""
        return f"[crime_assets] {self.severity}: {what}{where}"

    def to_record(self) -> dict:
        record = asdict(self)
        record["occurred_at"] = datetime.fromtimestamp(self.occurred_at, timezone.utc).isoformat(timespec="seconds")
        return record

    @classmethod
    def from_record(cls, record: Mapping) -> Alert:
        values = dict(record)
        values["occurred_at"] = datetime.fromisoformat(values["occurred_at"]).timestamp()
        return cls(**values)

    def redacted(self, secrets: Iterable[str]) -> Alert:
        """The same alert with every secret value blanked out of its texts (defence in depth)."""
        secrets = [s for s in secrets if s]
        if not secrets:
            return self

        def clean(value):
            if isinstance(value, str):
                for secret in secrets:
                    value = value.replace(secret, REDACTED)
                return value
            if isinstance(value, dict):
                return {clean(k): clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return replace(self, **{name: clean(value) for name, value in asdict(self).items() if name != "occurred_at"})


def run_url(base_url: str, run_id: str) -> str:
    return f"{base_url.rstrip('/')}/runs/{run_id}"


def asset_checks_url(base_url: str, asset: str) -> str:
    return f"{base_url.rstrip('/')}/assets/{quote(asset)}?view=checks"


def format_text(alert: Alert) -> str:
    """The alert as a few lines of Slack-compatible text (also the body of the e-mail)."""
    lines = [
        f"*{alert.title}*",
        f"asset: {alert.asset or '-'}",
        f"partition(s): {alert.partitions or '-'}",
    ]
    if alert.check:
        lines.append(f"check: {alert.check}")
    lines += [
        f"found: {alert.found}",
        f"run: {alert.run_id}" + (f" (job {alert.job})" if alert.job else ""),
        f"when: {datetime.fromtimestamp(alert.occurred_at, timezone.utc).isoformat(timespec='seconds')}",
        f"run in Dagster: {alert.run_url}",
    ]
    if alert.asset_url:
        lines.append(f"checks in Dagster: {alert.asset_url}")
    return "\n".join(lines)


# -- destinations ----------------------------------------------------------------------------

class DeliveryError(Exception):
    """A destination refused or could not be reached. The message is safe to store and log."""


Send = Callable[[Alert], None]


class Destination(Protocol):
    name: str

    def session(self) -> Iterator[Send]:
        """A context manager yielding a function that delivers one alert (raises DeliveryError)."""


def _reason(error: BaseException, code: object = None) -> str:
    # Class name and status only: HTTP errors' messages can contain the URL, which for a webhook is the secret.
    return type(error).__name__ + (f" ({code})" if code is not None else "")


@dataclass(frozen=True)
class WebhookDestination:
    """POSTs ``{"text": ...}`` to a Slack-compatible incoming webhook."""

    url: str = field(repr=False)
    timeout_s: float = 10.0
    name: str = "webhook"

    @contextmanager
    def session(self) -> Iterator[Send]:
        # urllib, not requests: urllib3 logs every request line at DEBUG, and a Slack webhook's path
        # is its secret.
        def send(alert: Alert) -> None:
            request = urllib.request.Request(
                self.url, data=json.dumps({"text": format_text(alert)}).encode(), method="POST",
                headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    answer.read()
            except urllib.error.HTTPError as error:
                raise DeliveryError(f"HTTP {error.code}") from None
            except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
                cause = getattr(error, "reason", None)
                raise DeliveryError(_reason(cause if isinstance(cause, BaseException) else error)) from None
        yield send


@dataclass(frozen=True)
class EmailDestination:
    """Sends each alert as one e-mail over SMTP (STARTTLS and login when configured)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout_s: float = 10.0
    name: str = "email"

    @contextmanager
    def session(self) -> Iterator[Send]:
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(_reason(error)) from None
        try:
            try:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password or "")
            except (OSError, smtplib.SMTPException) as error:
                raise DeliveryError(_reason(error, getattr(error, "smtp_code", None))) from None

            def send(alert: Alert) -> None:
                message = EmailMessage()
                message["Subject"] = alert.title
                message["From"] = self.sender
                message["To"] = ", ".join(self.recipients)
                message["Date"] = formatdate(alert.occurred_at, localtime=False)
                # Deterministic, so a mail client folds the rare re-send after a crash into one message.
                message["Message-ID"] = f"<{quote(alert.id, safe='')}@crime-assets.alerts>"
                message.set_content(format_text(alert))
                try:
                    smtp.send_message(message)
                except (OSError, smtplib.SMTPException) as error:
                    raise DeliveryError(_reason(error, getattr(error, "smtp_code", None))) from None
            yield send
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


@dataclass(frozen=True)
class LogDestination:
    """Appends each alert as one JSON line to the alert log (always configured)."""

    path: Path
    name: str = "log"

    def contains(self, alert_id: str) -> bool:
        if not self.path.exists():
            return False
        with self.path.open(encoding="utf-8") as log:
            return any(json.loads(line).get("id") == alert_id for line in log if line.strip())

    @contextmanager
    def session(self) -> Iterator[Send]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            log = self.path.open("a", encoding="utf-8")
        except OSError as error:
            raise DeliveryError(_reason(error, error.errno)) from None
        with log:
            def send(alert: Alert) -> None:
                try:
                    log.write(json.dumps(alert.to_record(), sort_keys=True, default=str) + "\n")
                    log.flush()
                    os.fsync(log.fileno())
                except OSError as error:
                    raise DeliveryError(_reason(error, error.errno)) from None
            yield send


# -- the outbox ------------------------------------------------------------------------------

@dataclass
class DeliveryReport:
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)      # destination -> reason (safe)
    pending: int = 0                                          # (alert, destination) pairs still to deliver

    def summary(self) -> str:
        sent = ", ".join(f"{n} to {d}" for d, n in sorted(self.delivered.items())) or "nothing"
        text = f"delivered {sent}"
        if self.failed:
            text += "; failed: " + ", ".join(f"{d} ({r})" for d, r in sorted(self.failed.items()))
        return text + f"; {self.pending} pending"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id          TEXT PRIMARY KEY,
    enqueued_at REAL NOT NULL,
    record      TEXT NOT NULL              -- Alert.to_record() as JSON
);
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id     TEXT NOT NULL REFERENCES alerts (id),
    destination  TEXT NOT NULL,            -- webhook | email | log: names only, never addresses
    delivered_at REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    claimed_at   REAL,                     -- set while a process is delivering it
    PRIMARY KEY (alert_id, destination)
);
"""


class Outbox:
    """The durable ledger of alerts and their deliveries (``<data_dir>/alerts/outbox.sqlite``)."""

    def __init__(self, path: Path, claim_timeout_s: float = 600.0) -> None:
        self.path = Path(path)
        # A claim older than this belongs to a process that died mid-delivery; the pair is retried.
        self.claim_timeout_s = claim_timeout_s

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = WAL")
            con.executescript(_SCHEMA)
            yield con
        finally:
            con.close()

    def enqueue(self, alerts: Iterable[Alert], destinations: Sequence[str]) -> int:
        """Stores alerts not seen before, each owed to ``destinations``; returns how many were new.

        Idempotent: an alert id already in the outbox is left as it is, so re-reading events after a
        lost cursor sends nothing twice. Destinations are fixed at enqueue time: configuring e-mail
        later does not mail out the history.
        """
        now, added = time.time(), 0
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                for alert in alerts:
                    inserted = con.execute(
                        "INSERT OR IGNORE INTO alerts (id, enqueued_at, record) VALUES (?, ?, ?)",
                        (alert.id, now, json.dumps(alert.to_record(), sort_keys=True, default=str))).rowcount
                    if inserted:
                        added += 1
                        con.executemany("INSERT OR IGNORE INTO deliveries (alert_id, destination) VALUES (?, ?)",
                                        [(alert.id, d) for d in destinations])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return added

    def _claim(self, destinations: Sequence[str], now: float) -> list[tuple[Alert, str, bool]]:
        """Marks every undelivered pair for these destinations as ours; (alert, destination, was_claimed)."""
        marks = ",".join("?" * len(destinations))
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                rows = con.execute(f"""
                    SELECT a.record, d.destination, d.claimed_at IS NOT NULL
                    FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                    WHERE d.delivered_at IS NULL AND d.destination IN ({marks})
                      AND (d.claimed_at IS NULL OR d.claimed_at < ?)
                    ORDER BY a.enqueued_at, a.rowid""", (*destinations, now - self.claim_timeout_s)).fetchall()
                claimed = [(Alert.from_record(json.loads(record)), destination, bool(stale))
                           for record, destination, stale in rows]
                con.executemany("UPDATE deliveries SET claimed_at = ? WHERE alert_id = ? AND destination = ?",
                                [(now, a.id, d) for a, d, _ in claimed])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return claimed

    def _settle(self, alert_id: str, destination: str, error: str | None) -> None:
        with self._connect() as con:
            if error is None:
                con.execute("""UPDATE deliveries SET delivered_at = ?, attempts = attempts + 1, claimed_at = NULL,
                               last_error = NULL WHERE alert_id = ? AND destination = ?""",
                            (time.time(), alert_id, destination))
            else:
                con.execute("""UPDATE deliveries SET attempts = attempts + 1, claimed_at = NULL, last_error = ?
                               WHERE alert_id = ? AND destination = ?""", (error, alert_id, destination))

    def _release(self, alert_id: str, destination: str) -> None:
        with self._connect() as con:
            con.execute("UPDATE deliveries SET claimed_at = NULL WHERE alert_id = ? AND destination = ?",
                        (alert_id, destination))

    def deliver(self, destinations: Sequence[Destination]) -> DeliveryReport:
        """Tries every undelivered (alert, destination) pair once, oldest first.

        After a destination's first failure in this call, its remaining alerts wait for the next call:
        a webhook that hangs costs one timeout per tick, not one per alert.
        """
        report = DeliveryReport()
        by_name = {d.name: d for d in destinations}
        if by_name:
            claimed = self._claim(list(by_name), time.time())
            for name, destination in by_name.items():
                mine = [(alert, stale) for alert, d, stale in claimed if d == name]
                if mine:
                    self._deliver_to(destination, mine, report)
        report.pending = self.pending_count(list(by_name))
        return report

    def _deliver_to(self, destination: Destination, claimed: list[tuple[Alert, bool]], report: DeliveryReport) -> None:
        done = 0
        try:
            with destination.session() as send:
                for alert, stale in claimed:
                    # A stale claim means a process died between sending and recording it; the log
                    # can tell whether the line made it, other destinations get it again.
                    if stale and isinstance(destination, LogDestination) and destination.contains(alert.id):
                        self._settle(alert.id, destination.name, None)
                        done += 1
                        continue
                    try:
                        send(alert)
                    except DeliveryError as error:
                        self._settle(alert.id, destination.name, str(error))
                        report.failed[destination.name] = str(error)
                        done += 1
                        break
                    self._settle(alert.id, destination.name, None)
                    report.delivered[destination.name] = report.delivered.get(destination.name, 0) + 1
                    done += 1
        except DeliveryError as error:  # could not open the session (connect, STARTTLS, login)
            report.failed[destination.name] = str(error)
            for alert, _ in claimed[done:done + 1]:
                self._settle(alert.id, destination.name, str(error))
                done += 1
        except Exception as error:  # noqa: BLE001 - a bug in one destination must not stop the others
            report.failed[destination.name] = _reason(error)
            logger.error("alert destination %s raised %s", destination.name, _reason(error))
        finally:
            for alert, _ in claimed[done:]:
                self._release(alert.id, destination.name)
        if destination.name in report.failed:
            logger.warning("alert delivery to %s failed: %s; retried on the next tick",
                           destination.name, report.failed[destination.name])

    def pending_count(self, destinations: Sequence[str] | None = None) -> int:
        with self._connect() as con:
            if destinations is None:
                return con.execute("SELECT count(*) FROM deliveries WHERE delivered_at IS NULL").fetchone()[0]
            if not destinations:
                return 0
            marks = ",".join("?" * len(destinations))
            return con.execute(f"SELECT count(*) FROM deliveries WHERE delivered_at IS NULL AND destination IN ({marks})",
                               tuple(destinations)).fetchone()[0]

    def deliveries(self) -> list[dict]:
        """Every (alert, destination) pair with its state, for tests and for a person debugging."""
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            return [dict(row) for row in con.execute(
                "SELECT alert_id, destination, delivered_at, attempts, last_error FROM deliveries ORDER BY alert_id")]
