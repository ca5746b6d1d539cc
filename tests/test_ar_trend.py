"""billing.ar_trend(_at): ar_summary_at at the 12 month-ends before a day, and on the day."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from pipelines.registry import VENDORS
from pipelines.views import SQL_DIR

TREND_SQL = SQL_DIR / "30_ar" / "96_ar_trend_at.sql"
COLUMNS = "source, currency, outstanding, overdue, open_count, overdue_count"


def month_ends_before(day: date, count: int = 12) -> list[date]:
    """The last `count` month-ends strictly before `day`, oldest first."""
    ends, first = [], day.replace(day=1)
    for _ in range(count):
        end = first - timedelta(days=1)
        ends.append(end)
        first = end.replace(day=1)
    return sorted(ends)


@pytest.mark.parametrize(
    "day",
    [date(2024, 3, 31), date(2024, 3, 15), date(2026, 1, 1), date(2025, 12, 31)],
    ids=["on-a-month-end", "leap-february", "first-of-a-year", "new-years-eve"],
)
def test_ar_trend_at_asks_ar_summary_at_for_each_month_end_and_the_day(day: date) -> None:
    """The macro's dates alone, against a stand-in ar_summary_at that echoes its argument."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA billing")
    con.execute(
        "CREATE MACRO billing.ar_summary_at(as_of) AS TABLE SELECT 'stub' AS source, "
        "'USD' AS currency, 0 AS open_count, 0 AS outstanding, 0 AS overdue_count, "
        "0 AS overdue, CAST(as_of AS DATE) AS asked"
    )
    con.execute(TREND_SQL.read_text())
    rows = con.execute(
        "SELECT t.as_of, s.asked FROM billing.ar_trend_at(CAST(? AS DATE)) AS t "
        "JOIN billing.ar_summary_at(t.as_of) AS s ON true ORDER BY t.as_of",
        [day.isoformat()],
    ).fetchall()
    days = [as_of for as_of, _ in rows]
    assert days == [*month_ends_before(day), day]
    assert all(as_of == asked for as_of, asked in rows)


def _by_day(rows: list[tuple]) -> dict[date, set[tuple]]:
    grouped: dict[date, set[tuple]] = {}
    for as_of, *figures in rows:
        grouped.setdefault(as_of, set()).add(tuple(figures))
    return grouped


def test_ar_trend_is_ar_summary_at_today_and_each_of_the_last_12_month_ends(make_sandbox) -> None:
    sb = make_sandbox(VENDORS["sequence"], invoices=60)
    sb.sync_ok()
    [(today,)] = sb.query("SELECT current_date")  # the views' own today
    trend = _by_day(sb.query(f"SELECT as_of, {COLUMNS} FROM billing.ar_trend"))
    assert set(trend) == {*month_ends_before(today), today}  # every day, for every series
    assert trend[today] == set(sb.query(f"SELECT {COLUMNS} FROM billing.ar_summary"))
    assert len(trend[today]) >= 2  # several currencies: a real comparison
    series = {row[:2] for row in trend[today]}
    for day in month_ends_before(today):
        expected = set(
            sb.query(f"SELECT {COLUMNS} FROM billing.ar_summary_at(CAST(? AS DATE))", [day])
        )
        # a source and currency without figures that day (no invoice yet) shows zeros
        zeros = {(*key, 0, 0, 0, 0) for key in series - {row[:2] for row in expected}}
        assert trend[day] == expected | zeros, day
    overdue_by_day = [sum(r[3] for r in trend.get(d, ())) for d in sorted(trend)]
    assert len(set(overdue_by_day)) > 1  # the figures move with the date
    keys = sb.query("SELECT source, currency, as_of, count(*) FROM billing.ar_trend GROUP BY ALL")
    assert all(count == 1 for *_, count in keys)


def test_ar_trend_equals_its_macro_at_current_date(make_sandbox) -> None:
    sb = make_sandbox(VENDORS["exsited"], invoices=30)
    sb.sync_ok()
    view = sb.query("SELECT * FROM billing.ar_trend ORDER BY ALL")
    macro = sb.query("SELECT * FROM billing.ar_trend_at(current_date) ORDER BY ALL")
    assert view == macro and view
