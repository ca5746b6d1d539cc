"""Invoices handed to dlt as arrow tables, root and nested, instead of nested dicts.

dlt's relational JSON normaliser costs about 18 µs per row; a 20,000-invoice Meteroid sync
has 367,000 rows, so it was half the sync (README, "Performance"). dlt loads arrow tables
as they are, so a source that builds them itself skips that step. The tables are the ones
the normaliser would have made: same names, same columns, and the same linkage columns
(`_dlt_id`, `_dlt_parent_id`, `_dlt_list_idx`, `_dlt_root_id`), declared as nested tables
of the root so that dlt's merge still deletes a changed invoice's old child rows.

Row ids: a root row's id is random, as dlt's are (a random prefix per batch and the row's
number in it); a nested row's id is its parent's id and its list index (`<parent>.<index>`),
unique within its table.

Column types come from the declared column hints, so every column a vendor maps must be
declared; a record with a field that is not is refused, never silently dropped.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.schema.utils import get_root_table, is_nested_table
from dlt.extract.extract import Extract
from dlt.extract.resource import DltResource

from sources.common.columns import Column
from sources.common.errors import SyncError

_MAPPING_BUG = "a bug in invoice-sync's mapping of this vendor; please report it"

ROW_ID = "_dlt_id"
PARENT_ID = "_dlt_parent_id"
ROOT_ID = "_dlt_root_id"
LIST_INDEX = "_dlt_list_idx"

ROOT_LINKAGE: dict[str, Column] = {
    ROW_ID: {
        "name": ROW_ID,
        "data_type": "text",
        "nullable": False,
        "row_key": True,
        "unique": True,
    },
}
NESTED_LINKAGE: dict[str, Column] = {
    **ROOT_LINKAGE,
    PARENT_ID: {"name": PARENT_ID, "data_type": "text", "nullable": False, "parent_key": True},
    ROOT_ID: {"name": ROOT_ID, "data_type": "text", "nullable": False, "root_key": True},
    LIST_INDEX: {"name": LIST_INDEX, "data_type": "bigint", "nullable": False},
}


def arrow_type(column: Column) -> pa.DataType:
    """The arrow type dlt maps back onto the column's declared data type."""
    data_type = column["data_type"]
    if data_type == "decimal":
        return pa.decimal128(column["precision"], column["scale"])
    if data_type == "timestamp":
        return pa.timestamp("us", tz="UTC")
    return {
        "text": pa.string(),
        "bigint": pa.int64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "double": pa.float64(),
    }[data_type]


def arrow_schema(columns: Mapping[str, Column]) -> pa.Schema:
    fields = [pa.field(name, arrow_type(c), c.get("nullable", True)) for name, c in columns.items()]
    return pa.schema(fields)


@dataclass
class _Table:
    """One table's columns as Python lists, filled record by record."""

    name: str
    path: tuple[str, ...]
    columns: dict[str, Column]
    lists: tuple[str, ...]  # the record keys that hold this table's nested lists
    values: dict[str, list[Any]] = field(default_factory=dict)
    data: list[tuple[str, list[Any]]] = field(default_factory=list)  # the mapped fields' lists
    width: int = 0  # how many keys a record of this table has

    def __post_init__(self) -> None:
        linkage = NESTED_LINKAGE if self.path else ROOT_LINKAGE
        self.width = len(self.columns) - len(linkage) + len(self.lists)
        self._reset()

    def _reset(self) -> None:
        self.values = {name: [] for name in self.columns}
        self.data = [(n, v) for n, v in self.values.items() if n not in NESTED_LINKAGE]

    def take(self, source: str) -> pa.Table:
        """The rows so far as an arrow table; a value of the wrong type is a SyncError."""
        try:
            table = pa.table(self.values, schema=arrow_schema(self.columns))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as err:
            raise SyncError(source, self._misfit(err), _MAPPING_BUG) from None
        self._reset()
        return table

    def _misfit(self, err: Exception) -> str:
        """Which column and value did not fit its declared type."""
        for name, values in self.values.items():
            try:
                pa.array(values, arrow_type(self.columns[name]))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as column_err:
                rows = (v for v in values if v is not None)
                for row, value in enumerate(rows):
                    try:
                        pa.array([value], arrow_type(self.columns[name]))
                    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                        return (
                            f"{self.name}.{name}: {value!r} is not a "
                            f"{self.columns[name]['data_type']} (row {row}: {column_err})"
                        )
        return f"{self.name}: {err}"


def batch_id() -> str:
    """The random prefix of a batch's root row ids (`<batch id><row number>`)."""
    return secrets.token_urlsafe(9)


# Invoices per extracted item. dlt works out each arrow item's table schema anew, in the main
# thread, holding the interpreter lock: in a paced Meteroid sync that was most of the main
# thread's time and a third of the lock's, so fewer, bigger items leave more of it to the
# workers that fetch. At 1,000 (against 500), Meteroid's 200,000-invoice sync took 97.5 s
# instead of 117.0 s and its paced request rate rose; the extraction holds more (235 MB
# against 203 MB; 210 against 190 at 20,000), still below the load, which stays the peak
# (262 and 245 MB, against 264 and 246). The same held for Exsited (256 and 245 MB).
BATCH_INVOICES = 1000


@dataclass(frozen=True)
class TableBatch:
    """Arrow tables for some invoices, one per table of a `NestedTables`, root first.

    One object, not a list of tables, so that a page fetched in dlt's worker pool
    (`dlt.defer`) arrives whole at the resource's yield map (`NestedTables.items`).
    """

    tables: tuple[pa.Table, ...]

    @property
    def invoices(self) -> int:
        return self.tables[0].num_rows


# Batches fetched side by side by dlt's extract workers: as many as `extract.max_parallel_items`
# lets run at once (`pipelines/tuning.py`).
PARALLEL_BATCHES = 5


def staggered_groups(
    start: int, stop: int, size: int, lanes: int = PARALLEL_BATCHES
) -> Iterator[range]:
    """`start`..`stop` in consecutive groups of `size`, the first `lanes` of them growing to it
    (size/lanes, 2·size/lanes, ...).

    Groups fetched side by side share the request rate, so equal groups started together end
    together; then every worker converts its pages at once, queueing for the interpreter lock
    while nobody fetches (a paced Meteroid sync idled its pacer 0.8-1.3 s of 9). Groups that
    start staggered end staggered, and stay so: each next group takes a finished one's place.
    """
    first, lane = start, 1
    while first < stop:
        length = max(1, size * min(lane, lanes) // lanes)
        yield range(first, min(first + length, stop))
        first += length
        lane += 1


def batched(batches: Iterable[TableBatch], size: int = BATCH_INVOICES) -> Iterator[TableBatch]:
    """Consecutive batches joined into batches of at least `size` invoices (the last: the rest)."""
    waiting: list[TableBatch] = []
    invoices = 0
    for batch in batches:
        waiting.append(batch)
        invoices += batch.invoices
        if invoices >= size:
            yield joined(waiting)
            waiting, invoices = [], 0
    if waiting:
        yield joined(waiting)


def joined(batches: list[TableBatch]) -> TableBatch:
    if len(batches) == 1:
        return batches[0]
    per_table = zip(*(b.tables for b in batches), strict=True)
    return TableBatch(tuple(pa.concat_tables(tables) for tables in per_table))


class NestedTables:
    """The layout of a root table and its nested lists, and the arrow tables for records.

    `nested` maps a list's path below the root (`"lines"`, or `("line_items",
    "sub_line_items")`) to its column hints, as dlt's `nested_hints` do.
    """

    def __init__(
        self,
        source: str,
        root: str,
        columns: Mapping[str, Column],
        nested: Mapping[str | tuple[str, ...], Mapping[str, Column]],
    ) -> None:
        self.source = source
        self.root = root
        paths = {(p,) if isinstance(p, str) else tuple(p): dict(c) for p, c in nested.items()}
        self.tables = [self._table((), dict(columns), paths)]
        self.tables += [self._table(path, c, paths) for path, c in paths.items()]

    def _table(
        self, path: tuple[str, ...], columns: dict[str, Column], paths: dict[tuple[str, ...], Any]
    ) -> _Table:
        lists = tuple(p[-1] for p in paths if len(p) == len(path) + 1 and p[:-1] == path)
        linkage = NESTED_LINKAGE if path else ROOT_LINKAGE
        name = "__".join((self.root, *path))
        return _Table(name, path, {**columns, **linkage}, lists)

    def declare(self, resource: DltResource) -> None:
        """Declare the nested tables as table variants of `resource`, nested under the root.

        Called while the resource runs, so that the variants take its write disposition as
        it is then (a full refresh sets "replace"). A variant starts as a copy of the
        resource's hints: its columns, keys and nested hints are cleared before its own are
        set.
        """
        for table in self.tables[1:]:
            parent = "__".join((self.root, *table.path[:-1]))
            resource.apply_hints(
                table_name=table.name,
                parent_table_name=parent,
                columns={},
                primary_key=[],
                merge_key=[],
                nested_hints={},
                create_table_variant=True,
            )
            resource.apply_hints(
                table_name=table.name, columns=table.columns, create_table_variant=True
            )

    @property
    def root_columns(self) -> dict[str, Column]:
        """The resource's column hints: the root table's columns and its row id."""
        return self.tables[0].columns

    def arrow(self, records: Iterable[dict[str, Any]]) -> TableBatch:
        """The arrow tables for `records`. Safe to call from several threads at once."""
        tables = [replace(table) for table in self.tables]  # fresh buffers for this call
        by_path = {table.path: table for table in tables}
        batch = batch_id()
        for number, record in enumerate(records):
            row_id = f"{batch}{number}"
            self._add(by_path, tables[0], record, row_id, None, row_id, 0)
        return TableBatch(tuple(table.take(self.source) for table in tables))

    def assemble(self, columns: Mapping[tuple[str, ...], Mapping[str, pa.Array]]) -> TableBatch:
        """A batch from whole columns, by table path (the root's is `()`), linkage included."""
        tables = []
        for table in self.tables:
            given = columns[table.path]
            if given.keys() != table.columns.keys():
                mismatch = sorted(given.keys() ^ table.columns.keys())
                raise SyncError(self.source, f"{table.name}: columns {mismatch}", _MAPPING_BUG)
            arrays = [given[name] for name in table.columns]
            tables.append(pa.Table.from_arrays(arrays, schema=arrow_schema(table.columns)))
        return TableBatch(tuple(tables))

    def items(self, batch: TableBatch) -> Iterator[Any]:
        """What the resource hands dlt for a batch: the root table, then each nested table
        that has rows, marked with its name. Meant as the resource's yield map."""
        yield batch.tables[0]
        for layout, table in zip(self.tables[1:], batch.tables[1:], strict=True):
            if table.num_rows:
                yield dlt.mark.with_table_name(table, layout.name)

    def _add(
        self,
        by_path: dict[tuple[str, ...], _Table],
        table: _Table,
        row: dict[str, Any],
        row_id: str,
        parent_id: str | None,
        root_id: str,
        index: int,
    ) -> None:
        if len(row) != table.width:
            self._refuse(table, row)
        try:
            for name in table.lists:
                child_table = by_path[(*table.path, name)]
                for child_index, child in enumerate(row[name] or ()):
                    child_id = f"{row_id}.{child_index}"
                    self._add(by_path, child_table, child, child_id, row_id, root_id, child_index)
            for name, column in table.data:
                column.append(row[name])
        except KeyError:
            self._refuse(table, row)
        values = table.values
        values[ROW_ID].append(row_id)
        if table.path:
            values[PARENT_ID].append(parent_id)
            values[ROOT_ID].append(root_id)
            values[LIST_INDEX].append(index)

    def _refuse(self, table: _Table, row: dict[str, Any]) -> None:
        known = set(table.columns) | set(table.lists)
        unknown = sorted(set(row) - known)
        missing = sorted(set(known) - set(row) - set(NESTED_LINKAGE))
        raise SyncError(
            self.source,
            f"a {table.name} row does not match the declared columns "
            f"(undeclared: {unknown}, missing: {missing})",
            _MAPPING_BUG,
        )


def _nested_tables_in_metrics() -> None:
    """Let dlt's extract metrics count rows of nested tables that arrive as items.

    dlt groups extract metrics by each table's `resource`, which nested tables do not carry
    (dlt 1.31 raises KeyError 'resource'); for the count they belong to their root table's
    resource. The resource is set on those tables only while the metrics are computed.
    """
    compute = Extract._compute_metrics
    if getattr(compute, "counts_nested_tables", False):
        return

    def compute_metrics(self: Extract, load_id: str, source: Any) -> Any:
        tables = source.schema.tables
        lent = [t for t in tables.values() if is_nested_table(t) and "resource" not in t]
        for table in lent:
            table["resource"] = get_root_table(tables, table["name"]).get("resource")
        try:
            return compute(self, load_id, source)
        finally:
            for table in lent:
                table.pop("resource", None)

    compute_metrics.counts_nested_tables = True  # type: ignore[attr-defined]
    Extract._compute_metrics = compute_metrics  # type: ignore[method-assign]


_nested_tables_in_metrics()
