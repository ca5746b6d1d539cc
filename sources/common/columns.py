"""dlt column hints for exact types: declared columns exist even when every value is null."""

from typing import Any

Column = dict[str, Any]


def decimal(precision: int = 38, scale: int = 9) -> Column:
    return {"data_type": "decimal", "precision": precision, "scale": scale, "nullable": True}


def text() -> Column:
    return {"data_type": "text", "nullable": True}


def day() -> Column:
    return {"data_type": "date", "nullable": True}


def timestamp() -> Column:
    return {"data_type": "timestamp", "timezone": True, "nullable": True}


def bigint() -> Column:
    return {"data_type": "bigint", "nullable": True}


def read_order() -> Column:
    """A sync's reading order of its invoices (1, 2, ...): when one is read twice in a sync,
    dlt's merge keeps the copy read last."""
    return {**bigint(), "dedup_sort": "desc"}


def columns(**types: Column) -> dict[str, Column]:
    """Column hints by name: `columns(total=decimal(), memo=text())`."""
    return {name: {"name": name, **hint} for name, hint in types.items()}
