"""Benchmarks and the package never import the test package (what they share lives in crime_assets/)."""

import re

from crime_assets_tests.helpers import REPO


def test_benchmarks_and_the_package_do_not_import_the_tests():
    importers = [str(path.relative_to(REPO)) for folder in ("bench", "crime_assets") for path in (REPO / folder).rglob("*.py")
                 if re.search(r"^\s*(from|import) crime_assets_tests\b", path.read_text(), re.MULTILINE)]
    assert not importers, f"import the test package: {importers}"
