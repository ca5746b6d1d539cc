"""`invoice-sync report`: one self-contained HTML page of the AR figures, for people.

Everything on it comes from the `billing` views and macros as of one day (`--as-of`, today
by default), read in one read-only transaction: the figures per source and currency
(`ar_summary_at`) with days sales outstanding (`ar_invoices_at`), the aging per currency
(`ar_aging_at`), the trend at the last 12 month-ends (`ar_trend_at`), the top overdue
customers (`ar_overdue_at`), the data checks and each source's last sync. The page loads
nothing: its style is inline, its charts are SVG drawn here and it has no script, so it
works offline, as an e-mail attachment and on paper. Amounts are formatted as `invoice-sync
summary` formats them, in each invoice's own currency; different currencies are never added
together (an "All sources" total adds one currency's sources only).
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from html import escape
from importlib import metadata
from pathlib import Path
from string import Template
from typing import Any

from pipelines.contract import AGING_BUCKETS
from pipelines.destinations import MISSING_OBJECT, Destination, describe, open_read_only
from pipelines.history import exactness_notes
from pipelines.runs import last_runs
from pipelines.summary import _cell
from pipelines.warehouse import WarehouseError, is_duckdb_file

DEFAULT_OUT = "ar-report.html"
DSO_WINDOW_DAYS = 90
TOP_CUSTOMERS = 10
CHECKS_SHOWN = 50
ALL_SOURCES = "All sources"
BUCKET_COLOURS = dict(
    zip(AGING_BUCKETS, ("#4c78a8", "#e9c46a", "#f4a261", "#e76f51", "#9b2226"), strict=True)
)
OUTSTANDING_COLOUR = "#a9c1dd"
OVERDUE_COLOUR = "#c0392b"


class ReportError(RuntimeError):
    """Nothing to report from, or nowhere to write: one line, and bad usage's exit status."""

    exit_status = 2


@dataclass(frozen=True)
class Figures:
    """One source's figures in one currency, and what it billed in the DSO window."""

    source: str
    currency: str
    open_count: int
    outstanding: Decimal
    overdue_count: int
    overdue: Decimal
    paid: Decimal
    billed: Decimal

    @property
    def dso(self) -> Decimal | None:
        """Days sales outstanding: outstanding / billed in the window x its days; None when
        nothing was billed in the window."""
        if not self.billed:
            return None
        return (self.outstanding / self.billed * DSO_WINDOW_DAYS).quantize(
            Decimal("0.1"), ROUND_HALF_UP
        )

    @property
    def overdue_share(self) -> Decimal | None:
        if not self.outstanding:
            return None
        return (self.overdue / self.outstanding * 100).quantize(Decimal("1"), ROUND_HALF_UP)


@dataclass(frozen=True)
class TrendPoint:
    as_of: date
    outstanding: Decimal
    overdue: Decimal
    open_count: int
    overdue_count: int


@dataclass
class ReportData:
    as_of: date
    figures: list[Figures]
    aging: list[tuple]  # source, currency, aging_bucket, invoice_count, amount_due
    trend: list[tuple] | None  # ar_trend_at's rows; None where the warehouse lacks it
    customers: list[tuple]  # currency, source, customer id and name, invoices, overdue, days
    checks: list[tuple]  # check, source, invoice_id, detail
    runs: list[tuple]  # pipelines.runs.last_runs
    # for a past day, per source: what is exact and what inferred (pipelines/history.py)
    exactness: list[str] = field(default_factory=list)


FIGURES_SQL = f"""
WITH billed AS (
    SELECT source, currency, sum(total) AS billed
    FROM billing.ar_invoices_at(CAST($1 AS DATE))
    WHERE status NOT IN ('draft', 'void')
        AND issue_date > CAST($1 AS DATE) - {DSO_WINDOW_DAYS}
        AND issue_date <= CAST($1 AS DATE)
    GROUP BY source, currency
)
SELECT s.source, s.currency, s.open_count, s.outstanding, s.overdue_count, s.overdue, s.paid,
    coalesce(b.billed, 0) AS billed
FROM billing.ar_summary_at(CAST($1 AS DATE)) AS s
LEFT JOIN billed AS b ON b.source = s.source AND b.currency = s.currency
ORDER BY s.currency, s.source
"""
AGING_SQL = """
SELECT source, currency, aging_bucket, invoice_count, amount_due
FROM billing.ar_aging_at(CAST($1 AS DATE))
"""
TREND_SQL = """
SELECT source, currency, as_of, outstanding, overdue, open_count, overdue_count
FROM billing.ar_trend_at(CAST($1 AS DATE))
ORDER BY currency, as_of, source
"""
CUSTOMERS_SQL = f"""
SELECT currency, source, customer_id, customer_name, invoices, overdue, oldest_days
FROM (
    SELECT currency, source, customer_id, customer_name, count(*) AS invoices,
        sum(amount_due) AS overdue, max(days_past_due) AS oldest_days,
        row_number() OVER (
            PARTITION BY currency
            ORDER BY sum(amount_due) DESC, max(days_past_due) DESC, source, customer_id
        ) AS rank
    FROM billing.ar_overdue_at(CAST($1 AS DATE))
    GROUP BY currency, source, customer_id, customer_name
) AS ranked
WHERE rank <= {TOP_CUSTOMERS}
ORDER BY currency, rank
"""
CHECKS_SQL = """
SELECT "check", source, coalesce(invoice_id, ''), detail FROM billing.data_checks
ORDER BY "check", source, invoice_id
"""


def _open(db_path: Path | Destination) -> Any:
    try:
        return open_read_only(db_path)
    except WarehouseError as err:
        raise ReportError(str(err)) from None


def _trend(con: Any, day: str) -> list[tuple] | None:
    """ar_trend_at's rows, or None for a warehouse whose views predate it (asked first: a
    failed query would abort the transaction)."""
    [(built,)] = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'billing' AND table_name = 'ar_trend'"
    ).fetchall()
    return con.execute(TREND_SQL, [day]).fetchall() if built else None


def read_warehouse(db_path: str | Path | Destination, as_of: date | None = None) -> ReportData:
    """Everything the page shows, read from the `billing` views in one transaction."""
    if not isinstance(db_path, Destination):
        db_path = Path(db_path)
    day = as_of or date.today()
    params = [day.isoformat()]
    con = _open(db_path)
    try:
        con.execute("BEGIN TRANSACTION")
        figures = [Figures(*row) for row in con.execute(FIGURES_SQL, params).fetchall()]
        aging = con.execute(AGING_SQL, params).fetchall()
        customers = con.execute(CUSTOMERS_SQL, params).fetchall()
        checks = con.execute(CHECKS_SQL).fetchall()
        trend = _trend(con, params[0])
        runs = last_runs(con)  # last: [] where no sync ran, after a query that failed
        sources = [row.source for row in figures]
        exactness = exactness_notes(con, day, sources) if day < date.today() else []
    except MISSING_OBJECT:
        raise ReportError(
            f"{describe(db_path)} has no billing views yet: run `invoice-sync sync` first"
        ) from None
    finally:
        con.close()
    return ReportData(day, figures, aging, trend, customers, checks, runs, exactness)


# ---- formatting -------------------------------------------------------------------------


def _e(value: object) -> str:
    """Any value from the database, escaped for HTML text and attributes."""
    return escape("" if value is None else str(value), quote=True)


def _money(value: Decimal, currency: str) -> str:
    return _e(_cell(value, currency))


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _moment(value: datetime | None) -> str:
    if value is None:
        return "never"
    return f"{_day(value.astimezone(UTC))} {value.astimezone(UTC):%H:%M} UTC"


def _percent(value: Decimal | None) -> str:
    return "–" if value is None else f"{value}%"


def _dso(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _data(**fields: object) -> str:
    """data-* attributes carrying exact values, for scripts and tests."""
    return "".join(
        f' data-{name.replace("_", "-")}="{_e(value)}"' for name, value in fields.items()
    )


def _currencies(figures: Iterable[Figures]) -> list[str]:
    return sorted({f.currency for f in figures})


def currency_totals(figures: Sequence[Figures]) -> dict[str, Figures]:
    """Per currency, its sources added up (one currency at a time, never across them)."""
    totals: dict[str, Figures] = {}
    for currency in _currencies(figures):
        rows = [f for f in figures if f.currency == currency]
        totals[currency] = Figures(
            ALL_SOURCES,
            currency,
            sum(f.open_count for f in rows),
            sum((f.outstanding for f in rows), Decimal(0)),
            sum(f.overdue_count for f in rows),
            sum((f.overdue for f in rows), Decimal(0)),
            sum((f.paid for f in rows), Decimal(0)),
            sum((f.billed for f in rows), Decimal(0)),
        )
    return totals


# ---- charts (inline SVG) -----------------------------------------------------------------


def _coord(value: Decimal | int) -> str:
    """An SVG coordinate, to a tenth of a pixel (computed in Decimal, never float)."""
    return str(Decimal(value).quantize(Decimal("0.1"), ROUND_HALF_UP))


def _nice_step(top: Decimal, steps: int = 4) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that reaches `top` in `steps`."""
    raw = top / steps
    for mantissa in ("1", "2", "2.5", "5", "10"):
        step = Decimal(mantissa).scaleb(raw.adjusted())
        if step >= raw:
            return step
    raise AssertionError("unreachable: 10 x 10^adjusted exceeds any number")


def _tick(value: Decimal) -> str:
    return f"{value.normalize():,f}"


def _legend(items: Sequence[tuple[str, str]], x: int, y: int) -> str:
    parts = []
    for label, colour in items:
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" rx="2" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{y}">{_e(label)}</text>'
        )
        x += 24 + 7 * len(label)
    return "".join(parts)


def aging_chart(currency: str, bars: Sequence[tuple[str, dict[str, tuple[int, Decimal]]]]) -> str:
    """One stacked bar per source (bucket: (invoices, amount)), scaled to the largest total."""
    width, label_w, bar_w, row_h = 1040, 110, 790, 26
    height = row_h * len(bars) + 4
    largest = max((sum(b[1] for b in buckets.values()) for _, buckets in bars), default=0)
    body = []
    for index, (label, buckets) in enumerate(bars):
        y = 4 + index * row_h
        total = sum((amount for _, amount in buckets.values()), Decimal(0))
        body.append(f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">{_e(label)}</text>')
        body.append(f'<rect x="{label_w}" y="{y}" width="{bar_w}" height="18" fill="#f0f2f5"/>')
        x = Decimal(label_w)
        for bucket in AGING_BUCKETS:
            count, amount = buckets.get(bucket, (0, Decimal(0)))
            if not amount:
                continue
            w = amount / largest * bar_w
            tip = f"{label} · {bucket}: {currency} {_cell(amount, currency)} ({count} invoices)"
            body.append(
                f'<rect x="{_coord(x)}" y="{y}" width="{_coord(w)}" height="18" '
                f'fill="{BUCKET_COLOURS[bucket]}"><title>{_e(tip)}</title></rect>'
            )
            x += w
        body.append(
            f'<text x="{width - 4}" y="{y + 13}" text-anchor="end" class="strong">'
            f"{_money(total, currency)}</text>"
        )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{_e(currency)} aging by source">' + "".join(body) + "</svg>"
    )


def trend_chart(currency: str, points: Sequence[TrendPoint]) -> str:
    """Outstanding per date as a column, the overdue part of it drawn over its foot."""
    width, height, left, right, top, bottom = 620, 290, 76, 614, 26, 246
    largest = max((p.outstanding for p in points), default=Decimal(0))
    step = _nice_step(largest) if largest else Decimal(1)
    axis_top = step * (largest / step).to_integral_value(ROUND_CEILING) if largest else step
    plot_h = bottom - top

    def y_of(value: Decimal) -> Decimal:
        return bottom - value / axis_top * plot_h

    body = [
        _legend(
            [("Outstanding", OUTSTANDING_COLOUR), ("of which overdue", OVERDUE_COLOUR)], left, 12
        )
    ]
    tick = Decimal(0)
    while tick <= axis_top:
        y = _coord(y_of(tick))
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{y}" y2="{y}" stroke="#e4e7eb"/>'
            f'<text x="{left - 6}" y="{y}" dy="4" text-anchor="end">{_e(_tick(tick))}</text>'
        )
        tick += step
    slot = Decimal(right - left) / max(len(points), 1)
    for index, point in enumerate(points):
        x = left + slot * index + slot * Decimal("0.2")
        w = slot * Decimal("0.6")
        tip = (
            f"{_day(point.as_of)}: outstanding {currency} {_cell(point.outstanding, currency)} "
            f"({point.open_count} invoices), overdue {_cell(point.overdue, currency)} "
            f"({point.overdue_count})"
        )
        body.append(
            f'<g class="point"{_data(currency=currency, **asdict(point))}><title>{_e(tip)}</title>'
        )
        for value, colour in (
            (point.outstanding, OUTSTANDING_COLOUR),
            (point.overdue, OVERDUE_COLOUR),
        ):
            if value:
                body.append(
                    f'<rect x="{_coord(x)}" y="{_coord(y_of(value))}" width="{_coord(w)}" '
                    f'height="{_coord(value / axis_top * plot_h)}" fill="{colour}"/>'
                )
        middle = _coord(x + w / 2)
        last = index == len(points) - 1
        first_line = f"{point.as_of.day} {point.as_of:%b}" if last else f"{point.as_of:%b}"
        second_line = "as of" if last else f"{point.as_of:%Y}"
        body.append(
            f'<text x="{middle}" y="{bottom + 16}" text-anchor="middle">{first_line}</text>'
            f'<text x="{middle}" y="{bottom + 30}" text-anchor="middle" class="faint">'
            f"{second_line}</text></g>"
        )
    body.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#9aa5b1"/>')
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{_e(currency)} outstanding and overdue at month-ends">'
        + "".join(body)
        + "</svg>"
    )


# ---- sections ---------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[str], numeric_from: int, css: str = "") -> str:
    """A table whose columns from `numeric_from` on are right-aligned figures."""
    head = "".join(
        f'<th class="num">{h}</th>' if i >= numeric_from else f"<th>{h}</th>"
        for i, h in enumerate(headers)
    )
    return (
        f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _notice(kind: str, html_text: str) -> str:
    return f'<p class="notice {kind}">{html_text}</p>'


def notices(data: ReportData) -> str:
    """What a reader must know before trusting the figures: no data, failed syncs, checks."""
    out = []
    if not data.figures:
        out.append(
            _notice(
                "info",
                "<strong>No invoices in this warehouse yet.</strong> Run <code>invoice-sync "
                "sync</code> (or try <code>invoice-sync demo</code>); the sections below are "
                "empty until then.",
            )
        )
    for source, last_success, status, *_, error, _ in data.runs:
        if status == "succeeded":
            continue
        since = (
            f"Its figures are those of its last successful sync, {_e(_moment(last_success))}."
            if last_success
            else "It has never synced successfully, so this page has no figures from it."
        )
        out.append(
            _notice(
                "bad",
                f"<strong>The last sync of {_e(source)} "
                f"{'was interrupted' if status == 'interrupted' else 'failed'}:</strong> "
                f"{_e(error)}. {since}",
            )
        )
    if data.exactness:
        out.append(
            _notice(
                "info",
                "<strong>How exact this past day is.</strong> "
                + "; ".join(_e(note) for note in data.exactness)
                + ".",
            )
        )
    if data.checks:
        noun = "problem" if len(data.checks) == 1 else "problems"
        out.append(
            _notice(
                "warn",
                f"<strong>The data checks found {len(data.checks)} {noun}</strong>: see "
                '<a href="#checks">Data checks</a>.',
            )
        )
    return "".join(out)


def overview(totals: dict[str, Figures]) -> str:
    if not totals:
        return '<p class="muted">No invoices.</p>'
    tiles = []
    for currency, t in totals.items():
        tiles.append(
            f'<div class="tile"{_data(currency=currency)}>'
            f'<div class="ccy">{_e(currency)}</div>'
            f'<div class="big">{_money(t.outstanding, currency)}</div>'
            '<div class="muted small">outstanding</div><dl>'
            f'<dt>Overdue</dt><dd class="bad">{_money(t.overdue, currency)}</dd>'
            f"<dt>Share overdue</dt><dd>{_percent(t.overdue_share)}</dd>"
            f"<dt>Open invoices</dt><dd>{t.open_count}</dd>"
            f"<dt>of which overdue</dt><dd>{t.overdue_count}</dd>"
            f"<dt>DSO</dt><dd>{_dso(t.dso)} days</dd>"
            "</dl></div>"
        )
    return f'<div class="tiles">{"".join(tiles)}</div>'


FIGURE_HEADERS = (
    "Source",
    "Currency",
    "Outstanding",
    "Overdue",
    "Overdue<br>share",
    "Open<br>invoices",
    "Overdue<br>invoices",
    "Paid",
    f"Billed,<br>{DSO_WINDOW_DAYS} days",
    "DSO,<br>days",
)


def _figures_row(f: Figures, css: str = "") -> str:
    c = f.currency
    cells = (
        f'<td class="nowrap">{_e(f.source)}</td><td>{_e(c)}</td>'
        f'<td class="num" data-field="outstanding">{_money(f.outstanding, c)}</td>'
        f'<td class="num" data-field="overdue">{_money(f.overdue, c)}</td>'
        f'<td class="num">{_percent(f.overdue_share)}</td>'
        f'<td class="num" data-field="open_count">{f.open_count}</td>'
        f'<td class="num" data-field="overdue_count">{f.overdue_count}</td>'
        f'<td class="num" data-field="paid">{_money(f.paid, c)}</td>'
        f'<td class="num" data-field="billed">{_money(f.billed, c)}</td>'
        f'<td class="num" data-field="dso">{_dso(f.dso)}</td>'
    )
    return f'<tr class="{css}"{_data(**asdict(f))}>{cells}</tr>'


def figures_table(figures: Sequence[Figures], totals: dict[str, Figures]) -> str:
    if not figures:
        return '<p class="muted">No invoices.</p>'
    rows = []
    for currency, total in totals.items():
        sources = [f for f in figures if f.currency == currency]
        rows.extend(_figures_row(f, "first" if i == 0 else "") for i, f in enumerate(sources))
        if len(sources) > 1:
            rows.append(_figures_row(total, "total"))
    return f'<div class="scroll">{_table(FIGURE_HEADERS, rows, 2, "figures")}</div>'


def aging_section(aging: Sequence[tuple]) -> str:
    by_currency: dict[str, dict[str, dict[str, tuple[int, Decimal]]]] = defaultdict(dict)
    for source, currency, bucket, count, amount in aging:
        by_currency[currency].setdefault(source, {})[bucket] = (count, amount)
    if not by_currency:
        return '<p class="muted">Nothing outstanding.</p>'
    parts = [
        '<p class="legend">'
        + "".join(
            f'<i class="key" style="background:{BUCKET_COLOURS[b]}"></i>{b} ' for b in AGING_BUCKETS
        )
        + '<span class="muted">days past due on the as-of date</span></p>'
    ]
    for currency in sorted(by_currency):
        sources = dict(sorted(by_currency[currency].items()))
        bars = list(sources.items())
        if len(bars) > 1:
            bars.append((ALL_SOURCES, _added_buckets(sources.values())))
        rows = []
        for label, buckets in bars:
            cells = "".join(
                f'<td class="num" data-field="{b}">'
                f"{_money(buckets.get(b, (0, Decimal(0)))[1], currency)}</td>"
                for b in AGING_BUCKETS
            )
            total = sum((amount for _, amount in buckets.values()), Decimal(0))
            css = "total" if label == ALL_SOURCES else ""
            rows.append(
                f'<tr class="{css} aging"{_data(source=label, currency=currency)}>'
                f"<td>{_e(label)}</td>{cells}"
                f'<td class="num" data-field="total">{_money(total, currency)}</td></tr>'
            )
        headers = (
            "Source",
            *(
                f'<i class="key" style="background:{BUCKET_COLOURS[b]}"></i>{b}'
                for b in AGING_BUCKETS
            ),
            "Total",
        )
        parts.append(
            f'<figure class="keep"><h3>{_e(currency)}</h3>{aging_chart(currency, bars)}'
            f"{_table(headers, rows, 1, 'compact')}</figure>"
        )
    return "".join(parts)


def _added_buckets(
    sources: Iterable[dict[str, tuple[int, Decimal]]],
) -> dict[str, tuple[int, Decimal]]:
    added: dict[str, tuple[int, Decimal]] = {}
    for buckets in sources:
        for bucket, (count, amount) in buckets.items():
            before_count, before_amount = added.get(bucket, (0, Decimal(0)))
            added[bucket] = (before_count + count, before_amount + amount)
    return added


def trend_points(trend: Sequence[tuple]) -> dict[str, list[TrendPoint]]:
    """Per currency, its sources added up at each date."""
    added: dict[str, dict[date, list]] = defaultdict(dict)
    for _source, currency, as_of, outstanding, overdue, open_count, overdue_count in trend:
        point = added[currency].setdefault(as_of, [Decimal(0), Decimal(0), 0, 0])
        for i, value in enumerate((outstanding, overdue, open_count, overdue_count)):
            point[i] += value
    return {
        currency: [TrendPoint(day, *values) for day, values in sorted(days.items())]
        for currency, days in sorted(added.items())
    }


def trend_section(trend: Sequence[tuple] | None) -> str:
    if trend is None:
        return _notice(
            "info",
            "This warehouse has no <code>billing.ar_trend</code> yet: run <code>invoice-sync "
            "sync</code> to rebuild its views, then write the report again.",
        )
    points = trend_points(trend)
    if not points:
        return '<p class="muted">No invoices at any of these dates.</p>'
    parts = []
    for currency, series in points.items():
        rows = (
            f'<tr><td class="nowrap">{p.as_of.isoformat()}</td>'
            f'<td class="num">{_money(p.outstanding, currency)}</td>'
            f'<td class="num">{_money(p.overdue, currency)}</td>'
            f'<td class="num">{p.open_count} ({p.overdue_count})</td></tr>'
            for p in reversed(series)
        )
        table = _table(("Date", "Outstanding", "Overdue", "Open (overdue)"), rows, 1, "compact")
        parts.append(
            f'<figure class="keep"><h3>{_e(currency)}</h3><div class="pair">'
            f"<div>{trend_chart(currency, series)}</div><div>{table}</div></div></figure>"
        )
    return "".join(parts)


def _customer(customer_id: str | None, name: str | None) -> str:
    """The customer's name with its id beneath (once, where the name is the id)."""
    if not name or name == customer_id:
        return _e(customer_id or "unknown")
    return f'{_e(name)}<div class="muted small">{_e(customer_id)}</div>'


def _customer_row(rank: int, row: tuple) -> str:
    currency, source, customer_id, name, invoices, overdue, oldest = row
    return (
        f'<tr class="customer"{_data(currency=currency, source=source, customer_id=customer_id)}>'
        f'<td class="num muted">{rank}</td>'
        f'<td class="wrap">{_customer(customer_id, name)}</td><td>{_e(source)}</td>'
        f'<td class="num" data-field="invoices">{invoices}</td>'
        f'<td class="num" data-field="overdue">{_money(overdue, currency)}</td>'
        f'<td class="num" data-field="oldest_days">{oldest}</td></tr>'
    )


def customers_section(customers: Sequence[tuple]) -> str:
    if not customers:
        return '<p class="muted">No overdue invoices.</p>'
    by_currency: dict[str, list[tuple]] = defaultdict(list)
    for row in customers:
        by_currency[row[0]].append(row)
    headers = ("#", "Customer", "Source", "Invoices", "Overdue", "Days late")
    parts = [
        f'<figure class="keep"><h3>{_e(currency)}</h3>'
        + _table(headers, (_customer_row(i, row) for i, row in enumerate(rows, 1)), 3, "compact")
        + "</figure>"
        for currency, rows in by_currency.items()
    ]
    return f'<div class="grid2">{"".join(parts)}</div>'


def checks_section(checks: Sequence[tuple]) -> str:
    if not checks:
        return (
            '<p><span class="badge ok">✓ All passed</span> <span class="muted">'
            "<code>billing.data_checks</code> found no problem.</span></p>"
        )
    counts: dict[str, int] = defaultdict(int)
    for check, *_ in checks:
        counts[check] += 1
    summary_rows = (
        f'<tr><td><code>{_e(check)}</code></td><td class="num">{count}</td></tr>'
        for check, count in sorted(counts.items())
    )
    detail_rows = (
        f"<tr><td><code>{_e(check)}</code></td><td>{_e(source)}</td><td>{_e(invoice)}</td>"
        f"<td>{_e(detail)}</td></tr>"
        for check, source, invoice, detail in checks[:CHECKS_SHOWN]
    )
    more = len(checks) - CHECKS_SHOWN
    tail = (
        f'<p class="muted">… and {more} more: <code>SELECT * FROM billing.data_checks</code></p>'
        if more > 0
        else ""
    )
    return (
        _table(("Check", "Problems"), summary_rows, 1, "compact narrow")
        + _table(("Check", "Source", "Invoice", "Detail"), detail_rows, 4, "compact")
        + tail
    )


def syncs_section(runs: Sequence[tuple]) -> str:
    if not runs:
        return '<p class="muted">No syncs recorded in <code>billing.sync_runs</code>.</p>'
    rows = []
    for source, last_success, status, requests, new, changed, error, _ in runs:
        css = "ok" if status == "succeeded" else "failed"
        rows.append(
            f"<tr{_data(source=source, status=status)}><td>{_e(source)}</td>"
            f'<td><span class="badge {css}">{_e(status)}</span></td>'
            f"<td>{_e(_moment(last_success))}</td>"
            f'<td class="num">{_e(requests)}</td><td class="num">{_e(new)}</td>'
            f'<td class="num">{_e(changed)}</td><td class="small">{_e(error)}</td></tr>'
        )
    headers = ("Source", "Last run", "Last successful sync", "Requests", "New", "Changed", "Error")
    return _table(headers, rows, 3, "compact")


DEFINITIONS = f"""
<dl>
<dt>Outstanding</dt><dd>What customers still owe on open invoices on the as-of date.</dd>
<dt>Overdue</dt><dd>The part of outstanding whose due date is before the as-of date.</dd>
<dt>Paid</dt><dd>Amounts paid, net of refunds, on invoices that are not void.</dd>
<dt>DSO (days sales outstanding)</dt><dd>Outstanding ÷ billed in the {DSO_WINDOW_DAYS} days up
to the as-of date × {DSO_WINDOW_DAYS}, per source and currency; billed is the total of the
invoices issued in that window that are neither draft nor void. n/a when nothing was billed.
</dd>
<dt>Aging</dt><dd>Outstanding by days past due on the as-of date; <i>current</i> is not yet
due, or no due date.</dd>
<dt>Trend</dt><dd><code>billing.ar_trend</code>: outstanding and overdue at each of the 12
month-ends before the as-of date, and on it.</dd>
<dt>Currencies</dt><dd>Every amount is in its invoice's own currency; amounts of different
currencies are never added together (an <i>All sources</i> total adds one currency's
sources).</dd>
</dl>
"""

PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Accounts receivable as of $as_of_iso</title>
<style>$style</style>
</head>
<body>
<main class="page">
<header class="top">
<div><h1>Accounts receivable</h1>
<div class="as-of">as of <strong>$as_of</strong></div></div>
<div class="meta">Generated $generated from <code>$db</code><br>invoice-sync $version</div>
</header>
$notices
<section><h2>Overview by currency</h2>$overview</section>
<section><h2>By source and currency</h2>$figures</section>
<section><h2>Aging of outstanding amounts</h2>$aging</section>
<section><h2>Trend: outstanding and overdue at month-ends</h2>$trend</section>
<section><h2>Top overdue customers</h2>$customers</section>
<section id="checks"><h2>Data checks</h2>$checks</section>
<section><h2>Syncs</h2>$syncs</section>
<footer><h2>Definitions</h2>$definitions</footer>
</main>
</body>
</html>
""")

STYLE = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --soft: #f5f7fa;
  --accent: #1f3a5f; --bad: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font-size: 14px; line-height: 1.45;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
.page { max-width: 1120px; margin: 0 auto; padding: 28px 40px 40px; }
header.top { display: flex; justify-content: space-between; align-items: flex-end;
  flex-wrap: wrap; gap: 8px; border-bottom: 3px solid var(--accent); padding-bottom: 12px; }
h1 { font-size: 26px; margin: 0; color: var(--accent); }
.as-of { font-size: 16px; }
.meta { color: var(--muted); font-size: 12px; text-align: right; }
h2 { font-size: 17px; margin: 30px 0 10px; color: var(--accent);
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 14px 0 4px; letter-spacing: .04em; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: .92em; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 4px 0 10px; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 11.5px;
  border-bottom: 1px solid #cbd2d9; padding: 6px 8px; vertical-align: bottom; }
td { padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.compact td { padding: 3px 8px; }
table.narrow { width: auto; min-width: 320px; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; background: var(--soft); }
table.figures tr.first td { border-top: 2px solid #cbd2d9; }
i.key { display: inline-block; width: 9px; height: 9px; border-radius: 2px;
  margin-right: 4px; }
.notice { border-left: 4px solid; padding: 8px 12px; margin: 12px 0 0; }
.notice.warn { border-color: #d97706; background: #fffbeb; }
.notice.bad { border-color: var(--bad); background: #fef3f2; }
.notice.info { border-color: #2563eb; background: #eff6ff; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr));
  gap: 12px; }
.tile { border: 1px solid var(--line); border-top: 3px solid var(--accent);
  border-radius: 4px; padding: 10px 14px 12px; }
.tile .ccy { font-weight: 700; font-size: 12px; color: var(--muted); letter-spacing: .08em; }
.tile .big { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 8px 0 0;
  font-size: 12.5px; }
.tile dt { color: var(--muted); }
.tile dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: var(--bad); }
.muted { color: var(--muted); }
.small { font-size: 12px; }
.pair { display: grid; grid-template-columns: minmax(0, 1.35fr) minmax(0, 1fr); gap: 20px;
  align-items: start; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr));
  gap: 0 28px; }
.grid2 > * { min-width: 0; }
.wrap { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
.nowrap { white-space: nowrap; }
.legend { font-size: 12px; margin: 0 0 4px; }
.legend i.key { margin-left: 10px; }
figure { margin: 0 0 14px; }
svg.chart { display: block; }
svg text { font-size: 11px; fill: #3e4c59; }
svg text.strong { font-weight: 600; fill: var(--ink); }
svg text.faint { fill: #9aa5b1; font-size: 10px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; }
.badge.ok { background: #e3f5ea; color: #1b7f4b; }
.badge.failed { background: #fde8e7; color: var(--bad); }
footer { margin-top: 8px; font-size: 12px; color: var(--muted); }
footer dl { display: grid; grid-template-columns: 200px 1fr; gap: 4px 16px; margin: 0; }
footer dt { font-weight: 600; color: var(--ink); }
footer dd { margin: 0; }
@page { size: A4; margin: 12mm; }
@media print {
  body { font-size: 9pt; }
  .page { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h1 { font-size: 18pt; }
  h2 { font-size: 12pt; margin-top: 18px; }
  h2, h3 { break-after: avoid; }
  figure.keep, .tile, tr, .notice { break-inside: avoid; }
  table { font-size: 8pt; }
  th { font-size: 7pt; }
  td, th, table.compact td { padding: 2px 4px; }
  .tiles { grid-template-columns: repeat(3, 1fr); gap: 8px; }
  .tile .big { font-size: 14pt; }
  .tile dl { font-size: 8pt; }
  .pair { grid-template-columns: minmax(0, 1.2fr) minmax(0, 1fr); gap: 10px; }
  .grid2 { grid-template-columns: 1fr; }
  a { color: inherit; text-decoration: none; }
  .scroll { overflow: visible; }
}
"""


def _version() -> str:
    try:
        return metadata.version("invoice-sync")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def render_html(data: ReportData, db_label: str, generated_at: datetime) -> str:
    totals = currency_totals(data.figures)
    return PAGE.substitute(
        as_of_iso=data.as_of.isoformat(),
        as_of=_day(data.as_of),
        generated=_e(_moment(generated_at)),
        db=_e(db_label),
        version=_e(_version()),
        style=STYLE,
        notices=notices(data),
        overview=overview(totals),
        figures=figures_table(data.figures, totals),
        aging=aging_section(data.aging),
        trend=trend_section(data.trend),
        customers=customers_section(data.customers),
        checks=checks_section(data.checks),
        syncs=syncs_section(data.runs),
        definitions=DEFINITIONS,
    )


def _write(out: Path, page: str) -> Path:
    """Write the page whole or not at all (a reader never opens half a report), never over a
    database (`--out` given the warehouse's path by mistake)."""
    target = out.resolve()
    if target.is_dir() or is_duckdb_file(target):
        what = "a folder" if target.is_dir() else "a DuckDB database"
        raise ReportError(
            f"refusing to write the report over {out}: it is {what}; pass --out with an .html "
            "file's path"
        )
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, target)
    except OSError as err:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise ReportError(
            f"cannot write the report to {out} ({err.strerror}); pass --out with a writable path"
        ) from None
    return target


def write_report(
    db_path: str | Path | Destination, out: str | Path = DEFAULT_OUT, as_of: date | None = None
) -> Path:
    """Read the warehouse, write the page to `out`; returns the page's absolute path."""
    data = read_warehouse(db_path, as_of)
    return _write(Path(out), render_html(data, describe(db_path), datetime.now(UTC)))
