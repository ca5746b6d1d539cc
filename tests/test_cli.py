"""The CLI as a person uses it: real processes, the console script, the sandbox on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipelines.registry import VENDORS

SCRIPT = str(Path(sys.executable).with_name("invoice-sync"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    return {**env, **extra}


def test_sandbox_then_sync_with_the_printed_settings(tmp_path: Path) -> None:
    sandbox = subprocess.Popen(
        [SCRIPT, "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        expected_lines = sum(len(vendor.config_keys) for vendor in VENDORS.values())
        lines = [sandbox.stdout.readline().strip() for _ in range(expected_lines)]
        settings = dict(line.split("=", 1) for line in lines)
        for name, vendor in VENDORS.items():
            for key in vendor.config_keys:
                assert f"SOURCES__{name.upper()}__{key.upper()}" in settings
        assert settings["SOURCES__METEROID__BASE_URL"].startswith("http://127.0.0.1:")
        db = tmp_path / "person.duckdb"
        run = subprocess.run(
            [SCRIPT, "sync", "meteroid", "--db", str(db)],
            capture_output=True,
            text=True,
            env=_env(**settings),
            cwd=tmp_path,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""
        assert run.stdout.splitlines()[0] == "meteroid: syncing"
        assert run.stdout.splitlines()[-1].startswith("meteroid: synced in")
        shown = subprocess.run(
            [SCRIPT, "summary", "--db", str(db)],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=tmp_path,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert "meteroid  JPY" in shown.stdout and "current" in shown.stdout
        again = subprocess.run(
            [SCRIPT, "sync", "--db", str(db)],  # every configured source
            capture_output=True,
            text=True,
            env=_env(**settings),
            cwd=tmp_path,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr
        synced = [line for line in again.stdout.splitlines() if " synced in " in line]
        assert sorted(line.split(":")[0] for line in synced) == sorted(VENDORS)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


def test_demo_runs_and_matches_ground_truth(tmp_path: Path) -> None:
    run = subprocess.run(
        [SCRIPT, "demo", "--db", str(tmp_path / "demo.duckdb")],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "Check: billing.ar_summary equals the sandbox's ground truth" in run.stdout
    for name in VENDORS:
        assert f"{name}: synced in" in run.stdout
    report = (tmp_path / "ar-report.html").resolve()
    assert run.stdout.rstrip().endswith(f"AR report: {report}")
    assert "Accounts receivable" in report.read_text(encoding="utf-8")
    # a second demo run reuses its own file; it refuses a database it did not make
    other = tmp_path / "mine.duckdb"
    import duckdb

    duckdb.connect(str(other)).close()
    refused = subprocess.run(
        [SCRIPT, "demo", "--db", str(other)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert refused.returncode != 0
    assert refused.stderr.strip().count("\n") == 0 and "was not made by the demo" in refused.stderr


def test_summary_without_database_is_one_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [SCRIPT, "summary", "--db", str(tmp_path / "none.duckdb")],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "no database" in run.stderr
