"""Real processes for tests: the console script, and readers of a warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = str(Path(sys.executable).with_name("invoice-sync"))

# What a reader compares: the AR figures and the invoice count, as text.
FIGURES = (
    "SELECT source, currency, CAST(outstanding AS VARCHAR), CAST(paid AS VARCHAR), "
    "(SELECT count(*) FROM billing.invoices) FROM billing.ar_summary ORDER BY ALL"
)


def cli_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any source settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    return {**env, **extra}


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, **kwargs: Any
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300, **kwargs
    )


def start_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def figures_of(con: Any) -> str:
    return repr(con.execute(FIGURES).fetchall())


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]
