"""The `invoice-sync` command: Ctrl-C while Python still imports dlt, DuckDB and arrow (about
a second, before the CLI can catch it) is one line and exit status 130, not a traceback."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from pipelines.cli import main as run

        return run()
    except KeyboardInterrupt:  # the CLI catches it once it runs; this is before or after
        print("invoice-sync: interrupted by SIGINT", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
