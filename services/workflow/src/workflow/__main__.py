"""``python -m workflow``: run the queue consumer (settings from ``WORKFLOW_*`` variables).

``python -m workflow --help`` lists every variable with its default and exits without serving.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dronecommon.cli import service_main

from .settings import WorkflowSettings

DESCRIPTION = """\
The queue consumer: takes each delivery request from the queue and carries it out against the
package, dronescheduler and delivery services (retries, compensation, dead letters). Its HTTP
app serves health only. Dead letters: python -m workflow.deadletters --help."""


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(
        WorkflowSettings,
        "workflow.main:create_app",
        argv,
        description=DESCRIPTION,
        readme="services/workflow/README.md",
    )


if __name__ == "__main__":
    sys.exit(main())
