"""Errors a sync reports to its user in one line: which source, what went wrong, what to do."""

from __future__ import annotations

from collections.abc import Iterator


class SyncError(Exception):
    """An expected failure with a message fit for the user's terminal.

    `source` names the vendor, `hint` says what to do about it.
    """

    def __init__(self, source: str, message: str, hint: str = "") -> None:
        self.source = source
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.source}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class BadRecordError(SyncError):
    """A record the vendor sent that we cannot load without guessing."""

    def __init__(self, source: str, record_id: object, message: str) -> None:
        super().__init__(
            source,
            f"record {record_id!r}: {message}",
            "nothing was loaded for this source; report the record to the vendor or "
            "open an issue with invoice-sync if the vendor's format changed",
        )
        self.record_id = record_id


def error_chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error`, then what caused it, outermost first: through dlt's step wrappers (their
    `exception`), `raise ... from` and errors raised while handling another."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        inner = getattr(error, "exception", None)
        error = inner if isinstance(inner, BaseException) else error.__cause__ or error.__context__
