"""A page's records converted column by column with arrow, instead of record by record.

A vendor's `invoice_record` is the reference mapping: it checks every field and names the
invoice when one is wrong. It costs about 250 µs an invoice in Python, most of a sync's time.
The columnar path builds the same tables from pages with arrow compute (60-90 µs an
invoice, most of it pyarrow reading the Python objects), and it may answer only where it
gives exactly what the record path would. Whenever a value is not one it converts the same
way (a float where an integer amount belongs, a date in another format, an unknown enum
value, a null where a value is required), it raises `NotColumnar` and the page goes through
the record path, which loads it or raises the error that names the invoice.
`tests/test_columnar.py` holds the two paths to the same tables.

The raw page is read with pyarrow's type inference, not a declared type: a declared int64
column would take 1.5 as 1, while inference makes a column with any float a double, which
is refused here. Only text is declared where a source reads a page's body with arrow's JSON
parser (`json_page_records`), which would otherwise read a date as a timestamp.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from sources.common.dates import DateParseError
from sources.common.fields import FieldError
from sources.common.money import MoneyError
from sources.common.tables import (
    LIST_INDEX,
    PARENT_ID,
    ROOT_ID,
    ROW_ID,
    TableBatch,
    batch_id,
    joined,
)

ArrowFailure = (pa.ArrowException, OverflowError, TypeError, ValueError)


class NotColumnar(Exception):
    """The page holds a value the columnar path does not convert as the record path would."""


# Batches converted in this process, by the path that converted them ("columnar", "records").
# The record path is three to four times slower, so a sync says when it took it
# (`pipelines.sync.SourceResult`); syncs run one source at a time, so one count is enough.
_batches_by_path: Counter[str] = Counter()
_batches_lock = threading.Lock()


def _converted(path: str) -> None:
    with _batches_lock:
        _batches_by_path[path] += 1


def batches_by_path() -> Counter[str]:
    """How many batches each path has converted so far in this process."""
    with _batches_lock:
        return Counter(_batches_by_path)


def pages_batch(
    pages: Iterable[tuple[list[Any] | pa.StructArray, Any]],
    columnar: Callable[[pa.StructArray], TableBatch],
    records: Callable[[list[Any]], TableBatch],
    reread: Callable[[Any], list[Any]],
) -> TableBatch:
    """One batch from consecutive pages: column by column if every page allows it, else
    record by record.

    `pages` yields each page's records (decoded JSON, or arrow already: `json_page_records`)
    and a handle (its response) that `reread` turns back into decoded records: a page's
    records are held as arrow while the next is read, not as Python objects, and the record
    path, rarely needed, decodes them again page by page. The conversion's arrow calls cost
    about 10 ms whatever the rows, so a batch's pages are converted at once
    (`BATCH_INVOICES`, ten pages of 100 invoices): ten pages took 20-35 ms for their 1,000
    invoices, against 90-130 ms page by page.
    """
    handles: list[Any] = []
    arrays: list[pa.StructArray] | None = []
    for rows, handle in pages:
        handles.append(handle)
        if arrays is not None and len(rows):
            try:
                arrays.append(rows if isinstance(rows, pa.StructArray) else struct_rows(rows))
            except NotColumnar:
                arrays = None
    if arrays:
        try:
            batch = columnar(_concatenated(arrays))
        except (NotColumnar, *ArrowFailure):
            pass  # a value to check record by record, or a conversion not foreseen here
        else:
            _converted("columnar")
            return batch
    batch = joined([records(reread(handle)) for handle in handles])
    if arrays is None or arrays:  # not when every page was empty
        _converted("records")
    return batch


def _concatenated(arrays: list[pa.StructArray]) -> pa.StructArray:
    """Pages' struct arrays as one; a field one page lacks or has only nulls in is null there."""
    if len(arrays) == 1:
        return arrays[0]
    tables = [pa.Table.from_struct_array(array) for array in arrays]
    together = pa.concat_tables(tables, promote_options="permissive")
    return together.to_struct_array().combine_chunks()


def struct_rows(rows: list[Any]) -> pa.StructArray:
    """The page's records as one struct array, every record an object."""
    try:
        array = pa.array(rows)
    except ArrowFailure:
        raise NotColumnar from None
    if not pa.types.is_struct(array.type) or array.null_count:
        raise NotColumnar
    return array


def json_page_records(
    body: bytes, records_key: str, text_fields: pa.StructType, objects: tuple[str, ...] = ()
) -> pa.StructArray:
    """The records of a JSON page, `{records_key: [{...}, ...], object: {...}, ...}`, read by
    arrow's JSON parser straight from the body; NotColumnar if it is not such a page.

    `struct_rows` reads what orjson decoded: both steps make a Python object of every value
    and hold the interpreter lock throughout (about 40% of the lock in a 20,000-invoice
    Meteroid extraction, which dlt's main thread waits for). Arrow's parser makes none and
    lets go of the lock. It would read a date or a timestamp as a timestamp, so the fields
    the source reads as text are declared (`text_fields`, nested lists and objects as
    structs); every other type is inferred, as `struct_rows` infers it. Declare as text
    also any text field the source does not read but that may look like a date: pages where
    arrow took it for a timestamp on one and for text on another cannot be put together,
    and their batch goes record by record (pyarrow 26's cast of such a field back to text
    makes an invalid array where a nested object has a field that is null throughout).
    Any double sends the page back to the caller: a float where the source reads an
    integer, which its record path names, or a value arrow accepts and JSON does not (NaN,
    Infinity), which its JSON decoder refuses.
    """
    schema = pa.schema([pa.field(records_key, pa.list_(text_fields))])
    try:
        table = pa_json.read_json(
            io.BytesIO(body),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(body) + 1),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer"
            ),
        )
    except ArrowFailure:
        raise NotColumnar from None
    if table.num_rows != 1 or _holds(table.schema, pa.types.is_floating):
        raise NotColumnar
    for name in objects:
        if name not in table.column_names or not pa.types.is_struct(table.schema.field(name).type):
            raise NotColumnar
    pages = table.column(records_key).combine_chunks()
    records = pages.flatten()
    if pages.null_count or records.null_count:
        raise NotColumnar
    return records


def _holds(kind: pa.DataType | pa.Schema, test: Callable[[pa.DataType], bool]) -> bool:
    """Whether `kind`, or any type nested in it, passes `test`."""
    if isinstance(kind, pa.Schema) or pa.types.is_struct(kind):
        return any(_holds(field.type, test) for field in kind)
    if pa.types.is_list(kind):
        return _holds(kind.value_type, test)
    return test(kind)


def _field(parent: pa.Array, name: str) -> pa.Array | None:
    """A struct's field with the parent's nulls applied; None when no record has it."""
    index = parent.type.get_field_index(name)
    return None if index < 0 else pc.struct_field(parent, [index])


def _typed(parent: pa.Array, name: str, kind: pa.DataType) -> pa.Array:
    values = _field(parent, name)
    if values is None:
        return pa.nulls(len(parent), kind)
    if values.type == pa.null():
        return values.cast(kind)
    if values.type != kind:
        raise NotColumnar
    return values


def text(parent: pa.Array, name: str) -> pa.Array:
    """A field that is text or null in every record (missing counts as null)."""
    return _typed(parent, name, pa.string())


def integers(parent: pa.Array, name: str) -> pa.Array:
    """A field that is a JSON integer or null in every record: never a float or a boolean."""
    return _typed(parent, name, pa.int64())


def required(values: pa.Array) -> pa.Array:
    """`values`, refused if any is null."""
    if values.null_count:
        raise NotColumnar
    return values


def obj(parent: pa.Array, name: str) -> pa.Array:
    """A field that is an object or null in every record (its own fields read with `text`...)."""
    values = _field(parent, name)
    if values is None or values.type == pa.null():
        return pa.nulls(len(parent), pa.struct([]))
    if not pa.types.is_struct(values.type):
        raise NotColumnar
    return values


class Nested:
    """The objects of a list field of every record, one after another, and where each came from.

    `parent[i]` is the row of the parent the i-th object belongs to; `index[i]` its position
    in that parent's list (dlt's `_dlt_list_idx`).
    """

    def __init__(self, parent: pa.Array, name: str) -> None:
        lists = _field(parent, name)
        if lists is None or lists.type == pa.null():
            lists = pa.nulls(len(parent), pa.list_(pa.struct([])))
        if not pa.types.is_list(lists.type):
            raise NotColumnar
        rows = pc.list_flatten(lists)
        if rows.type == pa.null() and len(rows) == 0:
            rows = pa.nulls(0, pa.struct([]))
        if not pa.types.is_struct(rows.type) or rows.null_count:
            raise NotColumnar  # an element that is not an object
        self.rows = rows
        self.parent = pc.list_parent_indices(lists)
        offsets = lists.offsets.cast(pa.int64())
        self.offsets = pc.subtract(offsets, offsets[0])  # where each parent's objects start
        positions = pa.array(range(len(rows)), pa.int64())
        self.index = pc.subtract(positions, self.offsets.take(self.parent))

    def __len__(self) -> int:
        return len(self.rows)

    def of_parent(self, values: pa.Array) -> pa.Array:
        """A column of the parent, one value per object."""
        return values.take(self.parent)

    def sum_per_parent(self, values: pa.Array) -> pa.Array:
        """The sum of an integer column's values for each parent row (0 for none)."""
        running = pa.concat_arrays(
            [pa.array([0], pa.int64()), pc.cumulative_sum_checked(values.cast(pa.int64()))]
        )
        return pc.subtract_checked(running.take(self.offsets[1:]), running.take(self.offsets[:-1]))


# Decimal strings longer than this, or with an exponent, are left to the record path: arrow's
# cast overflows a decimal128 without a word (a 31-digit quantity came out as another number),
# and up to 20 characters no value reaches the 29 integer digits that decimal128(38, 9) holds.
DECIMAL_TEXT_MAX = 20


def decimals(values: pa.Array, kind: pa.DataType) -> pa.Array:
    """Plain decimal strings ("352.7", "-0.19") as exact decimals (no float on the way)."""
    longest = pc.max(pc.utf8_length(values)).as_py() or 0
    if longest > DECIMAL_TEXT_MAX or pc.any(pc.match_substring_regex(values, "[eE]")).as_py():
        raise NotColumnar
    try:
        return values.cast(kind)
    except ArrowFailure:
        raise NotColumnar from None


def minor_units(amounts: pa.Array, exponents: pa.Array, kind: pa.DataType) -> pa.Array:
    """Integer minor units to exact decimals, row by row with its currency's exponent.

    An amount of n minor units with exponent e is the decimal whose unscaled value is n at
    scale e: the int64 is widened to decimal128 and read at that scale, then rescaled.
    """
    unscaled = amounts.cast(pa.decimal128(38, 0))
    result: pa.Array | None = None
    for exponent in pc.unique(exponents).to_pylist():
        if exponent is None:
            raise NotColumnar
        scaled = unscaled.view(pa.decimal128(38, exponent)).cast(kind)
        result = (
            scaled if result is None else pc.if_else(pc.equal(exponents, exponent), scaled, result)
        )
    return result if result is not None else pa.nulls(len(amounts), kind)


EARLIEST = datetime(1, 1, 1, tzinfo=UTC)  # Python's range, which the record path keeps to
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def utc_timestamps(values: pa.Array) -> pa.Array:
    """ISO 8601 timestamps in UTC; one without an offset is UTC."""
    try:
        result = values.cast(pa.timestamp("us")).cast(pa.timestamp("us", "UTC"))
    except ArrowFailure:
        try:
            result = values.cast(pa.timestamp("us", "UTC"))
        except ArrowFailure:
            raise NotColumnar from None
    return _within(result, EARLIEST, LATEST)


def dates(values: pa.Array) -> pa.Array:
    """`YYYY-MM-DD` dates, a longer text read up to its tenth character (as `parse_iso_date`)."""
    try:
        result = pc.utf8_slice_codeunits(values, 0, 10).cast(pa.date32())
    except ArrowFailure:
        raise NotColumnar from None
    return _within(result, date.min, date.max)


def _within(values: pa.Array, earliest: Any, latest: Any) -> pa.Array:
    """`values`, refused if any lies outside Python's dates (arrow reads year 0)."""
    kind = values.type
    outside = pc.or_(
        pc.less(values, pa.scalar(earliest, kind)), pc.greater(values, pa.scalar(latest, kind))
    )
    if pc.any(outside).as_py():
        raise NotColumnar
    return values


def mapped(values: pa.Array, convert: Callable[[Any], Any], kind: pa.DataType) -> pa.Array:
    """`convert` applied to each distinct value (nulls included), e.g. an enum's checks.

    A value `convert` refuses sends the page to the record path, which names the invoice.
    """
    encoded = pc.dictionary_encode(values)
    try:
        if values.null_count:
            convert(None)
        converted = [convert(value) for value in encoded.dictionary.to_pylist()]
    except (FieldError, MoneyError, DateParseError):
        raise NotColumnar from None
    return pa.array(converted, kind).take(encoded.indices)


def numbered(prefix: str | pa.Array, separator: str, numbers: pa.Array | Iterable[int]) -> pa.Array:
    """`<prefix><separator><number>` for each number: dlt row ids and line ids."""
    if not isinstance(numbers, pa.Array):
        numbers = pa.array(numbers, pa.int64())
    return pc.binary_join_element_wise(prefix, numbers.cast(pa.string()), separator)


def root_linkage(rows: int) -> dict[str, pa.Array]:
    """dlt's row ids for a batch of root rows: a random batch id and the row's number."""
    return {ROW_ID: numbered(batch_id(), "", range(rows))}


def nested_linkage(nested: Nested, parent: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """dlt's linkage columns of nested rows: `<parent id>.<list index>`, parent, root, index."""
    parent_ids = nested.of_parent(parent[ROW_ID])
    return {
        ROW_ID: numbered(parent_ids, ".", nested.index),
        PARENT_ID: parent_ids,
        ROOT_ID: nested.of_parent(parent.get(ROOT_ID, parent[ROW_ID])),
        LIST_INDEX: nested.index,
    }
