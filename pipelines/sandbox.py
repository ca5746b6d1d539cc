"""The built-in sandbox: every registered vendor's emulator on one loopback port."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from pipelines.registry import VENDORS
from sources.common.sandbox.server import Emulator, SandboxServer

DEFAULT_PORT = 8765


def build_emulators(seed: int = 7, invoices: int = 60) -> dict[str, Emulator]:
    """One emulator per vendor, each over its own seeded ledger."""
    return {
        name: vendor.emulator(vendor.make_ledger(seed=seed + index, invoices=invoices))
        for index, (name, vendor) in enumerate(VENDORS.items())
    }


def serve(emulators: dict[str, Emulator], port: int = 0) -> SandboxServer:
    """A started server with each emulator mounted at `/<vendor>`."""
    return SandboxServer({f"/{name}": emu for name, emu in emulators.items()}, port=port).start()


@contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """Point dlt's config at the sandbox for the duration (restores what was there)."""
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
