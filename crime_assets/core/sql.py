"""Load the .sql files kept next to the code that runs them."""

from functools import cache
from pathlib import Path

_HERE = Path(__file__).parent


@cache
def sql(name: str) -> str:
    return (_HERE / f"{name}.sql").read_text()
