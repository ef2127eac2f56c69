"""What an analyst has selected: months, crime category or primary type, resolution, and the drilled path."""

from __future__ import annotations

from dataclasses import dataclass

import h3

from crime_assets.hotspots.crime_categories import CATEGORY_NAMES, category_of
from crime_assets.common.months import MonthWindow, parse_month, shift_month
from crime_assets.common.schema import H3_RESOLUTIONS

FINEST = max(H3_RESOLUTIONS)
COARSEST = min(H3_RESOLUTIONS)


class ScopeError(ValueError):
    pass


@dataclass(frozen=True)
class Scope:
    """``first``...``last``: months (YYYY-MM); ``resolution``: the citywide map's; ``category`` / ``primary_type``:
    None for every incident; ``path``: the cells drilled into, coarsest first, each the H3 parent of the next.

    The place is the last cell of the path (None: citywide). The map shows the place's children one resolution
    finer (citywide: every cell at ``resolution``); an r10 place is shown alone."""

    first: str
    last: str
    resolution: int = 8
    category: str | None = None
    primary_type: str | None = None
    path: tuple[str, ...] = ()

    def __post_init__(self):
        for key in (self.first, self.last):
            try:
                parse_month(key)
            except ValueError as error:
                raise ScopeError(str(error)) from None
        if self.last < self.first:
            raise ScopeError(f"the month range ends before it starts: {self.first}...{self.last}")
        if self.resolution not in H3_RESOLUTIONS:
            raise ScopeError(f"resolution must be one of {H3_RESOLUTIONS}, got {self.resolution!r}")
        if self.category is not None and self.category not in CATEGORY_NAMES:
            raise ScopeError(f"unknown crime category {self.category!r}; the categories are {', '.join(CATEGORY_NAMES)}")
        if self.primary_type is not None and self.category is not None and category_of(self.primary_type) != self.category:
            raise ScopeError(f"primary type {self.primary_type!r} is not in the category {self.category!r} "
                             f"(it is {category_of(self.primary_type)!r})")
        expected = self.resolution
        for i, cell in enumerate(self.path):
            if not (isinstance(cell, str) and h3.is_valid_cell(cell)):
                raise ScopeError(f"not an H3 cell: {cell!r}")
            if h3.get_resolution(cell) != expected:
                raise ScopeError(f"cell {cell} of the drill path is at r{h3.get_resolution(cell)}, expected r{expected}")
            if i and h3.cell_to_parent(cell, expected - 1) != self.path[i - 1]:
                raise ScopeError(f"cell {cell} is not a child of {self.path[i - 1]}")
            expected += 1

    @property
    def months(self) -> list[str]:
        return MonthWindow.from_keys(self.first, self.last).keys

    @property
    def place(self) -> str | None:
        return self.path[-1] if self.path else None

    @property
    def place_resolution(self) -> int | None:
        return None if self.place is None else h3.get_resolution(self.place)

    @property
    def view_resolution(self) -> int:
        """The resolution of the cells on the map."""
        if self.place is None:
            return self.resolution
        return min(self.place_resolution + 1, FINEST)

    @property
    def is_filtered(self) -> bool:
        return self.category is not None or self.primary_type is not None

    def previous(self) -> Scope:
        """The same scope over the months just before, as many as this one has."""
        count = len(self.months)
        return Scope(shift_month(self.first, -count), shift_month(self.first, -1), self.resolution,
                     self.category, self.primary_type, self.path)

    def drill(self, cell: str) -> Scope:
        """This scope with ``cell`` (a cell on the map) as the new place; an r10 place stays where it is."""
        if self.place is not None and self.place_resolution == FINEST:
            return self
        return Scope(self.first, self.last, self.resolution, self.category, self.primary_type, (*self.path, cell))

    def up(self, depth: int) -> Scope:
        """Back to the first ``depth`` cells of the path (0: citywide)."""
        return Scope(self.first, self.last, self.resolution, self.category, self.primary_type, self.path[:depth])

    def describe_filter(self) -> str:
        if self.primary_type:
            return self.primary_type.title()
        return f"{self.category.replace('_', ' ')} crime" if self.category else "all incidents"
