"""Names a person recognises for a cell, by resolution: a district at r6, a community area at r7, a block
below; and the breadcrumbs of a drill path (Citywide > district > ... > block)."""

from __future__ import annotations

from dataclasses import dataclass

CITYWIDE = "Citywide"


@dataclass(frozen=True)
class CellNames:
    """A cell's names from h3_cell_labels (any may be missing)."""

    h3_cell: str
    resolution: int
    label: str | None = None
    top_block: str | None = None
    district: int | None = None
    community_area_name: str | None = None


def place_name(names: CellNames) -> str:
    """Short name of a cell for a breadcrumb or a title: the coarser the cell, the wider the name."""
    area, district, block = names.community_area_name, names.district, names.top_block
    district_text = f"District {district}" if district is not None else None
    if names.resolution <= 6:
        parts = [district_text, area]
    elif names.resolution == 7:
        parts = [area, district_text]
    elif names.resolution == 8:
        parts = [f"around {block}" if block else None, area]
    else:
        parts = [block, area]
    parts = [p for p in parts if p]
    return " · ".join(parts) if parts else f"cell {names.h3_cell}"


def breadcrumbs(path_names: list[CellNames]) -> list[str]:
    """Citywide, then one short name per drilled cell, coarsest first."""
    return [CITYWIDE, *(place_name(n) for n in path_names)]
