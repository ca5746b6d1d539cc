"""What a vendor's room gives the rest of the project: one `Vendor` value per vendor.

`pipelines/registry.py` lists them; the CLI, the demo, the sandbox and the view builder
iterate that list and know nothing else about any vendor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlt.extract.source import DltSource

from sources.common.sandbox.ledger import Ledger
from sources.common.sandbox.server import Emulator


@dataclass(frozen=True)
class Vendor:
    name: str
    # The dlt source function; dlt injects base_url and credentials from config/secrets.
    source: Callable[..., DltSource]
    # Config keys besides `base_url` that must be set for the source to count as configured.
    credential_keys: tuple[str, ...]
    # Builds the vendor's emulator over a ledger (keyword options are emulator-specific).
    emulator: Callable[..., Emulator]
    # Pulls the vendor's error text out of a decoded error body.
    error_message: Callable[[Any], str | None]
    # How the sandbox builds this vendor's ledger by default.
    ledger_options: dict[str, Any] | None = None
    # The changes its API sends no date for, which the warehouse's history dates
    # (docs/point-in-time.md; `invoice-sync summary --as-of` says so); "" when it dates all.
    undated: str = ""

    def make_ledger(self, seed: int = 7, invoices: int = 60, **options: Any) -> Ledger:
        return Ledger(seed=seed, invoices=invoices, **{**(self.ledger_options or {}), **options})

    @property
    def config_keys(self) -> tuple[str, ...]:
        return ("base_url", *self.credential_keys)
