"""``transaction``: how every table replaces a window of months whole or not at all."""

import duckdb
import pytest

from crime_assets.common.sql import transaction


def test_a_failure_inside_keeps_the_rows_the_table_had(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE TABLE t (month VARCHAR, n INTEGER)")
    con.execute("INSERT INTO t VALUES ('2016-01', 1), ('2016-02', 2)")
    with pytest.raises(duckdb.ConversionException):
        with transaction(con):
            con.execute("DELETE FROM t WHERE month = '2016-02'")
            con.execute("INSERT INTO t VALUES ('2016-02', 'not a number')")
    assert con.execute("SELECT * FROM t ORDER BY month").fetchall() == [("2016-01", 1), ("2016-02", 2)]
    with pytest.raises(KeyboardInterrupt):  # an interrupted run too
        with transaction(con):
            con.execute("DELETE FROM t")
            raise KeyboardInterrupt
    assert con.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_what_succeeds_is_committed_for_other_connections(tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    con = duckdb.connect(path)
    con.execute("CREATE TABLE t (month VARCHAR, n INTEGER)")
    with transaction(con):
        con.execute("INSERT INTO t VALUES ('2016-03', 3)")
    con.close()
    with duckdb.connect(path, read_only=True) as reader:
        assert reader.execute("SELECT * FROM t").fetchall() == [("2016-03", 3)]
