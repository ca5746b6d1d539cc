"""`invoice-sync summary`: AR figures per source and currency, and the aging buckets."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from pipelines.history import exactness_notes
from pipelines.runs import last_runs
from sources.common.money import MoneyError, currency_exponent

SUMMARY_COLUMNS = (
    "source",
    "currency",
    "open_count",
    "outstanding",
    "overdue_count",
    "overdue",
    "paid_count",
    "paid",
    "draft_count",
    "void_count",
)
AGING_COLUMNS = ("source", "currency", "aging_bucket", "invoice_count", "amount_due")


class SummaryError(RuntimeError):
    pass


CHECK_COLUMNS = ("check", "source", "invoice_id", "detail")
RUN_COLUMNS = ("source", "last_success", "last_status", "requests", "new", "changed", "error")
CHECKS_SHOWN = 20


def fetch(db_path: str | Path, as_of: date | None) -> tuple[list[tuple], ...]:
    """(summary, aging, data check, last run) rows, as of `as_of` (today when None)."""
    if not Path(db_path).exists():
        raise SummaryError(
            f"no database at {db_path}: run `invoice-sync sync` or `invoice-sync demo`"
        )
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        day = (as_of or date.today()).isoformat()
        summary = con.execute(
            f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM billing.ar_summary_at(CAST(? AS DATE)) "
            "ORDER BY source, currency",
            [day],
        ).fetchall()
        aging = con.execute(
            f"SELECT {', '.join(AGING_COLUMNS)} FROM billing.ar_aging_at(CAST(? AS DATE))", [day]
        ).fetchall()
        checks = con.execute(
            "SELECT \"check\", source, coalesce(invoice_id, ''), detail FROM billing.data_checks "
            "ORDER BY ALL"
        ).fetchall()
        runs = last_runs(con)
    except duckdb.CatalogException:
        raise SummaryError(
            f"{db_path} has no billing views yet: run `invoice-sync sync` first"
        ) from None
    finally:
        con.close()
    return summary, aging, checks, runs


def _cell(value: object, currency: str) -> str:
    """Amounts with their currency's decimals (JPY 1,200; KWD 1.250); counts as they are."""
    if isinstance(value, Decimal):
        try:
            places = currency_exponent(currency)
        except MoneyError:
            places = 4
        return f"{value:,.{places}f}"
    return str(value)


def table(headers: tuple[str, ...], rows: list[tuple]) -> str:
    """A plain-text table, numbers right-aligned; the second column is each row's currency."""
    cells = [[_cell(v, row[1]) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and not isinstance(rows[0][i], str) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        padded = (
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def as_csv(summary: list[tuple], aging: list[tuple], day: str) -> str:
    """Both tables in one CSV for scripts: a `table` column says which row is which."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ("table", "as_of", *SUMMARY_COLUMNS, "aging_bucket", "invoice_count", "amount_due")
    )
    blanks_aging = ("",) * 3
    for row in summary:
        writer.writerow(("summary", day, *row, *blanks_aging))
    for source, currency, bucket, count, due in aging:
        writer.writerow(("aging", day, source, currency, *("",) * 8, bucket, count, due))
    return out.getvalue().rstrip("\n")


def checks_text(checks: list[tuple]) -> str:
    if not checks:
        return "Data checks: all passed."
    noun = "problem" if len(checks) == 1 else "problems"
    shown = [(c, s, i, d[:90]) for c, s, i, d in checks[:CHECKS_SHOWN]]
    more = len(checks) - len(shown)
    tail = f"\n... and {more} more: SELECT * FROM billing.data_checks" if more > 0 else ""
    return f"Data checks: {len(checks)} {noun}\n\n" + table(CHECK_COLUMNS, shown) + tail


def runs_text(runs: list[tuple]) -> str:
    if not runs:
        return "Syncs: none recorded yet."
    shown = [
        (source, _when(success), status, requests, new, changed, error[:60])
        for source, success, status, requests, new, changed, error in runs
    ]
    return "Syncs (last successful, and the last run)\n\n" + table(RUN_COLUMNS, shown)


def _iso(moment: object) -> str | None:
    return moment.isoformat() if moment else None


def _when(moment: object) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def as_json(
    summary: list[tuple],
    aging: list[tuple],
    checks: list[tuple],
    runs: list[tuple],
    day: str,
    exactness: list[str] | None = None,
) -> str:
    """Exact amounts as decimal strings (JSON numbers would invite float parsing)."""

    def record(columns: tuple[str, ...], row: tuple) -> dict:
        return {
            c: str(v) if isinstance(v, Decimal) else v for c, v in zip(columns, row, strict=True)
        }

    return json.dumps(
        {
            "as_of": day,
            "exactness": exactness or [],
            "summary": [record(SUMMARY_COLUMNS, row) for row in summary],
            "aging": [record(AGING_COLUMNS, row) for row in aging],
            "data_checks": [record(CHECK_COLUMNS, row) for row in checks],
            "sync_runs": [
                {**record(RUN_COLUMNS, row), "last_success": _iso(row[1])} for row in runs
            ],
        },
        indent=2,
    )


def _exactness(db_path: str | Path, as_of: date | None, summary: list[tuple]) -> str:
    """Under the header of a past day's figures: how exact each source's are."""
    if as_of is None or as_of >= date.today():
        return ""
    notes = exactness_notes(db_path, as_of, [row[0] for row in summary])
    return "".join(f"  {note}\n" for note in notes)


def render(db_path: str | Path, as_of: date | None = None, fmt: str = "table") -> str:
    summary, aging, checks, runs = fetch(db_path, as_of)
    day = (as_of or date.today()).isoformat()
    if fmt == "csv":
        return as_csv(summary, aging, day)
    if fmt == "json":
        notes = _exactness(db_path, as_of, summary).splitlines()
        return as_json(summary, aging, checks, runs, day, [note.strip() for note in notes])
    if not summary:
        return f"No invoices in {db_path} yet."
    return (
        f"Accounts receivable as of {day} (amounts in each invoice's own currency)\n"
        + _exactness(db_path, as_of, summary)
        + "\n"
        + table(SUMMARY_COLUMNS, summary)
        + "\n\nAging of outstanding amounts\n\n"
        + (table(AGING_COLUMNS, aging) if aging else "nothing outstanding")
        + "\n\n"
        + checks_text(checks)
        + "\n\n"
        + runs_text(runs)
    )
