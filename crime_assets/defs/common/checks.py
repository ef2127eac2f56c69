"""Quality gates as asset checks, evaluated inside the asset's own step.

Every gate here is `blocking`: when it fails with ERROR severity the run stops before any
downstream asset reads the month (the checked table itself keeps what was loaded, for inspection).
A gate may fail with WARN severity for a signal a person should look at that does not poison
downstream assets (a volume spike); that does not block.
"""

from __future__ import annotations

import dagster as dg

from crime_assets.ingestion.quality import Gate

GATE_DESCRIPTIONS = {
    "required_columns_and_types": "The table has every canonical column with its type.",
    "ids_are_unique": "No incident id appears twice, within the months or under another month.",
    "occurrences_inside_month": "Every occurrence time lies inside its partition's month.",
    "month_not_empty": "Every month of the run has incidents.",
    "volume_within_band": "Each month's row count is within the band around its trailing 12-month median "
                          "(below: ERROR, a collapse; above: WARN, a spike).",
    "quarantine_share_below_threshold": "The share of source rows quarantined stays under the threshold.",
    "geolocated_share_above_threshold": "The share of rows with usable coordinates stays above the threshold.",
    "station_distances_plausible": "Every geolocated incident has a nearest-station distance within the limit.",
    "geolocated_rows_have_h3_cells": "Every geolocated row has its H3 cells at resolutions 6-10.",
}


def gate_specs(asset_key: str, names: list[str]) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=asset_key, blocking=True, description=GATE_DESCRIPTIONS[name])
            for name in names]


def gate_results(gates: list[Gate], months: str, warn_only: dict[str, bool] | None = None) -> list[dg.AssetCheckResult]:
    """``warn_only``: gates whose failure is only a signal (severity WARN, so it does not block)."""
    warn_only = warn_only or {}
    return [
        dg.AssetCheckResult(
            check_name=gate.name,
            passed=gate.passed,
            severity=dg.AssetCheckSeverity.WARN if warn_only.get(gate.name) else dg.AssetCheckSeverity.ERROR,
            description=gate.summary,
            metadata={"months": months, "summary": gate.summary, "details": dg.MetadataValue.json(gate.details)},
        )
        for gate in gates
    ]
