"""Alerts: bad months and a failing source, through a real Dagster instance and DuckDB file, alerted by the
sensor to a webhook and an SMTP server on loopback and to the JSON-lines log; exactly once, across
ticks, restarts, ticks that died before storing their cursor, and destinations that are down for a
while; secrets nowhere."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import time_machine
from dagster._core.remote_representation.external_data import RepositorySnap

from crime_assets.monitoring.alerts import Alert, format_text
from crime_assets.definitions import build_defs
from crime_assets.defs.monitoring.freshness import deadline_cron
from crime_assets.defs.monitoring.alert_resources import build_alert_destinations
from crime_assets.defs.monitoring.alert_sensors import ALERT_SENSOR_NAME
from crime_assets.runs import materialize_months
from crime_assets_tests.fake_socrata import FakeSocrata, export_rows_to_api_records
from crime_assets_tests.helpers import CLOCK, NEWEST, SAMPLE, settings_for, socrata_source
from crime_assets_tests.receivers import SmtpReceiver, WebhookReceiver

# aiosmtpd warns about AUTH without TLS: the test server listens on loopback only.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

UI = "http://dagster.example:3000"
WEBHOOK_SECRET = "T0/B0/xoxb-webhook-s3cr3t"
FAKE_SMTP_SECRET = "pw-smtp-s3cr3t"  # a test value, not a credential


@dataclass
class Failures:
    """One Dagster instance holding the bad-month runs, and the alerts they must raise."""

    instance: dg.DagsterInstance
    runs: dict[str, dg.ExecuteInProcessResult]
    expected: set[tuple]       # (asset, partitions, check, run_id) for every ERROR alert


@pytest.fixture(scope="module")
def failures(tmp_path_factory):
    """2016-01...03 loaded well, then April four ways wrong, then a source that is down."""
    folder = tmp_path_factory.mktemp("bad_months")
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE rows AS SELECT * FROM read_csv('{SAMPLE / "crimes_2016.csv.zst"}', all_varchar=true,
                    header=true) WHERE strptime("Date", '%m/%d/%Y %I:%M:%S %p') < '2016-05-01'""")

    def export(name: str, april_sql: str) -> str:
        path = folder / f"{name}.csv"
        con.execute(f"""COPY (WITH april AS (SELECT * FROM rows WHERE "Date" LIKE '04/%')
                        SELECT * FROM rows WHERE "Date" NOT LIKE '04/%' UNION ALL ({april_sql})) TO '{path}' (HEADER)""")
        return str(path)

    # A week of April and two days of March (a small sample: building API records is slow in Python).
    records = export_rows_to_api_records(con.sql(
        """SELECT * FROM rows WHERE "Date" SIMILAR TO '(04/0[1-7]|03/0[1-2])/2016.*'""").df())
    monthly = ["raw_incidents", "incidents_enriched"]
    # At the tests' own clock, as the freshness checks these runs evaluate judge by the date.
    with time_machine.travel(CLOCK, tick=True), dg.instance_for_test() as instance:
        warehouse = folder / "warehouse"
        materialize_months(["police_stations", "raw_incidents"], "2016-01", "2016-03",
                           settings_for(warehouse, CRIME_EXPORT_PATH=export("good", "SELECT * FROM april")),
                           instance=instance)
        runs = {}
        for name, april in {
            "empty": "SELECT * FROM april WHERE false",
            "collapsed": "SELECT * FROM april USING SAMPLE 5 PERCENT (bernoulli, 1)",
            "broken_coordinates": """SELECT * REPLACE (CASE WHEN hash("ID") % 4 = 0 THEN '0' ELSE "Latitude" END
                                     AS "Latitude") FROM april""",
        }.items():
            runs[name] = materialize_months(monthly, "2016-04", None,
                                            settings_for(warehouse, CRIME_EXPORT_PATH=export(name, april)),
                                            instance=instance, raise_on_error=False)
        # Asked for April, the source also answers the March rows: those are quarantined.
        with FakeSocrata({"ijzp-q8t2": records}, ignore_where_for={"2016-04"}) as server:
            socrata = settings_for(folder / "socrata", CRIME_SOURCE="socrata")
            runs["outside_month"] = materialize_months(monthly, "2016-04", None, socrata, instance=instance,
                                                       raise_on_error=False, resources={"source": socrata_source(server.domain, max_attempts=2)})
            server.fail_always(503)
            runs["source_down"] = materialize_months(monthly, "2016-04", None, socrata, instance=instance,
                                                     raise_on_error=False, resources={"source": socrata_source(server.domain, max_attempts=2)})
        run = {name: result.run_id for name, result in runs.items()}
        expected = {
            ("raw_incidents", "2016-04", "month_not_empty", run["empty"]),
            ("raw_incidents", "2016-04", "volume_within_band", run["empty"]),
            ("raw_incidents", "2016-04", "volume_within_band", run["collapsed"]),
            ("incidents_enriched", "2016-04", "geolocated_share_above_threshold", run["broken_coordinates"]),
            ("raw_incidents", "2016-04", "quarantine_share_below_threshold", run["outside_month"]),
            ("raw_incidents", "2016-04", None, run["source_down"]),  # the run failure
        }
        yield Failures(instance, runs, expected)


@pytest.fixture
def webhook():
    with WebhookReceiver(path=f"/services/{WEBHOOK_SECRET}") as receiver:
        yield receiver


@pytest.fixture
def smtp():
    with SmtpReceiver(user="alerts", password=FAKE_SMTP_SECRET) as receiver:
        yield receiver


def alert_defs(data_dir: Path, monkeypatch, webhook: WebhookReceiver | None = None, smtp: SmtpReceiver | None = None,
               **env: str) -> dg.Definitions:
    """The project's definitions with alerts going to these receivers (secrets through the environment)."""
    env = {"CRIME_UI_BASE_URL": UI, "CRIME_ALERT_ON_WARN": "none", **env}
    if webhook:
        monkeypatch.setenv("CRIME_ALERT_WEBHOOK_URL", webhook.url)
        env["CRIME_ALERT_WEBHOOK_URL"] = webhook.url
    if smtp:
        monkeypatch.setenv("CRIME_SMTP_PASSWORD", FAKE_SMTP_SECRET)
        env |= {"CRIME_SMTP_HOST": "127.0.0.1", "CRIME_SMTP_PORT": str(smtp.port), "CRIME_SMTP_USER": "alerts",
                "CRIME_SMTP_PASSWORD": FAKE_SMTP_SECRET, "CRIME_SMTP_STARTTLS": "false",
                "CRIME_ALERT_EMAIL_TO": "oncall@example.org, data@example.org"}
    return build_defs(settings_for(data_dir, **env))


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> tuple[str | None, str]:
    """One sensor evaluation, as the daemon does it: the stored cursor in, the new cursor out."""
    sensor = defs.resolve_sensor_def(ALERT_SENSOR_NAME)
    # Like the daemon's code server: the sensor's resources come from the definitions' top-level ones.
    repository = defs.get_repository_def()
    resources = {k: v for k, v in repository.get_top_level_resources().items() if k in sensor.required_resource_keys}
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=resources) as context:
        result = sensor.evaluate_tick(context)
    assert not result.run_requests
    return result.cursor, result.skip_message or ""


def logged(data_dir: Path) -> list[dict]:
    path = data_dir / "alerts" / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def key(record: dict) -> tuple:
    return (record["asset"], record["partitions"], record["check"], record["run_id"])


def test_blocking_checks_stop_the_month_before_its_downstream_assets(failures):
    def materialized(name):
        return {e.asset_key.to_user_string() for e in failures.runs[name].get_asset_materialization_events()}

    for name in ("empty", "collapsed", "outside_month"):
        assert not failures.runs[name].success
        assert materialized(name) == {"raw_incidents"}, name  # kept for inspection; enrichment never ran
    # Enrichment ran and failed its own gate: the run fails, so nothing downstream of it follows.
    assert not failures.runs["broken_coordinates"].success
    assert materialized("broken_coordinates") == {"raw_incidents", "incidents_enriched"}
    assert not failures.runs["source_down"].success and materialized("source_down") == set()


def test_each_failure_is_alerted_once_by_webhook_mail_and_log(failures, webhook, smtp, tmp_path, monkeypatch):
    defs = alert_defs(tmp_path, monkeypatch, webhook, smtp)
    cursor = None
    for _ in range(3):
        cursor, summary = tick(defs, failures.instance, cursor)

    records = logged(tmp_path)
    assert {key(r) for r in records} == failures.expected
    assert len(records) == len(failures.expected) == len(webhook.texts) == len(smtp.messages) == 6
    for record in records:
        assert record["run_url"] == f"{UI}/runs/{record['run_id']}"
        if record["check"]:
            assert record["kind"] == "check_failed" and record["severity"] == "ERROR"
            assert record["asset_url"] == f"{UI}/assets/{record['asset']}?view=checks"
        text = next(t for t in webhook.texts if record["run_id"] in t and (record["check"] or "run of") in t)
        assert record["run_url"] in text and "2016-04" in text and record["asset"] in text
    collapse = next(r for r in records if r["check"] == "volume_within_band" and r["run_id"] == failures.runs["collapsed"].run_id)
    assert "volume anomaly in ['2016-04']" in collapse["found"] and '"trailing_median"' in collapse["found"]
    outage = next(r for r in records if r["kind"] == "run_failed")
    assert "SocrataFetchError" in outage["found"] and "503" in outage["found"]
    mail = smtp.messages[0]
    assert mail["To"] == "oncall@example.org, data@example.org" and mail["Subject"].strip().startswith("[crime_assets] ERROR")
    assert len({m["Message-ID"] for m in smtp.messages}) == 6
    assert "delivered nothing; 0 pending" in summary  # the third tick found nothing new


def test_an_alert_raised_while_the_receivers_are_down_arrives_once_they_are_back(failures, webhook, smtp, tmp_path,
                                                                                 monkeypatch):
    defs = alert_defs(tmp_path, monkeypatch, webhook, smtp)
    webhook.status = 500
    smtp.stop()
    cursor, summary = tick(defs, failures.instance, None)
    assert "webhook (HTTP 500)" in summary and "email (ConnectionRefusedError)" in summary
    assert len(logged(tmp_path)) == 6 and webhook.texts == [] and webhook.refused == 1  # one try per tick

    webhook.stop()  # now not even listening
    cursor, summary = tick(defs, failures.instance, cursor)
    assert "webhook (ConnectionRefusedError)" in summary and "12 pending" in summary

    webhook.status = 200
    webhook.start()
    smtp.start()
    restarted = alert_defs(tmp_path, monkeypatch, webhook, smtp)  # what is owed lives in the cursor and the ledger
    for _ in range(2):
        cursor, summary = tick(restarted, failures.instance, cursor)
    assert len(webhook.texts) == len(smtp.messages) == len(logged(tmp_path)) == 6
    assert len(set(webhook.texts)) == 6 and len({r["id"] for r in logged(tmp_path)}) == 6
    assert "0 pending" in summary


def test_a_restarted_sensor_resumes_from_its_cursor_and_a_lost_cursor_sends_nothing_twice(tmp_path, webhook,
                                                                                          monkeypatch):
    records = [{"id": "1", "date": "2016-04-02T10:00:00.000", "case_number": "HZ1", "primary_type": "THEFT"}]
    with dg.instance_for_test() as instance, FakeSocrata({"ijzp-q8t2": records}) as server:
        server.fail_always(500)
        settings = settings_for(tmp_path / "warehouse", CRIME_SOURCE="socrata")

        def failed_run():
            return materialize_months(["raw_incidents"], "2016-04", None, settings, instance=instance,
                                      raise_on_error=False, resources={"source": socrata_source(server.domain, max_attempts=2)}).run_id

        first = failed_run()
        cursor, _ = tick(alert_defs(tmp_path, monkeypatch, webhook), instance, None)
        assert len(webhook.texts) == 1 and first in webhook.texts[0]

        # A restart: new definitions and resources (no state kept in the process), the stored cursor.
        second = failed_run()
        restarted = alert_defs(tmp_path, monkeypatch, webhook)
        before_second = cursor
        cursor, _ = tick(restarted, instance, cursor)
        cursor, _ = tick(restarted, instance, cursor)
        assert len(webhook.texts) == 2 and second in webhook.texts[1]

        # The tick that sent the second alert died before Dagster stored its cursor: it runs again.
        _, summary = tick(alert_defs(tmp_path, monkeypatch, webhook), instance, before_second)
        assert "1 alert(s); delivered nothing; 0 pending" in summary and len(webhook.texts) == 2
        # The cursor lost (sensor reset): the last day's runs are read again, the ledger knows their alerts.
        _, summary = tick(alert_defs(tmp_path, monkeypatch, webhook), instance, None)
        assert "2 alert(s); delivered nothing; 0 pending" in summary and len(webhook.texts) == 2
        assert [r["run_id"] for r in logged(tmp_path)] == [first, second]


def test_secrets_appear_in_no_log_metadata_snapshot_or_alert_file(failures, webhook, smtp, tmp_path, monkeypatch,
                                                                 caplog):
    caplog.set_level(logging.DEBUG)
    defs = alert_defs(tmp_path, monkeypatch, webhook, smtp)
    webhook.status = 500  # the error paths too
    cursor, first_summary = tick(defs, failures.instance, None)
    webhook.status = 200
    cursor, second_summary = tick(defs, failures.instance, cursor)
    assert len(webhook.texts) == len(smtp.messages) == 6 and smtp.logins  # the password was used

    events = [dg.serialize_value(e) for run in failures.instance.get_runs()
              for e in failures.instance.all_logs(run.run_id)]
    stored = b"".join(p.read_bytes() for p in (tmp_path / "alerts").iterdir())  # the log and the ledger
    snapshot = dg.serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    assert "CRIME_ALERT_WEBHOOK_URL" in snapshot and "CRIME_SMTP_PASSWORD" in snapshot  # names, not values
    for secret in (WEBHOOK_SECRET, FAKE_SMTP_SECRET):
        for where, text in {"logs": caplog.text, "tick": first_summary + second_summary, "events": "".join(events),
                            "snapshot": snapshot, "alert log": (tmp_path / "alerts" / "alerts.jsonl").read_text(),
                            "mail": "".join(m.as_string() for m in smtp.messages),
                            "webhook": "".join(webhook.texts)}.items():
            assert secret not in text, f"secret in {where}"
        assert secret.encode() not in stored


def test_freshness_warns_once_per_late_month_and_only_when_configured(failures, tmp_path, monkeypatch):
    assert deadline_cron(14) == "0 0 15 * *"
    with pytest.raises(ValueError):
        deadline_cron(28)
    # The clock at the tests' own moment (helpers.CLOCK, the 21st): the month due by its deadline (the
    # 15th, 00:00 Chicago time) is the one before, and the test data (2016) is years late.
    late = NEWEST
    with time_machine.travel(CLOCK, tick=True):
        warned = tmp_path / "warn"
        defs = alert_defs(warned, monkeypatch, CRIME_ALERT_ON_WARN="freshness_check")
        # As the daemon would: the freshness sensor asks for the checks, a run evaluates them. Twice, as when
        # the asset is touched again while the month is still missing.
        freshness_sensor = defs.resolve_sensor_def("freshness_checks_sensor")
        assert freshness_sensor.default_status == dg.DefaultSensorStatus.RUNNING
        with dg.build_sensor_context(instance=failures.instance, definitions=defs) as context:
            request = freshness_sensor.evaluate_tick(context).run_requests[0]
        # raw_incidents was loaded after its last (failed) evaluation, so it is due again. (incidents_enriched's
        # check is still "planned" in the failed April runs, which the sensor takes for "being evaluated".)
        assert "raw_incidents:freshness_check" in {k.to_user_string() for k in request.asset_check_keys}
        checks_job = defs.resolve_implicit_global_asset_job_def().get_subset(
            asset_selection=set(), asset_check_selection={dg.AssetCheckKey(dg.AssetKey(a), "freshness_check")
                                                          for a in ("raw_incidents", "incidents_enriched")})
        for _ in range(2):
            result = checks_job.execute_in_process(instance=failures.instance)
            evaluations = [e.asset_check_evaluation_data for e in result.all_events
                           if e.event_type_value == "ASSET_CHECK_EVALUATION"]
            assert result.success and len(evaluations) == 2  # WARN: the run itself succeeds
            assert not any(e.passed for e in evaluations) and {e.severity for e in evaluations} == {dg.AssetCheckSeverity.WARN}

        cursor = None
        for _ in range(2):
            cursor, _ = tick(defs, failures.instance, cursor)
        fresh = [r for r in logged(warned) if r["check"] == "freshness_check"]
        assert {(r["asset"], r["partitions"], r["severity"]) for r in fresh} == {
            ("raw_incidents", late, "WARN"), ("incidents_enriched", late, "WARN")}
        assert len(fresh) == 2  # four failed evaluations (and more in the backfill runs), one late month per asset

        quiet = tmp_path / "quiet"
        tick(alert_defs(quiet, monkeypatch, CRIME_ALERT_ON_WARN="none"), failures.instance, None)
        assert [r for r in logged(quiet) if r["severity"] == "WARN"] == [] and len(logged(quiet)) == 6


def test_a_sensor_switched_on_late_does_not_page_about_old_failures(failures, tmp_path):
    old_news = build_alert_destinations(tmp_path, settings_for(tmp_path).alerts, first_tick_lookback_hours=0)
    defs = build_defs(settings_for(tmp_path), resources={"alerts": old_news})
    assert defs.resolve_sensor_def(ALERT_SENSOR_NAME).default_status == dg.DefaultSensorStatus.RUNNING
    cursor = None
    for _ in range(2):
        cursor, summary = tick(defs, failures.instance, cursor)
        assert summary.startswith("0 run(s) ended, 0 alert(s)")
    assert logged(tmp_path) == []


def test_a_cursor_written_before_the_upgrade_reads_the_last_day_again(failures, tmp_path, monkeypatch):
    outbox_version = json.dumps({"ASSET_CHECK_EVALUATION": 10**6, "RUN_FAILURE": 10**6, "not_before": 0.0})
    cursor, _ = tick(alert_defs(tmp_path, monkeypatch), failures.instance, outbox_version)
    assert {key(r) for r in logged(tmp_path)} == failures.expected and json.loads(cursor)["retry"] == []

def test_an_alert_reads_well_and_its_secrets_can_be_blanked():
    alert = Alert(id="check:r:1", kind="check_failed", severity="ERROR", asset="raw_incidents", partitions="2016-04",
                  check="month_not_empty", found="no incidents in ['2016-04'] see https://hooks/secret", run_id="r",
                  job="monthly_assets_job", occurred_at=1_460_000_000.0, run_url=f"{UI}/runs/r",
                  asset_url=f"{UI}/assets/raw_incidents?view=checks", details={"url": "https://hooks/secret"})
    text = format_text(alert)
    for part in ("ERROR", "raw_incidents", "2016-04", "month_not_empty", "no incidents", f"{UI}/runs/r", "?view=checks"):
        assert part in text
    clean = alert.redacted(["https://hooks/secret"])
    assert "secret" not in json.dumps(clean.to_record()) and clean.id == alert.id
