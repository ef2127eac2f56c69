from datetime import datetime

import pytest

from crime_assets.common.months import MonthWindow, parse_month


def test_window_of_a_range_spans_whole_months_end_exclusive():
    window = MonthWindow.from_keys("2015-11", "2016-02")
    assert window.start == datetime(2015, 11, 1) and window.end == datetime(2016, 3, 1)
    assert window.keys == ["2015-11", "2015-12", "2016-01", "2016-02"]
    assert window.label == "2015-11...2016-02"
    assert [m.label for m in window.months()] == window.keys


@pytest.mark.parametrize("bad", ["2016-13", "2016-3", "16-03", "2016-03-01", "2016-03'; drop table x", None])
def test_anything_but_a_month_key_is_rejected(bad):
    with pytest.raises(ValueError, match="not a month key"):
        parse_month(bad)


def test_range_that_ends_before_it_starts_is_rejected():
    with pytest.raises(ValueError, match="ends before it starts"):
        MonthWindow.from_keys("2016-05", "2016-04")


def test_chunks_cover_the_window_in_order():
    chunks = MonthWindow.from_keys("2015-11", "2016-12").chunks(5)
    assert [c.label for c in chunks] == ["2015-11...2016-03", "2016-04...2016-08", "2016-09...2016-12"]
    assert [k for c in chunks for k in c.keys] == MonthWindow.from_keys("2015-11", "2016-12").keys
    with pytest.raises(ValueError, match="at least one month"):
        MonthWindow.from_keys("2016-01").chunks(0)
