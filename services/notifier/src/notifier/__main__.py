"""``python -m notifier``: run the notifier (settings from ``NOTIFIER_*`` variables).

``python -m notifier --help`` lists every variable with its default and exits without serving.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dronecommon.cli import service_main

from .settings import NotifierSettings

DESCRIPTION = """\
The notifier: reads the delivery events and tells each delivery's recipients (its notify-me
requests) by e-mail (SMTP, or Azure Communication Services), SMS (a local sink, or ACS) and
signed webhooks (Standard Webhooks), once per (delivery, event, recipient), with retries."""


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(
        NotifierSettings,
        "notifier.main:create_app",
        argv,
        description=DESCRIPTION,
        readme="services/notifier/README.md",
    )


if __name__ == "__main__":
    sys.exit(main())
