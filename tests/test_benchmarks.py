"""The benchmark scripts still run (at toy sizes: their numbers mean nothing here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import performance  # noqa: E402 - a script folder, not a package


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
    run = _run(
        "benchmarks/performance.py",
        "--invoices",
        "150",
        "--vendor",
        "meteroid",
        "--rate-limit",
        "--rate-invoices",
        "900",
    )
    assert run.returncode == 0, run.stderr
    rates = [line for line in run.stdout.splitlines() if "of 25/s" in line]
    assert len(rates) == 2 and "paced at 25/s" in rates[0] and "unpaced" in rates[1]
    assert rates[0].startswith("  meteroid (paced at 25/s): 10 requests")
    assert rates[0].endswith(", 0 answered 429")
    for label in (
        "1. floor",
        "2. dlt rest_api_source",
        "3. invoice-sync full",
        "1% changed",
        "views over the result",
    ):
        assert label in run.stdout
    lines = run.stdout.splitlines()
    full = lines.index(next(line for line in lines if "3. invoice-sync full" in line))
    phases = lines[full + 1].split(": ", 1)[1].split(", ")
    assert {"extract", "normalize", "load"} <= {phase.rsplit(" ", 2)[0] for phase in phases}
    assert all(50 < int(phase.split()[-2].replace(",", "")) < 4000 for phase in phases)


def test_memory_is_sampled_across_the_process_tree() -> None:
    here = performance._tree_pss_mb(os.getpid())
    assert 10 < here < 4000
    hog = "import time; x = b'x' * 200_000_000; time.sleep(3)"  # a 200 MB worker
    child = subprocess.Popen([sys.executable, "-c", hog])
    try:
        time.sleep(1.5)
        assert performance._tree_pss_mb(os.getpid()) > here + 150
    finally:
        child.kill()
        child.wait()
