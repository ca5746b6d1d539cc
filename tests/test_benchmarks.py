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
        "publishing after the full sync: ",
        "publishing after the 1% changed sync: ",
    ):
        assert label in run.stdout
    lines = run.stdout.splitlines()
    full = lines.index(next(line for line in lines if "3. invoice-sync full" in line))
    phases = lines[full + 1].split(": ", 1)[1].split(", ")
    assert {"extract", "normalize", "load"} <= {phase.rsplit(" ", 2)[0] for phase in phases}
    assert all(50 < int(phase.split()[-2].replace(",", "")) < 4000 for phase in phases)
    verdicts = lines[lines.index("issue #9's targets, as far as this run can judge them:") + 1 :]
    assert [line.split(": ")[0].strip() for line in verdicts] == [
        *["meteroid, 150"] * 5,  # floor ratio, rest_api_source, peak, views, publishing
        "meteroid, paced",
    ]
    assert all(line.endswith((": met", ": NOT met")) for line in verdicts)


def test_postgres_benchmark_syncs_both_and_times_the_views(postgres_server) -> None:
    run = _run(
        "benchmarks/postgres.py", "--invoices", "150", "--url", postgres_server.create_database()
    )
    assert run.returncode == 0, run.stderr
    for label in (
        "2. full sync into DuckDB",
        "3. full sync into PostgreSQL",
        "PostgreSQL, 1% changed",
        "views on PostgreSQL: ar_summary ",
        "PostgreSQL's full sync took ",
    ):
        assert label in run.stdout


def test_history_benchmark_reports_rows_and_an_unchanged_sync_adds_none() -> None:
    run = _run("benchmarks/history_cost.py", "--invoices", "200", "--vendor", "press")
    assert run.returncode == 0, run.stderr
    rows = {line.split()[1]: line.split() for line in run.stdout.splitlines()[1:4]}
    assert set(rows) == {"full", "1%", "unchanged"}
    assert int(rows["full"][-2].replace(",", "")) == int(rows["full"][2].replace(",", ""))
    assert rows["unchanged"][-2:] == ["0", "0"]
    assert "press: views ar_summary" in run.stdout


def _measured(seconds: float, peak: float) -> performance.Measured:
    return performance.Measured(seconds, 1000, peak, {}, seconds / 20, 10**8)


def _run_of(vendor: str, invoices: int, full_seconds: float, peak: float) -> performance.Run:
    return performance.Run(
        vendor,
        invoices,
        floor=_measured(4.0, 60),
        alternative=None,
        full=_measured(full_seconds, peak),
        incremental=_measured(1.0, peak - 10),
        views={"ar_summary": 0.05, "ar_aging": 0.3},
    )


def test_targets_are_judged_on_the_measured_figures() -> None:
    runs = [
        _run_of("meteroid", 20_000, full_seconds=10.0, peak=245),
        _run_of("meteroid", 200_000, full_seconds=20.0, peak=253),
        _run_of("exsited", 20_000, full_seconds=14.0, peak=241),
        _run_of("exsited", 200_000, full_seconds=16.0, peak=241),
    ]
    rates = [
        performance.RateRun("meteroid", paced=True, per_second=21.7, busiest_second=25, refused=0),
        performance.RateRun("meteroid", paced=False, per_second=24.3, busiest_second=40, refused=3),
    ]
    lines = performance.target_lines(runs, rates)
    assert "meteroid, 20,000: full sync 2.5x the floor (at most 3x): met" in lines
    assert "exsited, 20,000: full sync 3.5x the floor (at most 3x): NOT met" in lines
    assert "meteroid, 20,000: peak 245 MB (under 400 MB): met" in lines
    assert "meteroid, 20,000: slowest view 3.00% of the full sync (under 2%): NOT met" in lines
    assert "meteroid, 200,000: slowest view 1.50% of the full sync (under 2%): met" in lines
    assert "meteroid: peak 253 MB at 200,000 against 245 MB at 20,000 (no more): NOT met" in lines
    assert "exsited: peak 241 MB at 200,000 against 241 MB at 20,000 (no more): met" in lines
    assert (
        "meteroid, 20,000: publishing at most 5.0% of a sync (under 10%; issue #33): met" in lines
    )
    assert (
        "meteroid, paced: 86.8% of the limit (at least 85%), at most 25 in one second "
        "(at most 25), 0 answered 429 (none): met"
    ) in lines
    over = performance.RateRun("meteroid", True, per_second=22.0, busiest_second=27, refused=0)
    [paced] = [line for line in performance.target_lines(runs, [over]) if "paced" in line]
    assert "at most 27 in one second (at most 25)" in paced and paced.endswith("NOT met")
    assert not any("unpaced" in line or "rest_api_source" in line for line in lines)


def test_the_busiest_second_counts_a_half_open_second() -> None:
    even = [i / 32 for i in range(100)]  # 32 a second, exact in binary
    assert performance.busiest_second(even) == 32
    assert performance.busiest_second([0.0, 0.5, 0.99, 1.0, 1.2]) == 4
    assert performance.busiest_second([3.0]) == 1


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
