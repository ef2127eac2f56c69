"""A handful of crime categories that analysts compare across places, grouped from the primary type.

The grouping, by the upper-cased primary type with runs of spaces collapsed:

- violent: offences against a person by force or threat: HOMICIDE, CRIM SEXUAL ASSAULT (spelt
  CRIMINAL SEXUAL ASSAULT in later records), ROBBERY, BATTERY, ASSAULT, KIDNAPPING, HUMAN TRAFFICKING,
  INTIMIDATION, STALKING, and DOMESTIC VIOLENCE (a type of the earliest records).
- property: taking or damaging property, and entering it: THEFT, BURGLARY, MOTOR VEHICLE THEFT,
  CRIMINAL DAMAGE, ARSON, DECEPTIVE PRACTICE (fraud), CRIMINAL TRESPASS.
- drugs: NARCOTICS and OTHER NARCOTIC VIOLATION.
- weapons: WEAPONS VIOLATION and CONCEALED CARRY LICENSE VIOLATION.
- public_order: vice and public-order offences: PROSTITUTION, GAMBLING, LIQUOR LAW VIOLATION,
  PUBLIC PEACE VIOLATION, INTERFERENCE WITH PUBLIC OFFICER, OBSCENITY, PUBLIC INDECENCY.
- other: everything else, e.g. OTHER OFFENSE, OFFENSE INVOLVING CHILDREN, SEX OFFENSE (mostly
  sexual abuse and indecent solicitation, which the police report apart from assault),
  NON-CRIMINAL, a primary type first seen after this list was written, or none at all.

Every incident falls in exactly one category, so the category counts of a cell sum to its incidents.
"""

from __future__ import annotations

import re

CATEGORIES: dict[str, tuple[str, ...]] = {
    "violent": ("HOMICIDE", "CRIM SEXUAL ASSAULT", "CRIMINAL SEXUAL ASSAULT", "ROBBERY", "BATTERY", "ASSAULT",
                "KIDNAPPING", "HUMAN TRAFFICKING", "INTIMIDATION", "STALKING", "DOMESTIC VIOLENCE"),
    "property": ("THEFT", "BURGLARY", "MOTOR VEHICLE THEFT", "CRIMINAL DAMAGE", "ARSON", "DECEPTIVE PRACTICE",
                 "CRIMINAL TRESPASS"),
    "drugs": ("NARCOTICS", "OTHER NARCOTIC VIOLATION"),
    "weapons": ("WEAPONS VIOLATION", "CONCEALED CARRY LICENSE VIOLATION"),
    "public_order": ("PROSTITUTION", "GAMBLING", "LIQUOR LAW VIOLATION", "PUBLIC PEACE VIOLATION",
                     "INTERFERENCE WITH PUBLIC OFFICER", "OBSCENITY", "PUBLIC INDECENCY"),
}
OTHER = "other"
CATEGORY_NAMES: tuple[str, ...] = (*CATEGORIES, OTHER)

_CATEGORY_OF = {primary_type: name for name, types in CATEGORIES.items() for primary_type in types}


def normalise_primary_type(primary_type: str | None) -> str | None:
    return None if primary_type is None else re.sub(r"\s+", " ", primary_type.strip().upper())


def category_of(primary_type: str | None) -> str:
    """The category of one primary type (``other`` for unknown or missing types)."""
    return _CATEGORY_OF.get(normalise_primary_type(primary_type) or "", OTHER)
