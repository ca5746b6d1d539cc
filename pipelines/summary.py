"""`invoice-sync summary`: AR figures per source and currency, and the aging buckets."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from pipelines.destinations import (
    DATABASE_ERRORS,
    MISSING_OBJECT,
    Destination,
    describe,
    open_read_only,
)
from pipelines.history import exactness_notes
from pipelines.runs import last_runs
from pipelines.warehouse import first_line
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
    """The warehouse could not be read: one line; exit status 2 when it is not one yet (or
    cannot be opened, `WarehouseError`), 1 when reading it failed."""

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


CHECK_COLUMNS = ("check", "source", "invoice_id", "detail")
RUN_COLUMNS = ("source", "last_success", "last_status", "requests", "new", "changed")
RUN_JSON_COLUMNS = (*RUN_COLUMNS, "error", "last_run")
CHECKS_SHOWN = 20


class SummaryData(NamedTuple):
    summary: list[tuple]
    aging: list[tuple]
    checks: list[tuple]
    runs: list[tuple]
    # for a past day, per source: what is exact and what inferred (pipelines/history.py)
    exactness: list[str] = []


def fetch(db_path: str | Path | Destination, as_of: date | None) -> SummaryData:
    """(summary, aging, data check, last run) rows, as of `as_of` (today when None), read
    from the published warehouse, opened read-only (or from the destination given)."""
    con = open_read_only(db_path)  # WarehouseError: a --db that cannot be used
    try:
        day = (as_of or date.today()).isoformat()
        runs = last_runs(con)
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
            "ORDER BY 1, 2, 3, 4"
        ).fetchall()
        past = as_of is not None and as_of < date.today()
        exactness = exactness_notes(con, as_of, [row[0] for row in summary]) if past else []
    except MISSING_OBJECT:
        if runs:
            return SummaryData([], [], [], runs)
        raise SummaryError(
            f"{describe(db_path)} has no billing views yet: run `invoice-sync sync` first", 2
        ) from None
    except DATABASE_ERRORS as err:
        raise SummaryError(f"cannot read {describe(db_path)}: {first_line(err)}") from None
    finally:
        con.close()
    return SummaryData(summary, aging, checks, runs, exactness)


def failed_runs(runs: list[tuple]) -> list[tuple]:
    """The sources whose last run did not succeed."""
    return [run for run in runs if run[2] != "succeeded"]


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


def failures_text(runs: list[tuple]) -> str:
    """The sources whose last sync failed, each with its whole error line."""
    failed = failed_runs(runs)
    if not failed:
        return ""
    noun = "source" if len(failed) == 1 else "sources"
    lines = [f"The last sync of {len(failed)} {noun} did not succeed:"]
    lines += [
        f"  {source} ({status} {_when(finished)}): {error}"
        for source, _, status, _, _, _, error, finished in failed
    ]
    return "\n".join(lines)


def runs_text(runs: list[tuple]) -> str:
    if not runs:
        return "Syncs: none recorded yet."
    shown = [
        (source, _when(success), status, _count(requests), _count(new), _count(changed))
        for source, success, status, requests, new, changed, _, _ in runs
    ]
    return "Syncs (last successful, and the last run)\n\n" + table(RUN_COLUMNS, shown)


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _iso(moment: object) -> str | None:
    return moment.isoformat() if moment else None


def _when(moment: object) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def as_json(data: SummaryData, day: str) -> str:
    """Exact amounts as decimal strings (JSON numbers would invite float parsing)."""

    def record(columns: tuple[str, ...], row: tuple) -> dict:
        return {
            c: str(v) if isinstance(v, Decimal) else v for c, v in zip(columns, row, strict=True)
        }

    return json.dumps(
        {
            "as_of": day,
            "exactness": data.exactness,
            "summary": [record(SUMMARY_COLUMNS, row) for row in data.summary],
            "aging": [record(AGING_COLUMNS, row) for row in data.aging],
            "data_checks": [record(CHECK_COLUMNS, row) for row in data.checks],
            "sync_runs": [
                {
                    **record(RUN_JSON_COLUMNS, row),
                    "last_success": _iso(row[1]),
                    "error": row[6] or None,
                    "last_run": _iso(row[7]),
                }
                for row in data.runs
            ],
        },
        indent=2,
    )


def render_data(
    data: SummaryData,
    db_path: str | Path | Destination,
    as_of: date | None = None,
    fmt: str = "table",
) -> str:
    day = (as_of or date.today()).isoformat()
    if fmt == "csv":
        return as_csv(data.summary, data.aging, day)
    if fmt == "json":
        return as_json(data, day)
    failures = failures_text(data.runs)
    head = f"{failures}\n\n" if failures else ""
    if not data.summary:
        none = (
            f"No invoices issued by {day} in {describe(db_path)}."
            if as_of is not None
            else f"No invoices in {describe(db_path)} yet."
        )
        return f"{head}{none}\n\n{runs_text(data.runs)}"
    return (
        head
        + f"Accounts receivable as of {day} (amounts in each invoice's own currency)\n"
        + "".join(f"  {note}\n" for note in data.exactness)
        + "\n"
        + table(SUMMARY_COLUMNS, data.summary)
        + "\n\nAging of outstanding amounts\n\n"
        + (table(AGING_COLUMNS, data.aging) if data.aging else "nothing outstanding")
        + "\n\n"
        + checks_text(data.checks)
        + "\n\n"
        + runs_text(data.runs)
    )


def render(db_path: str | Path | Destination, as_of: date | None = None, fmt: str = "table") -> str:
    return render_data(fetch(db_path, as_of), db_path, as_of, fmt)
