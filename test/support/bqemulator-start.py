"""Starts bqemulator with DuckDB's spatial and avro extensions made optional.

bqemulator downloads those extensions from DuckDB's extension repository when it starts and
refuses to start without spatial (GEOGRAPHY). Test machines and CI reach package registries
only, and no wheel of the spatial extension matches the DuckDB that bqemulator needs, so this
launcher loads the extensions only if they are already installed and otherwise starts without
them: GEOGRAPHY is unavailable, everything else behaves as the released emulator does.
Usage: the same arguments as the `bqemulator` command, e.g. `start --rest-port 9050`.
"""
import sys

from bqemulator.storage import engine


def _load_if_installed(name):
    def load(self):
        try:
            self._connection.execute(f"LOAD {name}")
        except Exception as exc:  # noqa: BLE001 - an absent extension is expected offline
            print(f"bqemulator-start: {name} extension not loaded ({exc.__class__.__name__})", file=sys.stderr)
    return load


engine.DuckDBEngine._load_spatial = _load_if_installed("spatial")
engine.DuckDBEngine._load_format_extensions = _load_if_installed("avro")

from bqemulator.cli import main  # noqa: E402 - after the patch, so start() sees it

sys.exit(main())
