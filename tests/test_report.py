"""`invoice-sync report`: the page's figures against the billing views, its empty and failed
states, its command line, and the page itself in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from pipelines import cli
from pipelines.history import exactness_notes
from pipelines.registry import VENDORS
from pipelines.report import (
    ALL_SOURCES,
    Figures,
    ReportData,
    render_html,
    write_report,
)
from pipelines.sandbox import build_emulators, environment, serve
from pipelines.summary import _cell
from pipelines.sync import sync
from pipelines.views import build_views
from tests import chromium

SCRIPT = str(Path(sys.executable).with_name("invoice-sync"))


@dataclass
class Row:
    attrs: dict[str, str]
    cells: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


class Page(HTMLParser):
    """What the tests read from a page: table rows, every tag, the text, the style."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.rows: list[Row] = []
        self.style = ""
        self._text: list[str] = []
        self._cell: list[str] | None = None
        self._field: str | None = None
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag == "tr":
            self.rows.append(Row(attributes))
        elif tag in ("td", "th"):
            self._cell, self._field = [], attributes.get("data-field")
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self.rows[-1].cells.append(text)
            if self._field:
                self.rows[-1].fields[self._field] = text
            self._cell = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
            return
        self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self._text).split())

    def rows_with(self, attribute: str, css: str | None = None) -> list[Row]:
        return [
            r
            for r in self.rows
            if attribute in r.attrs and (css is None or css in r.attrs.get("class", "").split())
        ]

    def figure_rows(self) -> dict[tuple[str, str], Row]:
        return {
            (r.attrs["data-source"], r.attrs["data-currency"]): r
            for r in self.rows_with("data-outstanding")
        }


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All five sandbox vendors synced once: several sources and currencies (JPY, KWD...)."""
    db = tmp_path_factory.mktemp("report") / "invoices.duckdb"
    server = serve(build_emulators(invoices=40))
    try:
        with environment(server.settings()):
            results = sync(VENDORS.values(), db)
    finally:
        server.stop()
    assert all(r.ok for r in results), [r.describe() for r in results]
    return db


@pytest.fixture(scope="module")
def report_file(warehouse: Path) -> Path:
    return write_report(warehouse, warehouse.with_name("ar-report.html"))


@pytest.fixture(scope="module")
def page(report_file: Path) -> Page:
    return Page(report_file.read_text(encoding="utf-8"))


SUMMARY_FIELDS = ("outstanding", "overdue", "open_count", "overdue_count", "paid")


def test_figures_on_the_page_equal_ar_summary(warehouse: Path, page: Page) -> None:
    summary = query(
        warehouse, f"SELECT source, currency, {', '.join(SUMMARY_FIELDS)} FROM billing.ar_summary"
    )
    shown = page.figure_rows()
    assert {key for key in shown if key[0] != ALL_SOURCES} == {(s, c) for s, c, *_ in summary}
    assert {c for _, c, *_ in summary} >= {"JPY", "KWD", "USD"}
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for source, currency, *values in summary:
        row = shown[source, currency]
        for name, value in zip(SUMMARY_FIELDS, values, strict=True):
            assert Decimal(row.attrs[f"data-{name.replace('_', '-')}"]) == value, (row, name)
            assert row.fields[name] == _cell(value, currency), (row, name)
            totals[currency][name] += value
    for currency, added in totals.items():
        sources = [key for key in shown if key[1] == currency and key[0] != ALL_SOURCES]
        if len(sources) > 1:
            total = shown[ALL_SOURCES, currency]
            for name, value in added.items():
                assert Decimal(total.attrs[f"data-{name.replace('_', '-')}"]) == value


def test_amounts_carry_their_currencys_decimals(page: Page) -> None:
    pattern = {
        "JPY": r"\d{1,3}(,\d{3})*",
        "USD": r"\d{1,3}(,\d{3})*\.\d{2}",
        "KWD": r"\d{1,3}(,\d{3})*\.\d{3}",
    }
    checked = 0
    for (_, currency), row in page.figure_rows().items():
        if currency in pattern:
            for name in ("outstanding", "overdue", "paid", "billed"):
                assert re.fullmatch(pattern[currency], row.fields[name]), (currency, row.fields)
                checked += 1
    assert checked >= 12


def test_dso_is_outstanding_over_the_last_90_days_billing(warehouse: Path, page: Page) -> None:
    rows = query(
        warehouse,
        """
        WITH billed AS (
            SELECT source, currency, sum(total) AS billed
            FROM billing.invoices
            WHERE status NOT IN ('draft', 'void')
                AND issue_date > current_date - 90 AND issue_date <= current_date
            GROUP BY ALL
        )
        SELECT s.source, s.currency, s.outstanding, coalesce(b.billed, 0)
        FROM billing.ar_summary AS s LEFT JOIN billed AS b USING (source, currency)
        """,
    )
    shown = page.figure_rows()
    with_dso = 0
    for source, currency, outstanding, billed in rows:
        row = shown[source, currency]
        assert Decimal(row.attrs["data-billed"]) == billed
        if billed:
            expected = f"{round(outstanding / billed * 90, 1):,}"
            with_dso += 1
        else:
            expected = "n/a"
        assert row.fields["dso"] == expected, (source, currency)
    assert with_dso >= 5


def test_aging_on_the_page_equals_ar_aging(warehouse: Path, page: Page) -> None:
    aging = query(
        warehouse, "SELECT source, currency, aging_bucket, amount_due FROM billing.ar_aging"
    )
    shown = {
        (r.attrs["data-source"], r.attrs["data-currency"]): r
        for r in page.rows_with("data-source", "aging")
    }
    assert {(s, c) for s, c, *_ in aging} == {k for k in shown if k[0] != ALL_SOURCES}
    for source, currency, bucket, amount in aging:
        assert shown[source, currency].fields[bucket] == _cell(amount, currency)


def test_trend_on_the_page_equals_ar_trend(warehouse: Path, page: Page) -> None:
    added: dict[tuple[str, str], list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0, 0])
    for currency, as_of, *values in query(
        warehouse,
        "SELECT currency, as_of, outstanding, overdue, open_count, overdue_count "
        "FROM billing.ar_trend",
    ):
        for i, value in enumerate(values):
            added[currency, as_of.isoformat()][i] += value
    points = {
        (attrs["data-currency"], attrs["data-as-of"]): [
            Decimal(attrs["data-outstanding"]),
            Decimal(attrs["data-overdue"]),
            int(attrs["data-open-count"]),
            int(attrs["data-overdue-count"]),
        ]
        for tag, attrs in page.tags
        if tag == "g" and attrs.get("class") == "point"
    }
    assert points == dict(added)
    assert len({day for _, day in points}) == 13


def test_top_overdue_customers_per_currency(warehouse: Path, page: Page) -> None:
    expected = query(
        warehouse,
        """
        SELECT currency, source, customer_id, sum(amount_due) AS overdue, max(days_past_due)
        FROM billing.ar_overdue
        GROUP BY currency, source, customer_id, customer_name
        ORDER BY currency, overdue DESC, max(days_past_due) DESC, source, customer_id
        """,
    )
    top: dict[str, list[tuple]] = defaultdict(list)
    for currency, source, customer, overdue, days in expected:
        if len(top[currency]) < 10:
            top[currency].append((source, customer, _cell(overdue, currency), str(days)))
    shown: dict[str, list[tuple]] = defaultdict(list)
    for row in page.rows_with("data-customer-id"):
        shown[row.attrs["data-currency"]].append(
            (
                row.attrs["data-source"],
                row.attrs["data-customer-id"],
                row.fields["overdue"],
                row.fields["oldest_days"],
            )
        )
    assert shown == top
    assert max(len(rows) for rows in shown.values()) == 10


def test_data_checks_and_syncs_are_on_the_page(warehouse: Path, page: Page) -> None:
    assert query(warehouse, "SELECT count(*) FROM billing.data_checks") == [(0,)]
    assert "All passed" in page.text
    runs = {r.attrs["data-source"]: r.attrs["data-status"] for r in page.rows_with("data-status")}
    assert runs == dict.fromkeys(VENDORS, "succeeded")


def test_the_page_loads_nothing_from_anywhere(page: Page) -> None:
    """No script, stylesheet, font, image or frame: the page is whole by itself."""
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "base", "image"}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not re.match(r"\s*([a-z]+:)?//", value), (tag, name, value)
            if name in ("src", "href", "xlink:href", "action"):
                assert value.startswith("#"), (tag, name, value)
    assert "url(" not in page.style and "@import" not in page.style
    assert "@media print" in page.style


def test_values_from_the_database_are_escaped(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script>'
    data = ReportData(
        as_of=date(2026, 6, 30),
        figures=[
            Figures(hostile, "USD", 1, Decimal("10.5"), 1, Decimal("10.5"), Decimal(0), Decimal(0))
        ],
        aging=[(hostile, "USD", "90+", 1, Decimal("10.5"))],
        trend=[(hostile, "USD", date(2026, 6, 30), Decimal("10.5"), Decimal("10.5"), 1, 1)],
        customers=[("USD", hostile, "c1", hostile, 1, Decimal("10.5"), 120)],
        checks=[("unknown_status", hostile, "inv-1", f"vendor status {hostile}")],
        runs=[(hostile, None, "failed", 1, None, None, f"{hostile}: HTTP 401", None)],
    )
    html = render_html(data, hostile, datetime(2026, 6, 30, 12, tzinfo=UTC))
    assert "<script" not in html
    parsed = Page(html)
    assert hostile in parsed.text
    assert "The data checks found 1 problem" in parsed.text
    assert "It has never synced successfully" in parsed.text


def test_an_empty_warehouse_gives_a_page_that_says_so(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    build_views(db, list(VENDORS))
    shown = Page(write_report(db, tmp_path / "empty.html").read_text(encoding="utf-8"))
    for words in (
        "No invoices in this warehouse yet",
        "Nothing outstanding",
        "No invoices at any of these dates",
        "No overdue invoices",
        "All passed",
        "No syncs recorded",
    ):
        assert words in shown.text
    assert not shown.figure_rows()


def test_a_failed_last_sync_is_on_the_page_above_the_figures_it_left(
    make_sandbox, tmp_path: Path
) -> None:
    sb = make_sandbox(VENDORS["meteroid"], invoices=20)
    sb.sync_ok()
    with environment({**sb.settings, "SOURCES__METEROID__API_KEY": "rotated"}):
        [failed] = sync([sb.vendor], sb.db)
    assert not failed.ok
    shown = Page(write_report(sb.db, tmp_path / "failed.html").read_text(encoding="utf-8"))
    assert "The last sync of meteroid failed: meteroid: the API refused our credentials" in (
        shown.text
    )
    assert "Its figures are those of its last successful sync" in shown.text
    assert [r.attrs["data-status"] for r in shown.rows_with("data-status")] == ["failed"]
    assert "rotated" not in shown.text
    summary = sb.query("SELECT source, currency, outstanding FROM billing.ar_summary")
    rows = shown.figure_rows()
    assert summary and all(
        Decimal(rows[s, c].attrs["data-outstanding"]) == o for s, c, o in summary
    )


def test_a_source_that_never_synced_is_on_the_page(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(VENDORS["sequence"], invoices=10)
    with environment({**sb.settings, "SOURCES__SEQUENCE__CLIENT_SECRET": "wrong"}):
        [failed] = sync([sb.vendor], sb.db)
    assert not failed.ok
    shown = Page(write_report(sb.db, tmp_path / "never.html").read_text(encoding="utf-8"))
    assert "The last sync of sequence failed" in shown.text
    assert "It has never synced successfully, so this page has no figures from it" in shown.text
    assert "No invoices in this warehouse yet" in shown.text


def test_a_warehouse_built_before_ar_trend_gets_the_rest_of_the_page(
    warehouse: Path, tmp_path: Path
) -> None:
    older = tmp_path / "older.duckdb"
    shutil.copy(warehouse, older)
    with duckdb.connect(str(older)) as con:
        con.execute("DROP VIEW billing.ar_trend")
        con.execute("DROP MACRO TABLE billing.ar_trend_at")
    shown = Page(write_report(older, tmp_path / "older.html").read_text(encoding="utf-8"))
    assert "This warehouse has no billing.ar_trend yet: run invoice-sync sync" in shown.text
    assert shown.figure_rows() and shown.rows_with("data-status")


def test_as_of_a_past_day_shows_ar_summary_at_that_day(warehouse: Path, tmp_path: Path) -> None:
    day = date.today() - timedelta(days=45)
    shown = Page(write_report(warehouse, tmp_path / "past.html", day).read_text(encoding="utf-8"))
    expected = query(
        warehouse,
        "SELECT source, currency, overdue FROM billing.ar_summary_at(CAST(? AS DATE))",
        [day.isoformat()],
    )
    rows = shown.figure_rows()
    assert all(Decimal(rows[s, c].attrs["data-overdue"]) == o for s, c, o in expected)
    assert f"as of {day.day} {day:%b %Y}" in shown.text
    with duckdb.connect(str(warehouse), read_only=True) as con:  # what summary --as-of says
        notes = exactness_notes(con, day, sorted({s for s, _ in rows if s != ALL_SOURCES}))
    assert "meteroid: exact (the vendor dates every change)" in notes
    assert "How exact this past day is. " + "; ".join(notes) + "." in shown.text
    billed = query(  # the 90 days up to that day, as the invoices stood on it
        warehouse,
        "SELECT source, currency, sum(total) FROM billing.ar_invoices_at(CAST($1 AS DATE)) "
        "WHERE status NOT IN ('draft', 'void') AND issue_date > CAST($1 AS DATE) - 90 "
        "AND issue_date <= CAST($1 AS DATE) GROUP BY ALL",
        [day.isoformat()],
    )
    assert billed
    assert all(Decimal(rows[s, c].attrs["data-billed"]) == b for s, c, b in billed)
    assert sum(
        Decimal(r.attrs["data-billed"])
        for r in rows.values()
        if r.attrs["data-source"] != ALL_SOURCES
    ) == sum(b for *_, b in billed)
    assert expected != query(warehouse, "SELECT source, currency, overdue FROM billing.ar_summary")


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_report_command_prints_the_path_it_wrote(warehouse: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [SCRIPT, "report", "--db", str(warehouse)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")},
    )
    assert run.returncode == 0, run.stderr
    written = tmp_path / "ar-report.html"
    assert run.stdout == f"{written}\n" and run.stderr == ""
    assert "Accounts receivable" in written.read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no database at"),
        ("not-duckdb", "is not a DuckDB database"),
        ("no-views", "has no billing views yet: run `invoice-sync sync` first"),
        ("unwritable", "cannot write the report to"),
    ],
)
def test_report_command_says_what_is_wrong_in_one_line(
    case: str, message: str, warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    db, out = warehouse, tmp_path / "r.html"
    if case == "missing":
        db = tmp_path / "none.duckdb"
    elif case == "not-duckdb":
        db = tmp_path / "notes.txt"
        db.write_text("not a database\n")
    elif case == "no-views":
        db = tmp_path / "bare.duckdb"
        duckdb.connect(str(db)).close()
    else:
        out = tmp_path / "no such folder" / "r.html"
    status, printed, err = _run(["report", "--db", str(db), "--out", str(out)], capsys)
    assert status == 2 and printed == ""
    assert err.count("\n") == 1 and err.startswith("invoice-sync: ") and message in err
    assert not out.exists()


# ---- the page in a real browser --------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[str]:
    found = chromium.find_chromium()
    if found is None:
        reason = "no Chromium found (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser test (.ci/run installs it)")
        pytest.skip(reason)
    yield found


def test_the_page_renders_in_chromium_without_errors_or_requests(
    browser: str, report_file: Path
) -> None:
    loaded = chromium.load(report_file.as_uri(), browser, scale=0.25)
    assert loaded.errors == []
    assert loaded.console == [] and loaded.exceptions == []
    assert loaded.requests == [report_file.as_uri()]
    for screenshot in (loaded.screenshot, loaded.print_screenshot):
        width, height, _ = chromium.png_pixels(screenshot)
        colours, drawn = chromium.drawn_share(screenshot)
        assert width == 320 and height > 1000  # the whole page, a quarter of its size
        assert colours > 100 and drawn > 0.05, (colours, drawn)


def test_an_empty_page_renders_in_chromium_too(browser: str, tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    build_views(db, list(VENDORS))
    loaded = chromium.load(write_report(db, tmp_path / "empty.html").as_uri(), browser, scale=0.5)
    assert loaded.errors == [] and len(loaded.requests) == 1
    colours, drawn = chromium.drawn_share(loaded.screenshot)
    assert colours > 20 and drawn > 0.01


def test_the_browser_check_catches_errors_requests_and_blank_pages(
    browser: str, tmp_path: Path
) -> None:
    """The detector itself: each deliberate fault is seen; a blank page is blank."""
    pages = {
        "console.html": "<script>console.error('deliberate error 42')</script><p>x</p>",
        "throws.html": "<script>undefinedFunction()</script><p>x</p>",
        "fetches.html": '<img src="http://example.invalid/logo.png"><p>x</p>',
        "blank.html": "",
    }
    for name, body in pages.items():
        (tmp_path / name).write_text(f"<!doctype html><html><body>{body}</body></html>")
    console = chromium.load((tmp_path / "console.html").as_uri(), browser, scale=0.25)
    assert console.errors == ["deliberate error 42"]
    throws = chromium.load((tmp_path / "throws.html").as_uri(), browser, scale=0.25)
    assert len(throws.errors) == 1 and "undefinedFunction is not defined" in throws.errors[0]
    fetches = chromium.load((tmp_path / "fetches.html").as_uri(), browser, scale=0.25)
    assert "http://example.invalid/logo.png" in fetches.requests
    assert any("Failed to load resource" in error for error in fetches.errors)
    blank = chromium.load((tmp_path / "blank.html").as_uri(), browser, scale=0.25)
    assert chromium.drawn_share(blank.screenshot) == (1, 0.0)
    assert blank.errors == []
