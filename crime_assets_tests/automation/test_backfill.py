"""`python -m crime_assets.backfill`: a range of months as ranged runs of monthly_assets_job, as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import dagster as dg

from crime_assets_tests.helpers import REPO, query, settings_for


def test_a_backfill_runs_chunks_of_months_and_a_failed_chunk_names_the_month_to_resume_from(tmp_path, monkeypatch):
    """2016-11...2017-01 in chunks of 2 months: the first run loads the two shipped months; the second
    finds no rows for 2017-01 (the sample ends in 2016), its blocking check fails the run, and the command
    stops with the month to resume from while the first chunk stays materialised."""
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ("CRIME_DATA_DIR", "CRIME_EXPORT_PATH", "CRIME_SOURCE")}
    env["DAGSTER_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "crime_assets.backfill", "--from", "2016-11", "--to", "2017-01",
                           "--chunk-months", "2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert "2016-11...2016-12: run " in done.stdout and " done in " in done.stdout
    assert "2017-01: run " in done.stderr and "failed; resume with --from 2017-01" in done.stderr

    monkeypatch.chdir(tmp_path)  # dagster.yaml keeps the storage under .dagster_home/ of the working directory
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        runs = sorted(instance.get_runs(), key=lambda run: run.tags["dagster/asset_partition_range_start"])
        assert [(r.job_name, r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"],
                 r.status) for r in runs] == [
            ("monthly_assets_job", "2016-11", "2016-12", dg.DagsterRunStatus.SUCCESS),
            ("monthly_assets_job", "2017-01", "2017-01", dg.DagsterRunStatus.FAILURE)]
        assert {r.tags["crime_assets/backfill"] for r in runs} == {"2016-11...2017-01"}
    settings = settings_for(tmp_path / "data")
    assert query(settings, "SELECT month, count(*) FROM incidents_enriched GROUP BY ALL ORDER BY 1") == [
        ("2016-11", 21_693), ("2016-12", 20_320)]  # the sample's distinct ids of those months
