"""``python -m ingestion``: serve the public API (settings from ``INGESTION_*`` variables)."""

from __future__ import annotations

from dronecommon import load_settings
from dronecommon.server import serve

from .settings import IngestionSettings


def main() -> None:
    serve("ingestion.main:create_app", load_settings(IngestionSettings))


if __name__ == "__main__":
    main()
