from __future__ import annotations

import pytest

from crime_assets.runs import materialize_months
from crime_assets_tests.helpers import settings_for


@pytest.fixture(scope="session")
def warehouse_2015_2016(tmp_path_factory):
    """Settings of a data dir holding all 24 shipped months (2015-2016) through incidents_enriched.

    Read-only for tests: a test that writes must use its own data dir.
    """
    settings = settings_for(tmp_path_factory.mktemp("warehouse_2015_2016"))
    materialize_months(["police_stations", "raw_incidents", "incidents_enriched"], "2015-01", "2016-12", settings)
    return settings


@pytest.fixture(scope="session")
def gold_2016_h1(tmp_path_factory):
    """Settings of a data dir holding 2016-01...2016-06 through the hotspot layer (the explorer's tables);
    hotspots from 2016-04 on (three months of history). Read-only for tests."""
    from crime_assets_tests.helpers import SAMPLE

    settings = settings_for(tmp_path_factory.mktemp("gold_2016_h1"), CRIME_EXPORT_PATH=str(SAMPLE / "crimes_2016.csv.zst"))
    materialize_months(["police_stations", "raw_incidents", "incidents_enriched", "h3_monthly_stats", "h3_daily_counts",
                        "h3_cell_labels", "hotspots"], "2016-01", "2016-06", settings)
    return settings
