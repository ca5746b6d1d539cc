"""Entry points: the `invoice-sync` CLI, sync orchestration, view building, demo and sandbox."""
