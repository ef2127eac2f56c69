"""Which months changed at the source since they were last looked at: plain functions behind the new-data sensor.

A month's *fingerprint* is a short text that changes whenever the month's records change at the source:

- Socrata: the month's row count and its newest ``updated_on`` (one SoQL aggregate,
  ``count(*), max(updated_on)``). Chicago stamps ``updated_on`` whenever it edits a record (a later
  arrest, a reclassification), so an edit moves the newest stamp and a deletion moves the count.
- bulk export: a digest of the name, size and modification time of every file holding rows of the
  month (which months a file holds comes from ``crime_assets.ingestion.export_index``, shared with the
  ingestion), and the newest modification time of those files.

Fingerprints are kept as text (``"rows|newest|files"``) so a sensor cursor can hold them as JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from crime_assets.common.months import MonthWindow
from crime_assets.ingestion.socrata import SocrataClient

CHICAGO = ZoneInfo("America/Chicago")


@dataclass(frozen=True)
class Fingerprint:
    rows: int | None  # Socrata: the month's records; export: None (files are not read to count them)
    newest: str | None = None  # newest updated_on (Socrata, Chicago local time) or file mtime (export, UTC)
    files: str = ""  # export only: digest of the files holding the month's rows

    @property
    def is_empty(self) -> bool:
        return not self.rows and not self.files

    def text(self) -> str:
        return f"{'' if self.rows is None else self.rows}|{self.newest or ''}|{self.files}"

    @classmethod
    def parse(cls, text: str) -> Fingerprint:
        rows, newest, files = text.split("|")
        return cls(int(rows) if rows else None, newest or None, files)

    def digest(self) -> str:
        """A short stable id of this state of the month, for run keys."""
        return hashlib.sha1(self.text().encode()).hexdigest()[:12]

    def newest_timestamp(self) -> float | None:
        """The newest change as POSIX seconds; Socrata's floating timestamps are Chicago local time."""
        if not self.newest:
            return None
        moment = datetime.fromisoformat(self.newest)
        return (moment if moment.tzinfo else moment.replace(tzinfo=CHICAGO)).timestamp()


EMPTY = Fingerprint(0)


def combine(fingerprints: Iterable[Fingerprint]) -> Fingerprint:
    """The Socrata summary of consecutive months taken together: counts add up, the newest stamp is the max."""
    items = list(fingerprints)
    stamps = [f.newest for f in items if f.newest]
    return Fingerprint(sum(f.rows or 0 for f in items), max(stamps, key=datetime.fromisoformat) if stamps else None)


# -- deciding which months to run -------------------------------------------------------------


@dataclass(frozen=True)
class MonthChange:
    month: str
    fingerprint: Fingerprint
    reason: str  # "new", "updated", "emptied", "changed_since_materialised"


def months_to_run(
    previous: Mapping[str, str],
    current: Mapping[str, str],
    materialised_at: Mapping[str, float] | None = None,
) -> list[MonthChange]:
    """The months that need a run, oldest first.

    ``previous`` and ``current`` map month keys to fingerprint texts (the cursor's and the source's now).
    A month the cursor knows needs a run when its fingerprint changed (records added, edited or deleted,
    or the month emptied). A month the cursor does not know yet (the sensor's first tick, or a month
    that just entered the watched window) needs one when it has records and either was never
    materialised or changed after its latest materialisation (``materialised_at``: POSIX seconds).
    """
    materialised_at = materialised_at or {}
    changes = []
    for month in sorted(current):
        now = Fingerprint.parse(current[month])
        if month in previous:
            if previous[month] == current[month]:
                continue
            before = Fingerprint.parse(previous[month])
            reason = "new" if before.is_empty else "emptied" if now.is_empty else "updated"
        elif now.is_empty:
            continue
        elif month not in materialised_at:
            reason = "new"
        else:
            changed = now.newest_timestamp()
            if changed is None or changed <= materialised_at[month]:
                continue
            reason = "changed_since_materialised"
        changes.append(MonthChange(month, now, reason))
    return changes


# -- Socrata: aggregates over runs of months ----------------------------------------------------

Summariser = Callable[[str, str], Fingerprint]  # (first month, last month) -> their combined summary


def socrata_fingerprints(months: Sequence[str], known: Mapping[str, str], summarise: Summariser) -> dict[str, str]:
    """The current fingerprint of each of ``months`` (consecutive keys, oldest first), asking the source
    as few times as it can.

    One aggregate covers the whole run of months; when it equals what ``known`` says about them, none
    changed. Otherwise the run is halved and each half asked again, down to single months. A quiet
    source costs one request; one changed month among n costs about 2*log2(n). Runs with no rows stop
    the descent at once, so the first tick only descends into months that have records. This relies on
    an edit moving ``updated_on`` forward, which the portal does.
    """
    found: dict[str, str] = {}

    def visit(keys: Sequence[str]) -> None:
        summary = summarise(keys[0], keys[-1])
        if summary.is_empty:
            found.update(dict.fromkeys(keys, EMPTY.text()))
            return
        before = [known.get(k) for k in keys]
        if None not in before and combine(Fingerprint.parse(t) for t in before) == summary:
            found.update(zip(keys, before))
            return
        if len(keys) == 1:
            found[keys[0]] = summary.text()
            return
        middle = len(keys) // 2
        visit(keys[:middle])
        visit(keys[middle:])

    if months:
        visit(list(months))
    return found


def socrata_summariser(client: SocrataClient, dataset_id: str) -> Summariser:
    def summarise(first: str, last: str) -> Fingerprint:
        window = MonthWindow.from_keys(first, last)
        answer = client.window_summary(dataset_id, window.start, window.end, label=f"{window.label} (summary)")
        return Fingerprint(answer["rows"], answer["max_updated_on"] if answer["rows"] else None)

    return summarise


# -- bulk export: files and the months they hold ------------------------------------------------


@dataclass(frozen=True)
class ExportFile:
    path: Path
    size: int
    mtime_ns: int

    @classmethod
    def stat(cls, path: Path) -> ExportFile:
        info = path.stat()
        return cls(path, info.st_size, info.st_mtime_ns)

    @property
    def mtime_iso(self) -> str:
        return datetime.fromtimestamp(self.mtime_ns / 1e9, tz=timezone.utc).isoformat(timespec="seconds")


def export_fingerprints(
    files: Iterable[Path], months: Sequence[str], months_of: Callable[[Path], Iterable[str]]
) -> dict[str, str]:
    """The current fingerprint of each of ``months`` from the export files: a digest of the files that
    hold the month's rows (name, size, mtime) and the newest of their mtimes. ``months_of(path)`` says
    which months a file holds (cached by path, size and mtime, so only a changed file is read again)."""
    stats = sorted((ExportFile.stat(Path(p)) for p in files), key=lambda f: str(f.path))
    held = {f: set(months_of(f.path)) for f in stats}
    found = {}
    for month in months:
        holding = [f for f in stats if month in held[f]]
        if not holding:
            found[month] = EMPTY.text()
            continue
        digest = hashlib.sha1("\n".join(f"{f.path.name}:{f.size}:{f.mtime_ns}" for f in holding).encode())
        found[month] = Fingerprint(None, max(f.mtime_iso for f in holding), digest.hexdigest()[:12]).text()
    return found
