"""Alerts about failed quality gates and failed runs: the record, its text, where it goes.

Plain Python, no Dagster: the sensor in ``crime_assets.defs.monitoring.alert_sensors`` turns events into ``Alert``
records and hands them to ``deliver``, which sends each alert to each destination that has not
accepted it yet.

Secrets (the webhook URL, the SMTP password) live in the destination objects only. Error reasons
reported or logged are built from an exception's class name and a status code, never from its
message, which for HTTP libraries contains the URL.
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
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


# -- delivery --------------------------------------------------------------------------------

@dataclass
class DeliveryReport:
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)                # destination -> reason (safe)
    pending: list[tuple[Alert, str]] = field(default_factory=list)      # (alert, destination) still owed

    def summary(self) -> str:
        sent = ", ".join(f"{n} to {d}" for d, n in sorted(self.delivered.items())) or "nothing"
        text = f"delivered {sent}"
        if self.failed:
            text += "; failed: " + ", ".join(f"{d} ({r})" for d, r in sorted(self.failed.items()))
        return text + f"; {len(self.pending)} pending"


def deliver(alerts: Iterable[Alert], destinations: Sequence[Destination], ledger: Path) -> DeliveryReport:
    """Sends each alert (by id, the first of its id) to every destination that has not accepted it yet.

    ``ledger`` is a SQLite file with one row per accepted (alert id, destination), written as soon as
    the destination accepted it: re-reading an alert (a retried run, a tick re-evaluated from an old
    cursor, a lost cursor) sends it nowhere twice. A process that dies between a send and its row sends
    that one alert again (an e-mail then carries the same Message-ID).

    After a destination's first failure its remaining alerts wait for the next call: a webhook that
    hangs costs one timeout per tick, not one per alert.
    """
    unique: dict[str, Alert] = {}
    for alert in alerts:
        unique.setdefault(alert.id, alert)
    report = DeliveryReport()
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(ledger, timeout=30, isolation_level=None)) as con:
        con.execute("""CREATE TABLE IF NOT EXISTS delivered (alert_id TEXT, destination TEXT, delivered_at REAL,
                       PRIMARY KEY (alert_id, destination))""")
        for destination in destinations:
            owed = [a for a in unique.values() if not con.execute(
                "SELECT 1 FROM delivered WHERE alert_id = ? AND destination = ?", (a.id, destination.name)).fetchone()]
            sent = 0
            try:
                if owed:
                    with destination.session() as send:
                        for alert in owed:
                            send(alert)
                            con.execute("INSERT INTO delivered VALUES (?, ?, ?)",
                                        (alert.id, destination.name, time.time()))
                            sent += 1
            except DeliveryError as error:
                report.failed[destination.name] = str(error)
            except Exception as error:  # noqa: BLE001 - a bug in one destination must not stop the others
                report.failed[destination.name] = _reason(error)
                logger.error("alert destination %s raised %s", destination.name, _reason(error))
            if sent:
                report.delivered[destination.name] = sent
            report.pending += [(alert, destination.name) for alert in owed[sent:]]
    for name, reason in sorted(report.failed.items()):
        logger.warning("alert delivery to %s failed: %s; retried on the next tick", name, reason)
    return report
