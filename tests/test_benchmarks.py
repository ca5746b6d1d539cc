"""The benchmark scripts still run (at toy sizes: their numbers mean nothing here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def test_request_benchmark_reports_every_asked_vendor() -> None:
    run = _run(
        "benchmarks/sync_requests.py",
        "--invoices",
        "300",
        "--vendor",
        "meteroid",
        "--vendor",
        "press",
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    meteroid = next(line for line in lines if line.startswith("meteroid"))
    assert meteroid.split()[1] == "4" and meteroid.split()[-1] == "yes"  # 3 pages + probe, exact
    assert next(line for line in lines if line.startswith("press")).split()[1] == "1"


def test_performance_benchmark_measures_all_three() -> None:
    run = _run("benchmarks/performance.py", "--invoices", "150", "--vendor", "meteroid")
    assert run.returncode == 0, run.stderr
    for label in (
        "1. floor",
        "2. dlt rest_api_source",
        "3. invoice-sync full",
        "1% changed",
        "views over the result",
    ):
        assert label in run.stdout
