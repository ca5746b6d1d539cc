"""Meteroid end to end: the emulator over real HTTP, dlt into a real DuckDB file, the views."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
import requests

from pipelines import cli
from pipelines.sandbox import environment
from pipelines.sync import sync
from sources.common.sandbox.ledger import OPEN, PAID, VOID
from sources.common.sandbox.server import Faults
from sources.meteroid import VENDOR
from sources.meteroid.emulator import API_KEY
from tests.clock import TODAY
from tests.meteroid_schema import ERROR_RESPONSE, INVOICE, LIST_RESPONSE


def _get(sb, path: str, key: str = API_KEY, **params) -> requests.Response:
    return requests.get(
        sb.server.url + path, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


# -- the emulator ----------------------------------------------------------------------------


def test_emulator_pages_validate_against_the_spec(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=30)
    first = _get(sb, "/api/v1/invoices", per_page=7, page=0).json()
    jsonschema.validate(first, LIST_RESPONSE)
    assert first["pagination_meta"] == {
        "page": 0,
        "per_page": 7,
        "total_items": 30,
        "total_pages": 5,
    }
    assert len(first["data"]) == 7
    last = _get(sb, "/api/v1/invoices", per_page=7, page=4).json()
    assert len(last["data"]) == 2
    detail = _get(sb, f"/api/v1/invoices/{first['data'][0]['id']}").json()
    jsonschema.validate(detail, INVOICE)
    missing = _get(sb, "/api/v1/invoices/inv_nope")
    assert missing.status_code == 404
    jsonschema.validate(missing.json(), ERROR_RESPONSE)


def test_emulator_reproduces_the_per_page_bug(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=30)
    body = _get(sb, "/api/v1/invoices").json()
    assert len(body["data"]) == 25  # the database's default
    assert body["pagination_meta"]["per_page"] == 10  # what the response claims
    assert body["pagination_meta"]["total_pages"] == 3


def test_emulator_filters_orders_and_refuses(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=40)
    drafts = _get(sb, "/api/v1/invoices", per_page=100, **{"statuses[]": "DRAFT"}).json()["data"]
    assert drafts and {inv["status"] for inv in drafts} == {"DRAFT"}
    assert len(drafts) == len(sb.ledger.find("draft"))
    both = _get(sb, "/api/v1/invoices", per_page=100, statuses=["DRAFT", "VOID"]).json()["data"]
    assert {inv["status"] for inv in both} <= {"DRAFT", "VOID"}
    ordered = _get(sb, "/api/v1/invoices", per_page=100, order_by="invoice_date.asc").json()["data"]
    assert [i["invoice_date"] for i in ordered] == sorted(i["invoice_date"] for i in ordered)
    assert _get(sb, "/api/v1/invoices", order_by="id.sideways").status_code == 400
    assert _get(sb, "/api/v1/invoices", per_page=101).status_code == 400
    refused = _get(sb, "/api/v1/invoices", key="wrong")
    assert refused.status_code == 401
    assert refused.json()["code"] == "UNAUTHORIZED"


def test_emulator_pascal_case_enums(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=40, enum_case="pascal")
    data = _get(sb, "/api/v1/invoices", per_page=100).json()["data"]
    assert {inv["status"] for inv in data} <= {"Draft", "Finalized", "Uncollectible", "Void"}
    assert "PartiallyPaid" in {inv["payment_status"] for inv in data}


def test_emulator_rate_limit_answers_429_with_retry_after(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=5, faults=Faults(rate_limit=2))
    answers = [_get(sb, "/api/v1/invoices", per_page=5) for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].headers["Retry-After"] == "1"
    assert limited[0].json()["code"] == "TOO_MANY_REQUESTS"


# -- the sync --------------------------------------------------------------------------------


@pytest.mark.parametrize("enum_case", ["screaming", "pascal"])
def test_every_invoice_and_child_row_arrives(make_sandbox, enum_case: str) -> None:
    sb = make_sandbox(VENDOR, invoices=60, enum_case=enum_case)
    sb.sync_ok(per_page=7)  # many pages
    invoices = sb.ledger.snapshot()
    lines = [line for inv in invoices for line in inv.lines]
    expected = {
        "invoices": len(invoices),
        "invoices__line_items": len(lines),
        "invoices__line_items__sub_line_items": sum(len(line.sub_lines) for line in lines),
        "invoices__tax_breakdown": sum(len(inv.taxes) for inv in invoices),
        "invoices__transactions": sum(len(inv.transactions) for inv in invoices),
        "invoices__coupons": sum(1 for inv in invoices if inv.credits),
    }
    loaded = {table: sb.query(f"SELECT count(*) FROM meteroid.{table}")[0][0] for table in expected}
    assert loaded == expected
    assert sb.query("SELECT count(*) FROM billing.invoice_lines")[0][0] == (
        expected["invoices__line_items"] + expected["invoices__line_items__sub_line_items"]
    )
    assert (
        sb.query("SELECT count(*) FROM billing.payments")[0][0]
        == expected["invoices__transactions"]
    )
    statuses = dict(sb.query("SELECT status, count(*) FROM billing.invoices GROUP BY ALL"))
    ledger_statuses: dict[str, int] = {}
    for inv in invoices:
        ledger_statuses[inv.status] = ledger_statuses.get(inv.status, 0) + 1
    assert statuses == ledger_statuses


def test_jpy_and_kwd_amounts_are_exact(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=60)
    sb.sync_ok()
    for currency, places in (("JPY", 0), ("KWD", 3)):
        inv = next(i for i in sb.ledger.snapshot() if i.currency == currency and i.total)
        [(total, tax, subtotal)] = sb.query(
            "SELECT total, tax, subtotal FROM billing.invoices WHERE invoice_id = ?", [inv.id]
        )
        assert total == Decimal(inv.total).scaleb(-places)
        assert tax == Decimal(inv.tax).scaleb(-places)
        assert subtotal == Decimal(inv.subtotal).scaleb(-places)
        assert isinstance(total, Decimal)
    kwd = next(i for i in sb.ledger.snapshot() if i.currency == "KWD" and i.total % 10)
    [(total,)] = sb.query("SELECT total FROM billing.invoices WHERE invoice_id = ?", [kwd.id])
    assert total == Decimal(kwd.total) / 1000 and total.as_tuple().exponent <= -3


def test_ar_figures_equal_ground_truth(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=80)
    sb.sync_ok()
    for as_of in (TODAY, TODAY + timedelta(days=45), TODAY - timedelta(days=60)):
        assert sb.summary_rows(as_of) == sb.truth_summary(as_of), as_of
        assert sb.aging_rows(as_of) == sb.truth_aging(as_of), as_of
    # the today-views agree with the macros
    assert len(sb.query("SELECT * FROM billing.ar_summary")) == len(sb.truth_summary(TODAY))


def _warehouse(sb) -> dict[str, list[tuple]]:
    return {
        view: sb.query(f"SELECT * FROM billing.{view} ORDER BY ALL")
        for view in ("invoices", "invoice_lines", "payments", "invoice_taxes")
    }


def test_second_sync_of_unchanged_data_changes_nothing(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=50)
    sb.sync_ok()
    before = _warehouse(sb)
    raw_before = sb.query("SELECT count(*) FROM meteroid.invoices__line_items")
    sb.sync_ok()
    assert _warehouse(sb) == before
    assert sb.query("SELECT count(*) FROM meteroid.invoices__line_items") == raw_before


def test_payment_and_void_show_after_next_sync(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=60)
    sb.sync_ok()
    to_pay, to_void = sb.ledger.find(OPEN)[:2]
    lines_before = sb.query(
        "SELECT count(*) FROM billing.invoice_lines WHERE invoice_id = ?", [to_pay.id]
    )
    sb.ledger.pay(to_pay.id)
    sb.ledger.void(to_void.id)
    new = sb.ledger.create_invoices(3)
    sb.sync_ok()
    rows = dict(
        (r[0], r[1:])
        for r in sb.query(
            "SELECT invoice_id, status, amount_due, amount_paid FROM billing.invoices"
        )
    )
    assert rows[to_pay.id] == (PAID, Decimal(0), to_pay.major(to_pay.amount_paid))
    assert rows[to_void.id][:2] == (VOID, Decimal(0))
    assert all(inv.id in rows for inv in new)
    # the changed invoice's children were replaced, not appended
    assert (
        sb.query("SELECT count(*) FROM billing.invoice_lines WHERE invoice_id = ?", [to_pay.id])
        == lines_before
    )
    payments = sb.query("SELECT count(*) FROM billing.payments WHERE invoice_id = ?", [to_pay.id])[
        0
    ][0]
    assert payments == len(to_pay.transactions)
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_invoices_created_mid_sync_are_not_lost(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=40)
    sb.emulator.after_requests(2, lambda ledger: ledger.create_invoices(9))
    sb.sync_ok(per_page=10)
    assert sb.query("SELECT count(*) FROM billing.invoices")[0][0] == 49
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_faults_are_retried_and_nothing_is_lost(make_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "7")
    sb = make_sandbox(VENDOR, invoices=45)
    sb.emulator.faults.inject("503", "drop", "truncate", "429", "500")
    sb.sync_ok(per_page=10)
    assert sb.query("SELECT count(*) FROM billing.invoices")[0][0] == 45
    assert sb.emulator.requests["fault_drop"] == 1 and sb.emulator.requests["fault_truncate"] == 1
    # 5 pages and the probe for pages added meanwhile
    assert sb.emulator.requests["fault_429"] == 1 and sb.emulator.requests["list"] == 6
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_full_refresh_replaces_everything(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=30)
    sb.sync_ok()
    before = _warehouse(sb)
    result = sb.sync(full_refresh=True)
    assert result.ok, result.describe()
    assert _warehouse(sb) == before


# -- errors ----------------------------------------------------------------------------------


def _run_cli(args: list[str], settings: dict[str, str], capsys) -> tuple[int, list[str], str]:
    with environment(settings):
        code = cli.main(args)
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


def test_wrong_api_key_exits_non_zero_with_one_line(make_sandbox, capsys, tmp_path) -> None:
    sb = make_sandbox(VENDOR, invoices=5)
    settings = {**sb.settings, "SOURCES__METEROID__API_KEY": "sk_wrong_secret_value"}
    code, err, _ = _run_cli(
        ["sync", "meteroid", "--db", str(tmp_path / "x.duckdb")], settings, capsys
    )
    assert code != 0
    assert len(err) == 1, err
    assert err[0].startswith("meteroid: the API refused our credentials (HTTP 401")
    assert "SOURCES__METEROID__API_KEY" in err[0]
    assert "sk_wrong_secret_value" not in err[0]


def test_unreachable_host_exits_non_zero_with_one_line(capsys, tmp_path) -> None:
    settings = {
        "SOURCES__METEROID__BASE_URL": "http://127.0.0.1:9",
        "SOURCES__METEROID__API_KEY": "k",
    }
    code, err, _ = _run_cli(
        ["sync", "meteroid", "--db", str(tmp_path / "x.duckdb")], settings, capsys
    )
    assert code != 0
    assert len(err) == 1, err
    assert err[0].startswith("meteroid: could not connect to http://127.0.0.1:9")
    assert "SOURCES__METEROID__BASE_URL" in err[0]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("status", "ARCHIVED", "'ARCHIVED'"),
        # arrow would store 30.7 as 30: refused instead
        ("net_terms", 30.7, "net_terms: 30.7 is not a whole number"),
    ],
)
def test_a_bad_field_names_the_invoice(make_sandbox, field: str, value: Any, words: str) -> None:
    sb = make_sandbox(VENDOR, invoices=10)
    render = sb.emulator.render
    victim = sb.ledger.snapshot()[3].id

    def broken(inv):
        body = render(inv)
        if inv.id == victim:
            body[field] = value
        return body

    sb.emulator.render = broken
    result = sb.sync()
    assert not result.ok
    assert result.describe().startswith(f"meteroid: record {victim!r}")
    assert words in result.describe()


def test_a_sync_says_when_pages_went_record_by_record(make_sandbox) -> None:
    """A quantity with an exponent is exact, but left to the record path (the slow one): the
    invoice loads, and the sync's line says how many batches took that path."""
    sb = make_sandbox(VENDOR, invoices=30)
    render = sb.emulator.render
    victim = sb.ledger.snapshot()[7]

    def with_exponent(inv):
        body = render(inv)
        if inv.id == victim.id:
            body["line_items"][0]["quantity"] = f"{victim.lines[0].quantity}E0"
        return body

    quiet = sb.sync_ok(per_page=5, parallel_pages=1)
    assert (quiet.batches, quiet.record_batches) == (1, 0)
    assert "record by record" not in quiet.describe()
    sb.emulator.render = with_exponent
    result = sb.sync_ok(per_page=5, parallel_pages=1)
    assert (result.batches, result.record_batches) == (1, 1)
    assert result.describe().endswith(
        "; 1 of 1 batches of pages converted record by record, 3-4x slower (a value the "
        "column-by-column path does not convert: sources/meteroid/README.md)"
    )
    [(quantity,)] = sb.query(
        "SELECT quantity FROM meteroid.invoices__line_items l JOIN meteroid.invoices i "
        "ON l._dlt_parent_id = i._dlt_id WHERE i.id = ? AND l._dlt_list_idx = 0",
        [victim.id],
    )
    assert quantity == Decimal(victim.lines[0].quantity)


def test_malformed_page_is_a_clear_error(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=10)
    sb.emulator.route("GET", "/api/v1/invoices", "list", lambda request: _bad_page())
    sb.emulator._routes.insert(0, sb.emulator._routes.pop())
    result = sb.sync()
    assert not result.ok
    assert "malformed page" in result.describe()


def _bad_page():
    from sources.common.sandbox.server import Response

    return Response.json(200, {"items": []})


def test_unconfigured_sync_says_what_to_set(capsys, tmp_path, monkeypatch) -> None:
    for key in ("SOURCES__METEROID__BASE_URL", "SOURCES__METEROID__API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["sync", "--db", str(tmp_path / "x.duckdb")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "no source is configured" in err[0]
    code = cli.main(["sync", "meteroid", "--db", str(tmp_path / "x.duckdb")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert "SOURCES__METEROID__BASE_URL" in err[0] and "not configured" in err[0]


def test_summary_formats_carry_exact_figures(make_sandbox, capsys) -> None:
    import csv
    import json

    sb = make_sandbox(VENDOR, invoices=40)
    sb.sync_ok()
    as_of = TODAY + timedelta(days=10)
    truth = sb.truth_summary(as_of)
    assert (
        cli.main(["summary", "--db", str(sb.db), "--as-of", as_of.isoformat(), "--format", "json"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["as_of"] == as_of.isoformat()
    for row in report["summary"]:
        expected = truth[(row["source"], row["currency"])]
        assert Decimal(row["outstanding"]) == expected["outstanding"]
        assert Decimal(row["overdue"]) == expected["overdue"]
        assert row["open_count"] == expected["open_count"]
    assert cli.main(["summary", "--db", str(sb.db), "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    jpy = next(r for r in rows if r["table"] == "summary" and r["currency"] == "JPY")
    assert Decimal(jpy["paid"]) == sb.truth_summary(TODAY)[("meteroid", "JPY")]["paid"]
    assert {r["aging_bucket"] for r in rows if r["table"] == "aging"} == {
        "current",
        "1-30",
        "31-60",
        "61-90",
        "90+",
    }


def test_sync_runs_record_requests_and_changes(make_sandbox, capsys) -> None:
    sb = make_sandbox(VENDOR, invoices=30)
    first = sb.sync_ok(per_page=10)
    assert first.requests == sb.emulator.requests["list"] == 4  # 3 pages and the probe
    sb.ledger.pay(sb.ledger.find(OPEN)[0].id)
    sb.ledger.create_invoices(2)
    sb.emulator.faults.inject("503")
    second = sb.sync_ok(per_page=10)
    assert second.requests == 6  # 4 pages, the probe and the retried 503
    assert (second.counts.new, second.counts.changed, second.counts.unchanged) == (2, 1, 29)
    with environment({**sb.settings, "SOURCES__METEROID__API_KEY": "rotated"}):
        [failed] = sync([VENDOR], sb.db)
    assert not failed.ok
    runs = sb.query(
        "SELECT status, requests, invoices_new, invoices_changed, invoices_unchanged, "
        "invoices_total, error IS NULL FROM billing.sync_runs ORDER BY started_at"
    )
    assert runs[:2] == [
        ("succeeded", 4, 30, 0, 0, 30, True),
        ("succeeded", 6, 2, 1, 29, 32, True),
    ]
    assert runs[2][0] == "failed" and runs[2][-1] is False
    # one digest per invoice is kept for counting, as the last successful sync left them
    assert sb.query('SELECT count(*) FROM _invoice_sync."digests_meteroid"') == [(32,)]
    # the last sync failed: summary says so first, with the whole error line, and exits 1
    assert cli.main(["summary", "--db", str(sb.db)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("The last sync of 1 source did not succeed:\n  meteroid (failed ")
    assert failed.error.one_line() in out.splitlines()[1]
    assert "Syncs (last successful, and the last run)" in out and "None" not in out


@pytest.mark.parametrize("parallel_pages", [1, 4])
def test_sequential_and_parallel_paging_load_the_same(make_sandbox, parallel_pages: int) -> None:
    sb = make_sandbox(VENDOR, invoices=70, faults=Faults(latency=0.01))
    sb.emulator.after_requests(3, lambda ledger: ledger.create_invoices(12))  # mid-sync
    sb.sync_ok(per_page=5, parallel_pages=parallel_pages)
    assert sb.query("SELECT count(*) FROM billing.invoices")[0][0] == 82
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
    lines = sum(len(inv.lines) for inv in sb.ledger.snapshot())
    assert sb.query("SELECT count(*) FROM meteroid.invoices__line_items")[0][0] == lines


def test_paced_requests_never_trip_the_rate_limit(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=40, faults=Faults(rate_limit=8))
    sb.sync_ok(per_page=5, parallel_pages=4, max_requests_per_second=8)
    assert sb.emulator.requests["rate_limited"] == 0
    assert sb.query("SELECT count(*) FROM billing.invoices")[0][0] == 40
