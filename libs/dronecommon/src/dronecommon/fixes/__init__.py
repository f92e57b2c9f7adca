"""Drone telemetry (fixes): one model, one publisher/consumer interface, two transports.

``create_fix_publisher`` / ``create_fix_consumer`` pick Redis Streams or Azure Event Hubs from
:class:`~dronecommon.settings.TelemetryStreamSettings`; :mod:`.model` is the fix and its wire
format, :mod:`.base` the semantics both transports share. (Not to be confused with
:mod:`dronecommon.telemetry`, which is OpenTelemetry.)
"""

from dronecommon.fixes.base import (
    FixConsumer,
    FixHandler,
    FixPublisher,
    FixPublishError,
    FixStreamNotReadyError,
)
from dronecommon.fixes.factory import create_fix_consumer, create_fix_publisher
from dronecommon.fixes.model import (
    Fix,
    FixDecodeError,
    Phase,
    decode_fix,
    encode_fix,
    encode_fixes,
    fix_from_wire,
    wire_list,
)

__all__ = [
    "Fix",
    "FixConsumer",
    "FixDecodeError",
    "FixHandler",
    "FixPublishError",
    "FixPublisher",
    "FixStreamNotReadyError",
    "Phase",
    "create_fix_consumer",
    "create_fix_publisher",
    "decode_fix",
    "encode_fix",
    "encode_fixes",
    "fix_from_wire",
    "wire_list",
]
