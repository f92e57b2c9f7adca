"""``python -m delivery``: serve the delivery API (settings from ``DELIVERY_*`` variables)."""

from __future__ import annotations

import sys

from dronecommon import SettingsError, load_settings
from dronecommon.server import serve

from .settings import DeliverySettings


def main() -> int:
    try:
        settings = load_settings(DeliverySettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)  # noqa: T201 - the operator's only feedback
        return 2
    serve("delivery.main:create_app", settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
