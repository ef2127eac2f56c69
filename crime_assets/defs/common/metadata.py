"""Small helpers that turn core results into metadata a person reads in the UI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg

from crime_assets.common.schema import Column


def column_schema(columns: Iterable[Column]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in columns])


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> dg.MarkdownMetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def window_of(context: dg.AssetExecutionContext):
    """The run's months, whether it materialises one partition or a range."""
    from crime_assets.common.months import MonthWindow

    key_range = context.partition_key_range
    return MonthWindow.from_keys(key_range.start, key_range.end)
