"""Invoices as arrow tables (`sources/common/tables.py`): layout, refusals, and dlt's merge."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from pipelines.tuning import register_defaults
from sources.common.columns import bigint, columns, decimal, text
from sources.common.errors import SyncError
from sources.common.tables import (
    PARALLEL_BATCHES,
    NestedTables,
    TableBatch,
    batched,
    staggered_groups,
)

TABLES = NestedTables(
    "acme",
    "invoices",
    columns(id=text(), total=decimal(), version=bigint()),
    {
        "lines": columns(name=text(), amount=decimal()),
        ("lines", "parts"): columns(sku=text()),
        "taxes": columns(rate=decimal()),
    },
)


def invoice(number: int, version: int = 1, lines: int = 2, taxes: int = 1) -> dict[str, Any]:
    return {
        "id": f"inv-{number}",
        "total": Decimal("10.05") * lines,
        "version": version,
        "lines": [
            {
                "name": f"v{version} line {n}",
                "amount": Decimal("10.05"),
                "parts": [{"sku": f"sku-{n}-{p}"} for p in range(2)],
            }
            for n in range(lines)
        ],
        "taxes": [{"rate": Decimal("0.2")} for _ in range(taxes)],
    }


def by_name(batch: TableBatch) -> dict[str, Any]:
    return {layout.name: table for layout, table in zip(TABLES.tables, batch.tables, strict=True)}


def test_records_become_linked_tables_with_exact_decimals() -> None:
    tables = by_name(TABLES.arrow([invoice(1), invoice(2, lines=1, taxes=0)]))
    root = tables["invoices"].to_pylist()
    lines = tables["invoices__lines"].to_pylist()
    parts = tables["invoices__lines__parts"].to_pylist()
    assert [r["id"] for r in root] == ["inv-1", "inv-2"]
    assert [r["total"] for r in root] == [Decimal("20.10"), Decimal("10.05")]
    assert len({r["_dlt_id"] for r in root}) == 2
    assert [(r["_dlt_parent_id"], r["_dlt_list_idx"]) for r in lines] == [
        (root[0]["_dlt_id"], 0),
        (root[0]["_dlt_id"], 1),
        (root[1]["_dlt_id"], 0),
    ]
    assert all(line["_dlt_root_id"] == line["_dlt_parent_id"] for line in lines)
    assert len(parts) == 6
    assert parts[2]["_dlt_parent_id"] == lines[1]["_dlt_id"]
    assert parts[2]["_dlt_root_id"] == root[0]["_dlt_id"]
    assert parts[2]["sku"] == "sku-1-0"
    assert tables["invoices__taxes"].num_rows == 1
    assert str(tables["invoices"].schema.field("total").type) == "decimal128(38, 9)"


def test_row_ids_differ_between_batches() -> None:
    first = TABLES.arrow([invoice(1)]).tables[0].column("_dlt_id").to_pylist()
    second = TABLES.arrow([invoice(1)]).tables[0].column("_dlt_id").to_pylist()
    assert first != second


def test_an_undeclared_field_is_refused_not_dropped() -> None:
    record = {**invoice(1), "surprise": "x"}
    with pytest.raises(SyncError, match=r"acme: a invoices row .*undeclared: \['surprise'\]"):
        TABLES.arrow([record])
    line = invoice(1)
    del line["lines"][0]["amount"]
    with pytest.raises(SyncError, match=r"invoices__lines row .*missing: \['amount'\]"):
        TABLES.arrow([line])


def test_a_value_of_the_wrong_type_names_its_column() -> None:
    record = {**invoice(1), "version": "seven"}
    with pytest.raises(SyncError, match=r"invoices\.version: 'seven' is not a bigint"):
        TABLES.arrow([record])


def test_money_is_never_rounded_to_fit() -> None:
    record = {**invoice(1), "total": Decimal("1.0000000001")}  # ten places; columns keep nine
    with pytest.raises(SyncError, match=r"invoices\.total: Decimal\('1.0000000001'\)"):
        TABLES.arrow([record])


def test_pages_are_joined_into_batches_of_at_least_the_size() -> None:
    pages = [TABLES.arrow([invoice(n)]) for n in range(5)]
    joined = list(batched(pages, size=2))
    assert [b.invoices for b in joined] == [2, 2, 1]
    assert by_name(joined[0])["invoices__lines__parts"].num_rows == 8


def test_staggered_groups_cover_every_page_once_the_first_growing() -> None:
    groups = list(staggered_groups(1, 200, 10, lanes=5))
    assert [len(g) for g in groups[:7]] == [2, 4, 6, 8, 10, 10, 10]
    assert [page for g in groups for page in g] == list(range(1, 200))
    assert [len(g) for g in staggered_groups(1, 4, 10, lanes=5)] == [2, 1]
    assert [len(g) for g in staggered_groups(0, 5, 1, lanes=5)] == [1] * 5  # never empty
    assert list(staggered_groups(1, 1, 10)) == []


def test_the_lanes_are_the_batches_dlt_runs_at_once() -> None:
    register_defaults()
    assert dlt.config.get("extract.max_parallel_items", int) == PARALLEL_BATCHES


def test_items_name_the_nested_tables_and_skip_empty_ones() -> None:
    items = list(TABLES.items(TABLES.arrow([invoice(1, taxes=0)])))
    assert items[0].num_rows == 1
    assert [item.meta.table_name for item in items[1:]] == [
        "invoices__lines",
        "invoices__lines__parts",
    ]


def load(db: Path, invoices: list[dict[str, Any]], full: bool = False) -> None:
    @dlt.resource(
        name="invoices", primary_key="id", write_disposition="merge", columns=TABLES.root_columns
    )
    def resource() -> Iterator[TableBatch]:
        TABLES.declare(dlt.current.resource())
        yield TABLES.arrow(invoices)

    register_defaults()  # as `invoice-sync` runs dlt: with a load id on arrow rows
    pipeline = dlt.pipeline(
        "tables_test",
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name="acme",
        pipelines_dir=str(db.parent / "dlt"),
    )
    data = resource().add_yield_map(TABLES.items)
    info = pipeline.run(data, write_disposition="replace" if full else None)
    assert not info.has_failed_jobs


TABLE_NAMES = ("invoices", "invoices__lines", "invoices__lines__parts", "invoices__taxes")


def counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db)) as con:
        return {
            table: con.execute(f"SELECT count(*) FROM acme.{table}").fetchone()[0]
            for table in TABLE_NAMES
        }


def test_dlt_merge_replaces_a_changed_invoices_nested_rows(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    load(db, [invoice(1), invoice(2)])
    assert counts(db) == {
        "invoices": 2,
        "invoices__lines": 4,
        "invoices__lines__parts": 8,
        "invoices__taxes": 2,
    }
    # invoice 1 loses a line and all its taxes; invoice 2 is untouched
    load(db, [invoice(1, version=2, lines=1, taxes=0)])
    assert counts(db) == {
        "invoices": 2,
        "invoices__lines": 3,
        "invoices__lines__parts": 6,
        "invoices__taxes": 1,
    }
    with duckdb.connect(str(db)) as con:
        names = con.execute(
            "SELECT l.name FROM acme.invoices i JOIN acme.invoices__lines l"
            " ON l._dlt_parent_id = i._dlt_id WHERE i.id = 'inv-1'"
        ).fetchall()
        orphans = con.execute(
            "SELECT count(*) FROM acme.invoices__lines__parts"
            " WHERE _dlt_root_id NOT IN (SELECT _dlt_id FROM acme.invoices)"
        ).fetchone()[0]
        load_ids = con.execute("SELECT count(_dlt_load_id) FROM acme.invoices").fetchone()[0]
    assert names == [("v2 line 0",)] and orphans == 0
    assert load_ids == 2


def test_a_full_refresh_replaces_nested_tables_too(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    load(db, [invoice(1), invoice(2)])
    load(db, [invoice(3, lines=1)], full=True)
    assert counts(db) == {
        "invoices": 1,
        "invoices__lines": 1,
        "invoices__lines__parts": 2,
        "invoices__taxes": 1,
    }
