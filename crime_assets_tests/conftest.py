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
