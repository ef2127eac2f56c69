"""The alerts resource: where alerts go, which WARN checks alert, and the delivery ledger in the data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from crime_assets.monitoring.alerts import (
    ERROR, Destination, EmailDestination, LogDestination, WebhookDestination,
)
from crime_assets.common.settings import AlertSettings


class AlertDestinations(dg.ConfigurableResource):
    """Alert destinations: the JSON-lines log (always), a Slack-compatible webhook and SMTP e-mail (when set).

    The webhook URL and the SMTP password are given as ``EnvVar``s, so the UI and run config show the
    variables' names, never their values.
    """

    data_dir: str = Field(description="CRIME_DATA_DIR: the alert log and the delivery ledger live in <data_dir>/alerts")
    ui_base_url: str = Field(description="CRIME_UI_BASE_URL: alerts link into it")
    webhook_url: Optional[str] = Field(default=None, description="CRIME_ALERT_WEBHOOK_URL (secret)")
    smtp_host: Optional[str] = Field(default=None, description="CRIME_SMTP_HOST; unset: no e-mail")
    smtp_port: int = Field(description="CRIME_SMTP_PORT")
    smtp_user: Optional[str] = Field(default=None, description="CRIME_SMTP_USER")
    smtp_password: Optional[str] = Field(default=None, description="CRIME_SMTP_PASSWORD (secret)")
    smtp_starttls: bool = Field(description="CRIME_SMTP_STARTTLS")
    email_from: str = Field(description="CRIME_ALERT_EMAIL_FROM")
    email_to: list[str] = Field(description="CRIME_ALERT_EMAIL_TO")
    alert_on_warn: list[str] = Field(description="CRIME_ALERT_ON_WARN: WARN checks that alert; ['*'] = all")
    timeout_s: float = Field(default=10.0, description="per request to the webhook or the SMTP server")
    first_tick_lookback_hours: float = Field(
        default=24.0, description="on its very first tick the sensor alerts on failures this recent, not on all history")

    @property
    def folder(self) -> Path:
        return Path(self.data_dir) / "alerts"

    @property
    def log_path(self) -> Path:
        return self.folder / "alerts.jsonl"

    @property
    def ledger_path(self) -> Path:
        return self.folder / "delivered.sqlite"

    def destinations(self) -> list[Destination]:
        found: list[Destination] = [LogDestination(self.log_path)]
        if self.webhook_url:
            found.append(WebhookDestination(self.webhook_url, timeout_s=self.timeout_s))
        if self.smtp_host:
            found.append(EmailDestination(
                host=self.smtp_host, port=self.smtp_port, sender=self.email_from, recipients=tuple(self.email_to),
                user=self.smtp_user, password=self.smtp_password, starttls=self.smtp_starttls,
                timeout_s=self.timeout_s))
        return found

    def secrets(self) -> list[str]:
        return [s for s in (self.webhook_url, self.smtp_password) if s]

    def alerts_on(self, severity: str, check_name: str) -> bool:
        """ERROR always alerts; WARN only for the checks named in CRIME_ALERT_ON_WARN."""
        return severity == ERROR or "*" in self.alert_on_warn or check_name in self.alert_on_warn


def build_alert_destinations(data_dir: Path, settings: AlertSettings, **fields) -> AlertDestinations:
    """``fields`` set the resource's other fields (tests: the first tick's look-back)."""
    return AlertDestinations(
        data_dir=str(data_dir),
        ui_base_url=settings.ui_base_url,
        webhook_url=dg.EnvVar("CRIME_ALERT_WEBHOOK_URL") if settings.has_webhook else None,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_user=settings.smtp_user,
        smtp_password=dg.EnvVar("CRIME_SMTP_PASSWORD") if settings.has_smtp_password else None,
        smtp_starttls=settings.smtp_starttls,
        email_from=settings.email_from,
        email_to=list(settings.email_to),
        alert_on_warn=list(settings.alert_on_warn),
        **fields,
    )
